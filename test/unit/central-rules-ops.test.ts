import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES, emptyMem, reachOf, sweepEveryMs, TOLD_PER_TICK, type Input } from '../../central/rules/index.js';
import type { GatewayBeatMsg, MonitorReportMsg } from '../../protocol/index.js';
import { commands, counts, logs, updates, v, World } from '../helpers/central-rules.js';

/** Central's rules for monitors, admins, time and the bus (central/rules/ops.ts), input by input. */

const report = (cp: string, kind: MonitorReportMsg['kind'], ok = kind !== 'fault'): Input =>
  ({ t: 'monitor_report', r: { v, cp_id: cp, monitor_id: `m-${cp}`, kind, engine_ok: ok, ts: 1 } });
const beat = (gw: string, seq: number, extra: Partial<GatewayBeatMsg> = {}): Input =>
  ({ t: 'gateway_beat', key: gw, m: { v, type: 'gateway', gateway_id: gw, boot_id: 'gb1', interval_ms: 1000, cps: 1, seq, ts: 1, ...extra } });
const tick: Input = { t: 'tick', busUp: true };

describe('central sweep period', () => {
  it('four a second up to 1,000 CPs, one a second from 4,000, always shorter than a pause and a gateway silence', () => {
    expect([0, 1_000, 2_000, 4_000, 10_000, 100_000].map(sweepEveryMs)).toEqual([250, 250, 500, 1_000, 1_000, 1_000]);
    expect(sweepEveryMs(1e9)).toBeLessThan(DEFAULT_RULES.pauseMs);
    expect(DEFAULT_RULES.pauseMs).toBeLessThan(DEFAULT_RULES.gatewayMissedBeats * 1_000);
  });
});

describe('central rules: monitor report', () => {
  it('an unknown CP is listed (seen by its monitor) below maxCps and refused beyond', () => {
    const w = new World({ maxCps: 1 });
    const r = w.step(report('CP-1', 'heartbeat'));
    expect(r.reply).toBe(true);
    expect(r.events).toMatchObject([{ t: 'cp_seen', cp_id: 'CP-1', source: 'monitor' }]);
    const r2 = w.step(report('CP-2', 'heartbeat'));
    expect(r2.reply).toBe(false);
    expect(counts(r2)).toEqual(['monitor_reports_refused']);
  });
  it('a fault mid-session holds it for the CP\'s record (fault) and stops the supply; the change is said once', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    w.step(report('CP-1', 'heartbeat'));
    const r = w.step(report('CP-1', 'fault'));
    expect(r.events).toEqual([{ t: 'session_pending_end', session_id: 'S-1', reason: 'fault', deadline: w.now + w.o.endGraceMs }]);
    expect(commands(r)).toMatchObject([{ command: 'STOP_SUPPLY', session_id: 'S-1' }]);
    expect(logs(r)).toEqual(['CP-1 monitor KO']);
    expect(logs(w.step(report('CP-1', 'fault')))).toEqual([]);
  });
});

describe('central rules: admin', () => {
  it('stop: journaled, the running session held (cp_stopped), STOP_CP; unknown CP: reply false', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    const r = w.step({ t: 'admin', cp_id: 'CP-1', stop: true });
    expect(r.reply).toBe(true);
    expect(r.events.map((e) => e.t)).toEqual(['cp_admin', 'session_pending_end']);
    expect(commands(r)).toMatchObject([{ command: 'STOP_CP', expires_at: w.now + w.o.commandTtlMs }]);
    expect(w.step({ t: 'admin', cp_id: 'CP-9', stop: true }).reply).toBe(false);
    expect(commands(w.step({ t: 'admin', cp_id: 'CP-1', stop: false }))).toMatchObject([{ command: 'RESUME_CP' }]);
  });
});

describe('central rules: tick', () => {
  it('closes a hold past its deadline from the last telemetry, as interrupted', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { kwh: 3 });
    w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: 'cp_stopped', deadline: w.now + 5000 });
    expect(w.step(tick, 4999).events).toEqual([]);
    const r = w.step(tick, 1);
    expect(r.events).toMatchObject([{ t: 'session_ended', ticket: { kwh: 3, eur: 1.2, reason: 'cp_stopped', interrupted: true } }]);
    expect(r.reply).toBe(true);
    expect(updates(r)).toMatchObject([{ status: 'INTERRUPTED' }]);
  });
  it('closes a START never confirmed within startConfirmMs as "unconfirmed"', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { confirmed: false });
    expect(w.step(tick, w.o.startConfirmMs).events).toEqual([]);
    const r = w.step(tick, 1);
    expect(r.events).toMatchObject([{ t: 'session_ended', ticket: { reason: 'unconfirmed', interrupted: true } }]);
    expect(counts(r)).toContain('unconfirmed_closed');
  });
  it('a CP behind a silent gateway: said once, its session held (not closed) for unreachableGraceMs; back in time, the hold is lifted', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' }).cp('CP-2', { gw: 'GW-A' });
    w.session('S-1', 'CP-1', 'd1');
    w.step(beat('GW-A', 1));
    const r = w.step(tick, 3001);
    expect(r.events).toEqual([{ t: 'session_pending_end', session_id: 'S-1', reason: 'unreachable', deadline: w.now + w.o.unreachableGraceMs }]);
    expect(logs(r).filter((l) => /unreachable: gateway GW-A silent/.test(l))).toHaveLength(2);
    expect(counts(r)).toContain('unreachable_holds');
    expect(logs(w.step(tick, 250))).toEqual([]);
    // The gateway and the CP come back: the CP shows the session again.
    w.step(beat('GW-A', 2));
    w.step({ t: 'telemetry', key: 'CP-1', m: { v, type: 'telemetry', cp_id: 'CP-1', session_id: 'S-1', kw: 22, kwh: 1, eur: 0.4, seq: 1, ts: 1 } });
    expect(w.st.durable.sessions.get('S-1')!.pending_end).toBeNull();
    expect(logs(w.step(tick)).filter((l) => /reachable again/.test(l))).toHaveLength(2);
  });
  it('a gateway whose beats run late while it still forwards (overloaded) is not silent; once nothing comes from it either, it is', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' });
    w.session('S-1', 'CP-1', 'd1');
    w.step(beat('GW-A', 1));
    const reading = (seq: number, gw?: string): Input => ({ t: 'telemetry', key: 'CP-1', m: { v, type: 'telemetry', cp_id: 'CP-1', session_id: 'S-1', kw: 22, kwh: seq, eur: seq, seq, ts: w.now, ...(gw ? { gw } : {}) } });
    // Ten seconds without a beat, but a reading forwarded by GW-A every second: reachable, nothing held.
    for (let s = 1; s <= 10; s++) {
      w.step(reading(s, 'GW-A'), 1000);
      const r = w.step(tick);
      expect(r.events.filter((e) => e.t === 'session_pending_end')).toEqual([]);
      expect(logs(r).filter((l) => /silent/.test(l))).toEqual([]);
    }
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toEqual({ ok: true });
    // A reading stamped by no gateway (or another one) is not GW-A's proof of life.
    w.step(reading(11), 1000); w.step(reading(12, 'GW-B'), 1000);
    const r = w.step(tick, 1001);
    expect(logs(r)).toContain('CP-1 unreachable: gateway GW-A silent');
    expect(r.events).toMatchObject([{ t: 'session_pending_end', session_id: 'S-1', reason: 'unreachable' }]);
  });
  it('a gateway falling silent behind many CPs: the first few told one by one, the rest in one line per kind; every session still held', () => {
    const w = new World();
    const n = TOLD_PER_TICK + 15;
    for (let i = 1; i <= n; i++) { w.cp(`CP-${i}`, { gw: 'GW-A' }); w.session(`S-${i}`, `CP-${i}`, `d${i}`); }
    w.step(beat('GW-A', 1));
    const r = w.step(tick, 3001);
    expect(r.events.filter((e) => e.t === 'session_pending_end')).toHaveLength(n);
    const lines = logs(r);
    expect(lines.filter((l) => /^CP-\d+ unreachable: gateway GW-A silent$/.test(l))).toHaveLength(TOLD_PER_TICK);
    expect(lines.filter((l) => l === 'charging point unreachable mid-session, holding the session')).toHaveLength(TOLD_PER_TICK);
    expect(lines).toContain(`15 more charging points unreachable: gateway GW-A silent (${n} in all)`);
    expect(lines).toContain(`15 more sessions held, their charging point unreachable: gateway GW-A silent (${n} in all)`);
    expect(lines).toHaveLength(2 * TOLD_PER_TICK + 2);
    // The dashboard's recent events likewise: the first few and one summary.
    expect(r.notes.filter((x) => x.n === 'recent')).toHaveLength(TOLD_PER_TICK + 1);
    // Back: told the same way.
    w.step(beat('GW-A', 2));
    expect(logs(w.step(tick))).toContain(`15 more charging points reachable again (${n} in all)`);
  });
  it("central's own pause (SIGSTOP, a stalled loop) is not the gateways' silence: said once, silences and deadlines count from the resume; a gateway silent after it is judged as ever", () => {
    const w = new World({ pauseMs: 2000 }).cp('CP-1', { gw: 'GW-A' });
    w.session('S-1', 'CP-1', 'd1', { kwh: 2 });
    w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: 'disconnected', deadline: w.now + 1000 });
    w.step(beat('GW-A', 1));
    w.step(tick, 250);
    // Stopped for 40 s: longer than the gateway's silence limit, the hold's deadline and the unreachable grace.
    const r = w.step(tick, 40_000);
    expect(r.events).toEqual([]);
    expect(logs(r)).toEqual(['central was paused for 40000 ms (stopped or stalled): silences and deadlines count from now']);
    expect(counts(r)).toContain('self_pauses');
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toEqual({ ok: true });
    // The gateway's queued beats and the CP's record arrive after the resume: nothing was closed on a guess.
    w.step(beat('GW-A', 2), 50);
    expect(w.st.durable.sessions.get('S-1')!.status).toBe('ACTIVE');
    // The gateway really silent after the resume: unreachable after its missed beats, as without a pause.
    let held = false;
    for (let t = 0; t < 3500 && !held; t += 250) held = w.step(tick, 250).events.length > 0 || held;
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toMatchObject({ ok: false, detail: 'gateway GW-A silent' });
  });
  it('a CP behind a gateway that stays silent: the held session is closed "unreachable" after the grace', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' });
    w.session('S-1', 'CP-1', 'd1', { kwh: 2 });
    w.step(beat('GW-A', 1));
    w.step(tick, 3001);
    const r = w.step(tick, w.o.unreachableGraceMs);
    expect(r.events).toMatchObject([{ t: 'session_ended', ticket: { reason: 'unreachable', kwh: 2, interrupted: true } }]);
  });
  it('while central\'s own bus is down every CP is unreachable, yet nothing is held or closed; deadlines get a grace after it is back', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' });
    w.session('S-1', 'CP-1', 'd1');
    w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: 'disconnected', deadline: w.now + 1000 });
    w.step(beat('GW-A', 1));
    const down = w.step({ t: 'tick', busUp: false }, 10_000);
    expect(down.events).toEqual([]);
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toMatchObject({ ok: false, detail: "central's bus is down" });
    expect(w.step({ t: 'tick', busUp: true }, 1).events).toEqual([]);
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toEqual({ ok: true }); // silences count from the bus's return
    expect(w.step(tick, w.o.endGraceMs).events).toMatchObject([{ t: 'session_ended', ticket: { reason: 'disconnected' } }]);
  });
  it('a monitor that fell silent is DOWN, said once', () => {
    const w = new World().cp('CP-1');
    w.step(report('CP-1', 'heartbeat'));
    const r = w.step(tick, w.o.monitorTimeoutMs + 1);
    expect(logs(r)).toEqual([`CP-1 monitor DOWN (silent for over ${w.o.monitorTimeoutMs} ms)`]);
    expect(r.reply).toBe(true);
    expect(w.step(tick, 250).reply).toBe(false);
  });
  it('bounded growth: request ids beyond maxRequests or older than requestTtlMs and delivered sessions beyond maxSessions are pruned', () => {
    const w = new World({ maxRequests: 3, maxSessions: 2 }).cp('CP-1');
    for (let i = 0; i < 5; i++) {
      const s = w.session(`S-${i}`, 'CP-1', `d${i}`);
      w.journal({ t: 'session_ended', session_id: s.session_id, ticket: { session_id: s.session_id, cp_id: 'CP-1', driver_id: `d${i}`, kwh: 1, eur: 0.4, price_eur_kwh: 0.4, started_at: 0, ended_at: 1, duration_s: 0, reason: 'full', interrupted: false } });
      if (i !== 0) w.journal({ t: 'ticket_sent', session_id: s.session_id });
    }
    const r = w.step(tick);
    expect(r.events).toEqual([{ t: 'pruned', request_ids: ['r-S-0', 'r-S-1'], session_ids: ['S-1', 'S-2', 'S-3'] }]);
    // S-0's ticket never reached its driver: kept.
    expect([...w.st.durable.sessions.keys()]).toEqual(['S-0', 'S-4']);
    expect(w.st.durable.requests.size).toBe(3);
    expect(w.step(tick, w.o.requestTtlMs + 1).events).toMatchObject([{ t: 'pruned', request_ids: ['r-S-2', 'r-S-3', 'r-S-4'] }]);
  });
  it('a running session\'s request id is never pruned', () => {
    const w = new World({ maxRequests: 0 }).cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    expect(w.step(tick).events).toEqual([]);
  });
});

describe('central rules: bus up', () => {
  it('tickets that never reached their driver go again', () => {
    const w = new World().cp('CP-1');
    const s = w.session('S-1', 'CP-1', 'd1');
    w.journal({ t: 'session_ended', session_id: s.session_id, ticket: { session_id: 'S-1', cp_id: 'CP-1', driver_id: 'd1', kwh: 1, eur: 0.4, price_eur_kwh: 0.4, started_at: 0, ended_at: 1, duration_s: 0, reason: 'full', interrupted: false } });
    const r = w.step({ t: 'bus_up' });
    expect(updates(r)).toMatchObject([{ driver_id: 'd1', status: 'COMPLETED' }]);
    w.deliver(r);
    expect(updates(w.step({ t: 'bus_up' }))).toEqual([]);
  });
  it('memory starts with the bus down until a tick sees it', () => {
    expect(emptyMem(5).busUp).toBe(false);
  });
});

describe('central rules: journal events they add', () => {
  it('every event type the rules journal that state.ts did not have before validates with RULES_EVENT_SCHEMAS', async () => {
    const { RULES_EVENT_SCHEMAS } = await import('../../central/rules/event-schemas.js');
    const w = new World({ maxRequests: 0 }).cp('CP-1', { gw: 'GW-A' });
    w.session('S-1', 'CP-1', 'd1');
    w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: 'disconnected', deadline: w.now + 5000 });
    const events = [
      ...w.step(beat('GW-A', 1)).events,
      ...w.step({ t: 'telemetry', key: 'CP-1', m: { v, type: 'telemetry', cp_id: 'CP-1', session_id: 'S-1', kw: 1, kwh: 1, eur: 1, seq: 1, ts: 1 } }).events,
      ...w.step({ t: 'session_end', key: 'CP-1', m: { v, type: 'session_end', cp_id: 'CP-1', session_id: 'S-1', kwh: 1, eur: 0.4, price_eur_kwh: 0.4, started_at: 1, ended_at: 2, reason: 'full', ts: 1 } }).events,
      ...w.step(tick).events,
    ];
    const added = events.filter((e) => ['session_resumed', 'gateway_seen', 'pruned'].includes(e.t));
    expect(added.map((e) => e.t).sort()).toEqual(['gateway_seen', 'pruned', 'session_resumed']);
    for (const e of added) expect(RULES_EVENT_SCHEMAS.some((s) => s.safeParse(e).success), e.t).toBe(true);
  });
});

describe('central rules: the bus lost and back', () => {
  it('unsent tickets go again when the bus returns after a loss (not on the first connection)', () => {
    const w = new World({}, emptyMem(1_000_000));
    const s = w.session('S-1', 'CP-1', 'd1');
    w.journal({ t: 'session_ended', session_id: s.session_id, ticket: { session_id: 'S-1', cp_id: 'CP-1', driver_id: 'd1', kwh: 1, eur: 0.4, price_eur_kwh: 0.4, started_at: 0, ended_at: 1, duration_s: 0, reason: 'full', interrupted: false } });
    expect(updates(w.step(tick, 10))).toEqual([]); // first connection: central.ts sends bus_up itself
    w.step({ t: 'tick', busUp: false }, 10);
    expect(updates(w.step(tick, 10))).toMatchObject([{ driver_id: 'd1', status: 'COMPLETED' }]);
  });
});
