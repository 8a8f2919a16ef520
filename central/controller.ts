import { randomBytes } from 'node:crypto';
import type { Logger } from '../lib/log.js';
import type { BusMessage, BusTopic, CpTelemetryMsg, DriverRequestMsg, MonitorReportMsg } from '../protocol/index.js';
import type { BusHandlerMeta, PublishOptions } from '../bus/types.js';
import { newCounters, newTelemetryDelayHistogram, type Counters } from './metrics.js';
import type { MonitorRecord, MonitorStatus } from './monitors.js';
import { applyMem, cpStatusInput, DEFAULT_RULES, emptyMem, handle, reachOf, type Input, type Mem, type Note, type Out, type Result, type RulesOptions } from './rules/index.js';
import { monitorOf } from './rules/common.js';
import { activeSessionAt, type CentralEvent, type CentralState, type CpRecord, type SessionRecord } from './state.js';
import type { Store } from './store.js';
import { cpView, sessionView, type CpView } from './view.js';

/**
 * Central's shell around its rules (central/rules): inputs are handled one at a time (a
 * promise chain), so every decision sees the state the previous one left; for each, `handle`
 * says what follows and this class carries it out: journal the events, apply the memory
 * changes, publish once what was journaled is durable (an accepted session exists on disk
 * before START_SUPPLY leaves), log and count the notes, tell the listeners.
 */

export type ControllerOptions = Pick<RulesOptions, 'monitorTimeoutMs' | 'endGraceMs' | 'startConfirmMs' | 'maxCps'> & Partial<Omit<RulesOptions, 'newId'>> & {
  /** Whether central's own bus is connected now (while it is not, no gateway or CP is judged silent). */
  busUp?: () => boolean;
};

export type Publish = <T extends BusTopic>(topic: T, key: string, value: BusMessage<T>, opts?: PublishOptions) => Promise<void>;

export interface RefusedInput { at: number; counter: string; source: string; what: string; fields: Record<string, unknown> }

export interface RecentEvent { at: number; level: 'info' | 'warn'; cp_id?: string; driver_id?: string; text: string }

export { COUNTER_NAMES, type CounterName } from './metrics.js';

/** The order CPs are listed in (as `localeCompare`, once). */
const byId = new Intl.Collator().compare;

export class Controller {
  readonly counters: Counters = newCounters();
  readonly telemetryDelay = newTelemetryDelayHistogram();
  readonly rejectReasons = new Map<string, number>();
  readonly recent: RecentEvent[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private readonly notYetDurable = new Set<string>();
  private listeners: Array<() => void> = [];
  private refusedListeners: Array<(r: RefusedInput) => void> = [];
  private readonly mem: Mem;
  private readonly rules: RulesOptions;

  constructor(
    private readonly store: Store,
    private readonly publishRaw: Publish,
    private readonly log: Logger,
    private readonly opts: ControllerOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.mem = emptyMem(now());
    const { busUp: _busUp, ...rest } = opts;
    this.rules = { ...DEFAULT_RULES, ...rest, newId: () => `${this.now().toString(36)}-${randomBytes(4).toString('hex')}` };
  }

  get state(): CentralState { return this.store.state; }
  get storeCounters() { return this.store.counters; }
  get monitors(): ReadonlyMap<string, MonitorRecord> { return this.mem.monitors; }

  /** Called for every refused (forged) input, e.g. for an audit log; the log line itself comes once per source. */
  onRefused(fn: (r: RefusedInput) => void): void { this.refusedListeners.push(fn); }

  /** Called after every change (the SSE feed coalesces them). */
  onChange(fn: () => void): void { this.listeners.push(fn); }
  private changed(): void { for (const l of this.listeners) l(); }

  /** Runs `fn` after every input before it; listeners hear of it unless `fn` returns false with notify 'if-true'. */
  private exec<T>(fn: () => Promise<T> | T, notify: 'always' | 'if-true' = 'always'): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p.then((v) => { if (notify === 'always' || v === true) this.changed(); return v; }, (err: unknown) => { this.changed(); throw err; });
  }

  /** One input through the rules, and what they say carried out. */
  private run(input: Input): Result {
    const r = handle({ durable: this.store.state, mem: this.mem }, input, this.now(), this.rules);
    for (const e of r.mem) applyMem(this.mem, e);
    if (r.events.length) this.journal(r.events);
    for (const n of r.notes) this.note(n);
    for (const o of r.out) this.send(o);
    return r;
  }

  /**
   * Journals events: the state changes at once; the write is group-committed in the
   * background, and every publish waits until what was journaled before it is on disk.
   * Inputs so never wait for an fsync one by one, yet nothing is said on the bus that a
   * crash could make central forget.
   */
  private journal(events: CentralEvent[]): void {
    this.store.append(events).catch((err: Error) => this.log.error({ err: err.message }, 'journal write failed'));
    for (const e of events) {
      if (e.t !== 'session_started') continue;
      // /sessions shows a session only once it is on disk.
      const id = e.session.session_id;
      this.notYetDurable.add(id);
      void this.store.durable().then(() => this.notYetDurable.delete(id), () => undefined);
    }
  }

  private note(n: Note): void {
    switch (n.n) {
      case 'count': this.counters[n.name] += n.by ?? 1; return;
      case 'reject': this.rejectReasons.set(n.reason, (this.rejectReasons.get(n.reason) ?? 0) + 1); return;
      case 'log': this.log[n.level](n.fields, n.msg); return;
      case 'refused': {
        const { n: _n, ...r } = n;
        for (const l of this.refusedListeners) l({ at: this.now(), ...r });
        return;
      }
      case 'recent': {
        const { n: _n, ...e } = n;
        this.recent.push({ at: this.now(), ...e });
        if (this.recent.length > 100) this.recent.splice(0, this.recent.length - 100);
      }
    }
  }

  /** Publishes once the journal is durable, without holding up the input chain (a bus that is away must not stall central); failures are logged and counted. */
  private send(o: Out): void {
    void this.store.durable().then(() => this.publishRaw(o.topic, o.key, o.value as never, o.droppable ? { droppable: true } : undefined)).then(() => {
      // e.g. ticket_sent: marked once the bus took the ticket (else it goes again after a restart).
      if (o.then) void this.exec(() => this.store.append(o.then!)).catch(() => undefined);
    }, (err: Error) => {
      this.counters.publish_failures++;
      this.log.warn({ topic: o.topic, key: o.key, err: err.message }, 'bus publish failed');
    });
  }

  monitorOf(cpId: string): MonitorStatus {
    return monitorOf({ durable: this.state, mem: this.mem }, cpId, this.now(), this.rules);
  }

  // --- views --------------------------------------------------------------------------------

  private viewOf(cp: CpRecord, active: SessionRecord | undefined): CpView {
    const reach = reachOf({ durable: this.state, mem: this.mem }, cp.cp_id, this.now(), this.rules, active ?? null);
    return cpView(cp, this.monitorOf(cp.cp_id), active, reach);
  }

  cpViews(): CpView[] {
    // One collator for the whole sort: localeCompare builds one per call (at 10,000 CPs, GET /cp held central ~1 s).
    return [...this.state.cps.values()].sort((a, b) => byId(a.cp_id, b.cp_id)).map((cp) => this.viewOf(cp, activeSessionAt(this.state, cp.cp_id)));
  }
  cpViewOf(id: string): CpView | undefined {
    const cp = this.state.cps.get(id);
    return cp && this.viewOf(cp, activeSessionAt(this.state, id));
  }
  /** Sessions running now (the original API calls them active requests). */
  activeSessions(): number {
    let n = 0;
    for (const s of this.state.sessions.values()) if (s.status === 'ACTIVE') n++;
    return n;
  }
  /** Sessions as shown over HTTP: only those on disk, so a crash never takes back a session central has shown. */
  sessionViews() {
    return [...this.state.sessions.values()].filter((s) => !this.notYetDurable.has(s.session_id))
      .sort((a, b) => a.started_at - b.started_at).map(sessionView);
  }

  // --- inputs -------------------------------------------------------------------------------

  onCpStatusTopic(m: BusMessage<'cp.status'>, meta?: BusHandlerMeta): Promise<void> {
    return this.exec(() => { this.run(cpStatusInput(m, meta?.key)); });
  }

  onTelemetry(m: CpTelemetryMsg, meta?: BusHandlerMeta): Promise<void> {
    return this.exec(() => {
      this.run({ t: 'telemetry', m, key: meta?.key });
      // A clock ahead of central's (another host) reads as no delay rather than a negative one.
      this.telemetryDelay.observe(Math.max(0, this.now() - m.ts) / 1000);
    });
  }

  onDriverRequest(m: DriverRequestMsg, meta?: BusHandlerMeta): Promise<void> {
    return this.exec(() => { this.run({ t: 'driver', m, key: meta?.key }); });
  }

  /** False when the report names an unknown CP and the registry is full. */
  onMonitorReport(r: MonitorReportMsg): Promise<boolean> {
    return this.exec(() => this.run({ t: 'monitor_report', r }).reply !== false);
  }

  /** Stops (or resumes) a CP; undefined when central does not know it. */
  adminSet(cpId: string, stop: boolean): Promise<CpView | undefined> {
    return this.exec(() => (this.run({ t: 'admin', cp_id: cpId, stop }).reply ? this.cpViewOf(cpId) : undefined));
  }

  /** Periodic (deadlines, silences, pruning); true when anything shown changed. */
  sweep(): Promise<boolean> {
    return this.exec(() => this.run({ t: 'tick', busUp: this.opts.busUp?.() ?? true }).reply === true, 'if-true');
  }

  /** After a restart or a bus reconnect: tickets that never reached their driver go again. */
  resendPending(): void {
    void this.exec(() => { this.run({ t: 'bus_up' }); }, 'if-true').catch(() => undefined);
  }

  /** Resolves when every input so far is handled. */
  idle(): Promise<void> { return this.chain.then(() => undefined); }
}
