import { applyMem, DEFAULT_RULES, emptyMem, handle, type Input, type Mem, type Result, type RulesOptions, type RulesState } from '../../central/rules/index.js';
import { apply, emptyState, type CentralEvent, type SessionRecord } from '../../central/state.js';
import { PROTOCOL_VERSION, type ProfileSummary } from '../../protocol/index.js';

/**
 * A world for central's rules without I/O: the durable state built by the reducer, memory by
 * applyMem, and `step` runs one input through `handle` and applies what it says, as the
 * controller does (minus the disk and the bus). Counters and published messages are kept.
 */
export const profile: ProfileSummary = { name: 'ac-22kw', max_kw: 22, price_eur_kwh: 0.4, connector: 'Type2', phases: 3, hal: 'sim' };

export class World {
  readonly st: RulesState;
  readonly o: RulesOptions;
  readonly results: Result[] = [];
  now = 1_000_000;
  private ids = 0;

  constructor(opts: Partial<RulesOptions> = {}, mem: Mem = emptyMem(1_000_000, true)) {
    this.st = { durable: emptyState(), mem };
    // Tests jump the clock between ticks; the pause rule (a long gap between ticks) has tests of its own.
    this.o = { ...DEFAULT_RULES, pauseMs: Number.POSITIVE_INFINITY, newId: () => `id${++this.ids}`, ...opts };
  }

  journal(...events: CentralEvent[]): this { for (const e of events) apply(this.st.durable, e); return this; }

  step(input: Input, advanceMs = 0): Result {
    this.now += advanceMs;
    const r = handle(this.st, input, this.now, this.o);
    for (const e of r.mem) applyMem(this.st.mem, e);
    for (const e of r.events) apply(this.st.durable, e);
    this.results.push(r);
    return r;
  }

  /** Publishes succeed at once: what `then` says is journaled. */
  deliver(r: Result): void { for (const o of r.out) for (const e of o.then ?? []) apply(this.st.durable, e); }

  /** An ACTIVATED CP, known from its announce and status. */
  cp(id: string, extra: { gw?: string; price?: number } = {}): this {
    return this.journal(
      { t: 'cp_announced', cp_id: id, profile: { ...profile, price_eur_kwh: extra.price ?? profile.price_eur_kwh }, boot_id: 'b1', ...(extra.gw ? { gw: extra.gw } : {}), at: this.now },
      { t: 'cp_status', cp_id: id, state: 'ACTIVATED', faults: [], seq: 1, at: this.now },
    );
  }

  session(id: string, cpId: string, driverId: string, extra: Partial<SessionRecord> = {}): SessionRecord {
    const s: SessionRecord = {
      session_id: id, cp_id: cpId, driver_id: driverId, request_id: `r-${id}`, status: 'ACTIVE', started_at: this.now, ended_at: null,
      kw: 0, kwh: 0, eur: 0, price_eur_kwh: 0.4, end_reason: null, interrupted: false, ticket: null, confirmed: true, ticket_sent: false,
      pending_end: null, telemetry_seq: -1, ...extra,
    };
    this.journal(
      { t: 'session_started', session: s },
      { t: 'request_done', request: { request_id: s.request_id, driver_id: driverId, action: 'REQUEST', cp_id: cpId, outcome: 'ACCEPTED', session_id: id, at: this.now } },
    );
    return this.st.durable.sessions.get(id)!;
  }
}

export const v = PROTOCOL_VERSION;
export const counts = (r: Result) => r.notes.flatMap((n) => (n.n === 'count' ? Array(n.by ?? 1).fill(n.name) as string[] : []));
export const commands = (r: Result) => r.out.filter((o) => o.topic === 'central.commands').map((o) => o.value as Record<string, unknown>);
export const updates = (r: Result) => r.out.filter((o) => o.topic === 'driver.updates').map((o) => o.value as Record<string, unknown>);
export const logs = (r: Result) => r.notes.flatMap((n) => (n.n === 'log' ? [n.msg] : []));

export const req = (driver: string, action: 'REQUEST' | 'STOP' | 'QUERY' | 'CANCEL', extra: Record<string, unknown> = {}) =>
  ({ t: 'driver', key: driver, m: { v, request_id: `${driver}-${action}-${Math.random().toString(36).slice(2, 8)}`, driver_id: driver, action, ts: 1, ...extra } }) as Input;
