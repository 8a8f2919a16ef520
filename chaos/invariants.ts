/**
 * The chaos harness's verdict, pure: what the run observed in, each invariant with its
 * figures and every violation (with the moment, for replaying the seed) out.
 */

/** A CP's own metered record of a finished session (the engine's `session ended` log line). */
export interface MeteredRecord { cp_id: string; session_id: string; kwh: number; eur: number; reason: string; at: number }
/** A session the harness saw a CP supply (its health port's STATUS, polled). */
export interface Supply { cp_id: string; session_id: string; driver_id?: string; firstSeen: number; lastSeen: number }
export interface CentralTicket { kwh: number; eur: number; reason: string; interrupted: boolean }
export interface CentralSession { session_id: string; cp_id: string; driver_id: string; status: string; started_at: number; ticket: CentralTicket | null }
export interface Death { name: string; at: number; how: string; expected: boolean }
export interface LogProblem { name: string; at: number; line: string }
export interface DriverView { name: string; alive: boolean; lastProgressAt: number; following: boolean }
export interface ConvergenceSample { cp_id: string; ms: number | null }

export interface Observations {
  records: MeteredRecord[];
  supplies: Supply[];
  sessions: CentralSession[];
  deaths: Death[];
  logProblems: LogProblem[];
  drivers: DriverView[];
  convergence: ConvergenceSample[];
  /** When the verdict was taken. */
  at: number;
}

export interface Bounds {
  /** Longest a CP may supply one session (the drivers' --max-charge-s plus the slack faults allow). */
  supplyMs: number;
  /** Longest a driver may go without progress (a new outcome or an update of the session it follows). */
  stuckMs: number;
  /** Longest central's view of a CP may differ from the truth after the last fault. */
  convergeMs: number;
}

export interface Invariant { name: string; ok: boolean; figures: string }
export interface Violation { invariant: string; at: number; text: string }

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const kwh = (n: number) => n.toFixed(3);

export function verdict(o: Observations, b: Bounds): { invariants: Invariant[]; violations: Violation[] } {
  const invariants: Invariant[] = [];
  const violations: Violation[] = [];
  const check = (name: string, found: Violation[], figures: string) => {
    invariants.push({ name, ok: found.length === 0, figures });
    violations.push(...found);
  };
  const byId = new Map(o.sessions.map((s) => [s.session_id, s]));

  // 1. Billing: every metered session has one ticket equal to the CP's record (1 Wh, 1 cent), or an interrupted ticket saying why.
  {
    const found: Violation[] = [];
    let equal = 0; let interruptedDiffering = 0; let metered = 0; let billed = 0;
    const recordOf = new Map<string, MeteredRecord>();
    for (const r of o.records) if (!recordOf.has(r.session_id)) recordOf.set(r.session_id, r);
    for (const r of recordOf.values()) {
      metered += r.kwh;
      const s = byId.get(r.session_id);
      if (!s) { found.push({ invariant: 'billing', at: r.at, text: `${r.cp_id} metered session ${r.session_id} (${kwh(r.kwh)} kWh) that central does not know` }); continue; }
      if (!s.ticket) { found.push({ invariant: 'billing', at: r.at, text: `${r.cp_id} session ${r.session_id} metered ${kwh(r.kwh)} kWh (${r.reason}) but central has no ticket (status ${s.status})` }); continue; }
      billed += s.ticket.kwh;
      const same = Math.abs(s.ticket.kwh - r.kwh) <= 0.001 + 1e-9 && Math.abs(s.ticket.eur - r.eur) <= 0.01 + 1e-9;
      if (same) equal++;
      else if (s.ticket.interrupted && s.ticket.reason) interruptedDiffering++;
      else found.push({ invariant: 'billing', at: r.at, text: `${r.cp_id} session ${r.session_id}: ticket ${kwh(s.ticket.kwh)} kWh ${s.ticket.eur.toFixed(2)} € (${s.ticket.reason}) ≠ metered ${kwh(r.kwh)} kWh ${r.eur.toFixed(2)} € (${r.reason})` });
    }
    // Supplies that never produced a record (engine killed mid-session): central must have closed them as interrupted, with a reason.
    let unmetered = 0;
    for (const sp of o.supplies) {
      if (recordOf.has(sp.session_id)) continue;
      unmetered++;
      const s = byId.get(sp.session_id);
      if (!s) found.push({ invariant: 'billing', at: sp.firstSeen, text: `${sp.cp_id} supplied session ${sp.session_id} that central does not know` });
      else if (!s.ticket) found.push({ invariant: 'billing', at: sp.lastSeen, text: `${sp.cp_id} session ${sp.session_id} (no metered record: engine killed) has no ticket at central (status ${s.status})` });
      else if (!s.ticket.interrupted) found.push({ invariant: 'billing', at: sp.lastSeen, text: `${sp.cp_id} session ${sp.session_id} has no metered record but central billed it as completed (${s.ticket.reason})` });
    }
    // Central sessions left open: every accepted session ends with a ticket.
    for (const s of o.sessions) if (!s.ticket) found.push({ invariant: 'billing', at: s.started_at, text: `central session ${s.session_id} at ${s.cp_id} for ${s.driver_id} is still ${s.status} at the verdict` });
    check('every metered session has exactly one ticket equal to its record (1 Wh, 1 cent) or an interrupted ticket with a reason', found,
      `${recordOf.size} metered records: ${equal} equal, ${interruptedDiffering} interrupted with a reason; ${unmetered} supplies without a record; metered ${kwh(metered)} kWh, billed for them ${kwh(billed)} kWh; ${o.sessions.filter((s) => s.ticket).length}/${o.sessions.length} central sessions ticketed`);
  }

  // 2. No supply nobody follows: each session's supply is bounded by the drivers' charge limit plus slack.
  {
    const found: Violation[] = [];
    const durations = o.supplies.map((s) => s.lastSeen - s.firstSeen);
    for (const s of o.supplies) {
      const d = s.lastSeen - s.firstSeen;
      if (d > b.supplyMs) found.push({ invariant: 'orphan', at: s.firstSeen + b.supplyMs, text: `${s.cp_id} supplied session ${s.session_id}${s.driver_id ? ` of ${s.driver_id}` : ''} for ${(d / 1000).toFixed(1)} s (bound ${(b.supplyMs / 1000).toFixed(0)} s): its driver did not stop it` });
    }
    check('no session left supplying without a driver following it', found,
      `${o.supplies.length} supplies, longest ${(Math.max(0, ...durations) / 1000).toFixed(1)} s, p50 ${(pct(durations, 50) / 1000 || 0).toFixed(1)} s (bound ${(b.supplyMs / 1000).toFixed(0)} s)`);
  }

  // 3. No driver stuck.
  {
    const found: Violation[] = [];
    for (const d of o.drivers) {
      const idle = o.at - d.lastProgressAt;
      if (!d.alive) found.push({ invariant: 'driver', at: o.at, text: `${d.name} is not running at the verdict` });
      else if (idle > b.stuckMs) found.push({ invariant: 'driver', at: d.lastProgressAt, text: `${d.name} made no progress for ${(idle / 1000).toFixed(1)} s (bound ${(b.stuckMs / 1000).toFixed(0)} s)` });
    }
    const idles = o.drivers.map((d) => o.at - d.lastProgressAt);
    check('no driver stuck', found, `${o.drivers.length} drivers, longest without progress at the verdict ${(Math.max(0, ...idles) / 1000).toFixed(1)} s, ${o.drivers.filter((d) => d.following).length} following a session`);
  }

  // 4. Central's view converges to the truth after the last fault.
  {
    const found: Violation[] = [];
    const ms = o.convergence.flatMap((c) => (c.ms === null ? [] : [c.ms]));
    for (const c of o.convergence) if (c.ms === null) found.push({ invariant: 'convergence', at: o.at, text: `central's view of ${c.cp_id} did not match the CP within ${(b.convergeMs / 1000).toFixed(0)} s of the last fault` });
    check("central's view of every CP converges to the truth after the last fault", found,
      `${ms.length}/${o.convergence.length} CPs converged, p50 ${ms.length ? (pct(ms, 50) / 1000).toFixed(2) : '-'} s, p99 ${ms.length ? (pct(ms, 99) / 1000).toFixed(2) : '-'} s (bound ${(b.convergeMs / 1000).toFixed(0)} s)`);
  }

  // 5. No process died that the schedule did not kill.
  {
    const found = o.deaths.filter((d) => !d.expected).map((d) => ({ invariant: 'death', at: d.at, text: `${d.name} ended unexpectedly (${d.how})` }));
    check("no process died that the schedule did not kill", found, `${o.deaths.filter((d) => d.expected).length} expected ends (scheduled kills, wind-down), ${found.length} unexpected deaths`);
  }

  // 6. No error-level log line or stack trace.
  {
    const found = o.logProblems.map((p) => ({ invariant: 'log', at: p.at, text: `${p.name}: ${p.line.slice(0, 240)}` }));
    check('no error-level log line or stack trace', found, `${found.length} error lines or stack traces`);
  }

  violations.sort((x, y) => x.at - y.at);
  return { invariants, violations };
}

/** A pino line at error level or above, or a stack-trace line. */
export function isProblemLine(line: string): boolean {
  if (/^\s+at .+(:\d+:\d+\)?|\(native\))$/.test(line)) return true;
  if (line.startsWith('{')) {
    try { const j = JSON.parse(line) as { level?: unknown }; return typeof j.level === 'number' && j.level >= 50; } catch { return false; }
  }
  // Uncaught errors and Node's own warnings (a listener leak, an unhandled rejection) print plain lines.
  return /^(\w*Error\b|Uncaught|Unhandled|\(node:\d+\) \w*(Warning|Error))/.test(line);
}
