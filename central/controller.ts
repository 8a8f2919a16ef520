import { randomBytes } from 'node:crypto';
import type { Logger } from '../lib/log.js';
import {
  INTERRUPTING_END_REASONS, PROTOCOL_VERSION,
  type BusMessage, type CentralCommandMsg, type Command, type CommandAckMsg, type CpAnnounceMsg, type CpStatusMsg, type CpTelemetryMsg,
  type DriverRequestMsg, type DriverUpdateMsg, type BusTopic, type MonitorReportMsg, type SessionEndMsg, type SessionEndReason,
} from '../protocol/index.js';
import { makeTicket } from './billing.js';
import { decideRequest, decideStop } from './decisions.js';
import { monitorStatus, reportSaysOk, type MonitorRecord, type MonitorStatus } from './monitors.js';
import { activeSessionAt, activeSessionOf, latestSessionOf, type CentralEvent, type CentralState, type SessionRecord } from './state.js';
import type { Store } from './store.js';
import { sessionUpdate } from './updates.js';
import { cpView, sessionView, type CpView } from './view.js';

/**
 * Central's behaviour: bus messages, monitor reports and admin actions in, journal events and
 * bus messages out. Inputs are handled one at a time (a promise chain), so every decision sees
 * the state the previous one left; events are durable before the messages that follow from
 * them are published (an accepted session exists on disk before START_SUPPLY leaves).
 */

export interface ControllerOptions {
  monitorTimeoutMs: number;
  /** How long central waits for a CP's own session_end after a fault, stop or lost link before closing the session from telemetry. */
  endGraceMs: number;
  /** How long a START_SUPPLY may stay unconfirmed (no ack, status or telemetry) before the session is closed. */
  startConfirmMs: number;
  /** Above this many CPs, a monitor report for an unknown CP is refused instead of registering it. */
  maxCps: number;
}

export type Publish = <T extends BusTopic>(topic: T, key: string, value: BusMessage<T>) => Promise<void>;

export interface RecentEvent { at: number; level: 'info' | 'warn'; cp_id?: string; driver_id?: string; text: string }

export const COUNTER_NAMES = [
  'requests', 'accepted', 'rejected', 'duplicate_requests', 'stops', 'queries',
  'statuses', 'stale_statuses', 'announces', 'acks', 'failed_acks', 'session_ends', 'duplicate_session_ends', 'unknown_session_ends',
  'telemetry', 'telemetry_ignored', 'monitor_reports', 'monitor_reports_refused', 'closed_by_central', 'publish_failures',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];

export class Controller {
  readonly monitors = new Map<string, MonitorRecord>();
  readonly counters = Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as Record<CounterName, number>;
  readonly rejectReasons = new Map<string, number>();
  readonly recent: RecentEvent[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private readonly lastProgress = new Map<string, number>();
  private readonly notYetDurable = new Set<string>();
  private readonly shownMonitor = new Map<string, MonitorStatus>();
  private listeners: Array<() => void> = [];
  private readonly bootAt: number;

  constructor(
    private readonly store: Store,
    private readonly publishRaw: Publish,
    private readonly log: Logger,
    private readonly opts: ControllerOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.bootAt = now();
  }

  get state(): CentralState { return this.store.state; }
  get storeCounters() { return this.store.counters; }

  /** Called after every change (the SSE feed coalesces them). */
  onChange(fn: () => void): void { this.listeners.push(fn); }
  private changed(): void { for (const l of this.listeners) l(); }

  private note(level: RecentEvent['level'], text: string, extra: Partial<RecentEvent> = {}): void {
    this.recent.push({ at: this.now(), level, text, ...extra });
    if (this.recent.length > 100) this.recent.splice(0, this.recent.length - 100);
  }

  /** Runs `fn` after every input before it; listeners hear of it unless `fn` returns false with notify 'if-true'. */
  private exec<T>(fn: () => Promise<T> | T, notify: 'always' | 'if-true' = 'always'): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p.then((v) => { if (notify === 'always' || v === true) this.changed(); return v; }, (err: unknown) => { this.changed(); throw err; });
  }

  /**
   * Journals events: the state changes at once; the write is group-committed in the
   * background, and every publish waits until what was journaled before it is on disk.
   * Inputs so never wait for an fsync one by one, yet nothing is said on the bus that a
   * crash could make central forget.
   */
  private journal(events: CentralEvent[]): void {
    this.store.append(events).catch((err: Error) => this.log.error({ err: err.message }, 'journal write failed'));
  }

  /** Publishes once the journal is durable, without holding up the input chain (a bus that is away must not stall central); failures are logged and counted. */
  private publish<T extends BusTopic>(topic: T, key: string, value: BusMessage<T>): Promise<boolean> {
    return this.store.durable().then(() => this.publishRaw(topic, key, value)).then(() => true, (err: Error) => {
      this.counters.publish_failures++;
      this.log.warn({ topic, key, err: err.message }, 'bus publish failed');
      return false;
    });
  }

  private command(cpId: string, command: Command, extra: Partial<CentralCommandMsg> = {}, commandId = `${command}-${newId()}`): Promise<boolean> {
    return this.publish('central.commands', cpId, { v: PROTOCOL_VERSION, command_id: commandId, cp_id: cpId, command, ts: this.now(), ...extra });
  }

  private update(driverId: string, status: DriverUpdateMsg['status'], extra: Partial<DriverUpdateMsg> = {}): Promise<boolean> {
    return this.publish('driver.updates', driverId, { v: PROTOCOL_VERSION, driver_id: driverId, status, ts: this.now(), ...extra });
  }

  monitorOf(cpId: string): MonitorStatus {
    return monitorStatus(this.monitors.get(cpId), this.now(), this.opts.monitorTimeoutMs);
  }

  // --- views --------------------------------------------------------------------------------

  cpViews(): CpView[] {
    return [...this.state.cps.values()].sort((a, b) => a.cp_id.localeCompare(b.cp_id))
      .map((cp) => cpView(cp, this.monitorOf(cp.cp_id), activeSessionAt(this.state, cp.cp_id)));
  }
  cpViewOf(id: string): CpView | undefined {
    const cp = this.state.cps.get(id);
    return cp && cpView(cp, this.monitorOf(id), activeSessionAt(this.state, id));
  }
  activeRequests(): number {
    let n = 0;
    for (const s of this.state.sessions.values()) if (s.status === 'ACTIVE') n++;
    return n;
  }
  /** Sessions as shown over HTTP: only those on disk, so a crash never takes back a session central has shown. */
  sessionViews() {
    return [...this.state.sessions.values()].filter((s) => !this.notYetDurable.has(s.session_id))
      .sort((a, b) => a.started_at - b.started_at).map(sessionView);
  }

  // --- bus: cp.status -------------------------------------------------------------------------

  onCpStatusTopic(m: BusMessage<'cp.status'>): Promise<void> {
    return this.exec(async () => {
      switch (m.type) {
        case 'announce': return this.onAnnounce(m);
        case 'status': return this.onStatus(m);
        case 'ack': return this.onAck(m);
        case 'session_end': return this.onSessionEnd(m);
      }
    });
  }

  private async onAnnounce(m: CpAnnounceMsg): Promise<void> {
    this.counters.announces++;
    const cp = this.state.cps.get(m.cp_id);
    const events: CentralEvent[] = [];
    const newBoot = !!cp?.boot_id && cp.boot_id !== m.boot_id;
    // The engine restarted: whatever it was supplying died with the old boot.
    const active = activeSessionAt(this.state, m.cp_id);
    if (newBoot && active) events.push(...this.closeEvents(active, 'engine_restart'));
    events.push({ t: 'cp_announced', cp_id: m.cp_id, profile: m.profile, boot_id: m.boot_id, health_host: m.health_host, health_port: m.health_port, at: this.now() });
    this.journal(events);
    if (!cp || newBoot) {
      this.log.info({ cp_id: m.cp_id, profile: m.profile.name, boot_id: m.boot_id }, cp ? 'charging point restarted' : 'charging point registered');
      this.note('info', `${m.cp_id} ${cp ? 'restarted' : 'registered'} (${m.profile.name})`, { cp_id: m.cp_id });
    }
    if (newBoot && active) this.sendFinal(active.session_id);
    // An admin stop outlives the engine's restart.
    if (this.state.cps.get(m.cp_id)?.admin_stopped) void this.command(m.cp_id, 'STOP_CP');
  }

  private async onStatus(m: CpStatusMsg): Promise<void> {
    this.counters.statuses++;
    const cp = this.state.cps.get(m.cp_id);
    const prevState = cp?.engine_state;
    // A last will (or the gateway's word for a dropped link) is authoritative whatever its seq.
    if (cp && m.source === 'engine' && m.seq <= cp.status_seq) { this.counters.stale_statuses++; return; }
    const events: CentralEvent[] = [{ t: 'cp_status', cp_id: m.cp_id, state: m.state, faults: m.faults, session_id: m.session_id, seq: m.seq, at: this.now() }];
    const active = activeSessionAt(this.state, m.cp_id);
    if (active && m.session_id === active.session_id && m.state === 'SUPPLYING' && !active.confirmed) events.push({ t: 'session_confirmed', session_id: active.session_id });
    if (active && m.state === 'DISCONNECTED' && m.source !== 'engine') {
      // The link died without a session_end: wait a little for the CP's own record, then close from telemetry.
      events.push({ t: 'session_pending_end', session_id: active.session_id, reason: 'disconnected', deadline: this.now() + this.opts.endGraceMs });
    } else if (active && !active.pending_end && m.source === 'engine' && cp?.engine_state === 'SUPPLYING' && cp.engine_session_id === active.session_id
      && !(m.state === 'SUPPLYING' && m.session_id === active.session_id)) {
      // The engine moved on from this session (its statuses are in order, so this one is newer than the
      // SUPPLYING one) yet no session_end came: it was lost (e.g. acknowledged by a bus just before a crash).
      // Wait for it a little, then close from telemetry, so the CP does not stay busy for ever.
      const reason: SessionEndReason = m.state === 'FAULTY' ? 'fault' : m.state === 'STOPPED' ? 'cp_stopped' : 'disconnected';
      events.push({ t: 'session_pending_end', session_id: active.session_id, reason, deadline: this.now() + this.opts.endGraceMs });
    }
    this.journal(events);
    if (prevState !== m.state) {
      this.log.info({ cp_id: m.cp_id, state: m.state, source: m.source, reason: m.reason }, `${m.cp_id} is ${m.state}`);
      this.note(m.state === 'FAULTY' || m.state === 'DISCONNECTED' ? 'warn' : 'info', `${m.cp_id} engine ${m.state}${m.reason ? ` (${m.reason})` : ''}`, { cp_id: m.cp_id });
    }
  }

  private async onAck(m: CommandAckMsg): Promise<void> {
    this.counters.acks++;
    if (m.ok) {
      if (m.command === 'START_SUPPLY') {
        const s = this.sessionOfStartCommand(m.command_id);
        if (s && !s.confirmed) this.journal([{ t: 'session_confirmed', session_id: s.session_id }]);
      }
      return;
    }
    this.counters.failed_acks++;
    this.log.warn({ cp_id: m.cp_id, command: m.command, command_id: m.command_id, reason: m.reason, state: m.state }, 'charging point refused a command');
    if (m.command !== 'START_SUPPLY') return;
    const s = this.sessionOfStartCommand(m.command_id);
    if (!s || s.status !== 'ACTIVE') return;
    // A redelivered START for the session the CP already runs is refused harmlessly.
    if (this.state.cps.get(m.cp_id)?.engine_session_id === s.session_id) return;
    const reason: SessionEndReason = m.state === 'FAULTY' ? 'fault' : m.state === 'DISCONNECTED' ? 'disconnected' : 'cp_stopped';
    this.journal(this.closeEvents(s, reason));
    this.note('warn', `${s.cp_id} refused session ${s.session_id}: ${m.reason ?? m.state}`, { cp_id: s.cp_id, driver_id: s.driver_id });
    this.sendFinal(s.session_id);
  }

  private sessionOfStartCommand(commandId: string): SessionRecord | undefined {
    const m = /^start:(.+)$/.exec(commandId);
    return m ? this.state.sessions.get(m[1]!) : undefined;
  }

  private async onSessionEnd(m: SessionEndMsg): Promise<void> {
    this.counters.session_ends++;
    const s = this.state.sessions.get(m.session_id);
    if (!s) {
      this.counters.unknown_session_ends++;
      // A new Kafka group replays the whole cp.status history: say it a few times, count the rest.
      if (this.counters.unknown_session_ends <= 5) this.log.warn({ cp_id: m.cp_id, session_id: m.session_id, seen: this.counters.unknown_session_ends }, 'session_end for a session central never started, ignored (counted in /health)');
      return;
    }
    if (s.ticket) {
      this.counters.duplicate_session_ends++;
      this.log.info({ cp_id: m.cp_id, session_id: m.session_id }, 'session already billed, repeated session_end ignored');
      return;
    }
    // Central asked for an interrupting end (fault, admin stop): the CP's word for a normal end does not undo that.
    const reason = s.pending_end && INTERRUPTING_END_REASONS.has(s.pending_end.reason) && !INTERRUPTING_END_REASONS.has(m.reason) ? s.pending_end.reason : m.reason;
    const ticket = makeTicket({
      session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, kwh: m.kwh, price_eur_kwh: m.price_eur_kwh,
      started_at: m.started_at, ended_at: m.ended_at, reason,
    });
    this.journal([{ t: 'session_ended', session_id: s.session_id, ticket }]);
    this.logEnd(s);
    this.sendFinal(s.session_id);
  }

  private logEnd(s: SessionRecord): void {
    const t = s.ticket!;
    this.log.info({ session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, kwh: t.kwh, eur: t.eur, reason: t.reason, interrupted: t.interrupted }, 'session billed');
    this.note(t.interrupted ? 'warn' : 'info', `${s.cp_id} ${s.driver_id} ${t.interrupted ? 'INTERRUPTED' : 'COMPLETED'} ${t.kwh.toFixed(3)} kWh ${t.eur.toFixed(2)} € (${t.reason})`, { cp_id: s.cp_id, driver_id: s.driver_id });
  }

  /** Events that close a session at central, billed by the last telemetry it saw. */
  private closeEvents(s: SessionRecord, reason: SessionEndReason): CentralEvent[] {
    this.counters.closed_by_central++;
    const price = s.price_eur_kwh;
    // It ended when central asked for the end, not when the grace for the CP's own record ran out.
    const endedAt = s.pending_end ? Math.min(this.now(), s.pending_end.deadline - this.opts.endGraceMs) : this.now();
    const ticket = makeTicket({ session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, kwh: s.kwh, price_eur_kwh: price, started_at: s.started_at, ended_at: endedAt, reason });
    return [{ t: 'session_ended', session_id: s.session_id, ticket }];
  }

  /** Sends the ticket to the driver; marks it sent once the bus took it (else it goes again after a restart). */
  private sendFinal(sessionId: string): void {
    const s = this.state.sessions.get(sessionId);
    if (!s?.ticket) return;
    void this.publish('driver.updates', s.driver_id, sessionUpdate(s, s.request_id, this.now())).then((ok) => { if (ok && !s.ticket_sent) void this.exec(() => this.store.append([{ t: 'ticket_sent', session_id: sessionId }])).catch(() => undefined); });
  }

  // --- bus: cp.telemetry --------------------------------------------------------------------

  onTelemetry(m: CpTelemetryMsg): Promise<void> {
    return this.exec(async () => {
      this.counters.telemetry++;
      const s = this.state.sessions.get(m.session_id);
      if (!s || s.status !== 'ACTIVE' || s.cp_id !== m.cp_id || m.seq <= s.telemetry_seq) { this.counters.telemetry_ignored++; return; }
      const events: CentralEvent[] = [{ t: 'telemetry', session_id: s.session_id, kw: m.kw, kwh: m.kwh, eur: m.eur, seq: m.seq, ...(m.soc !== undefined ? { soc: m.soc } : {}) }];
      if (!s.confirmed) events.push({ t: 'session_confirmed', session_id: s.session_id });
      this.journal(events);
      const last = this.lastProgress.get(s.session_id) ?? 0;
      if (this.now() - last >= 900) {
        this.lastProgress.set(s.session_id, this.now());
        void this.update(s.driver_id, 'IN_PROGRESS', { request_id: s.request_id, session_id: s.session_id, cp_id: s.cp_id, kw: m.kw, kwh: m.kwh, eur: m.eur, ...(m.soc !== undefined ? { soc: m.soc } : {}) });
      }
    });
  }

  // --- bus: driver.requests -----------------------------------------------------------------

  onDriverRequest(m: DriverRequestMsg): Promise<void> {
    return this.exec(async () => {
      switch (m.action) {
        case 'REQUEST': return this.onRequest(m);
        case 'STOP': return this.onStop(m);
        case 'QUERY': return this.onQuery(m);
      }
    });
  }

  private async reject(m: DriverRequestMsg, reason: string, record = true): Promise<void> {
    this.counters.rejected++;
    this.rejectReasons.set(reason, (this.rejectReasons.get(reason) ?? 0) + 1);
    if (record) this.journal([{ t: 'request_done', request: { request_id: m.request_id, driver_id: m.driver_id, action: m.action, cp_id: m.cp_id, outcome: 'REJECTED', reason } }]);
    this.log.info({ driver_id: m.driver_id, cp_id: m.cp_id, request_id: m.request_id, action: m.action, reason }, 'request rejected');
    this.note('info', `${m.driver_id} ${m.action}${m.cp_id ? ` ${m.cp_id}` : ''} rejected: ${reason}`, { cp_id: m.cp_id, driver_id: m.driver_id });
    void this.update(m.driver_id, 'REJECTED', { request_id: m.request_id, ...(m.cp_id ? { cp_id: m.cp_id } : {}), reason });
  }

  private async onRequest(m: DriverRequestMsg): Promise<void> {
    this.counters.requests++;
    const cpId = m.cp_id!;
    const previous = this.state.requests.get(m.request_id);
    if (previous && previous.driver_id !== m.driver_id) return this.reject(m, 'duplicate request_id', false);
    const d = decideRequest({
      previous, cp: this.state.cps.get(cpId), monitor: this.monitorOf(cpId),
      activeAtCp: activeSessionAt(this.state, cpId), activeOfDriver: activeSessionOf(this.state, m.driver_id),
    });
    if (d.kind === 'repeat') {
      // At-least-once delivery: the same request gets the same answer, and nothing starts twice.
      this.counters.duplicate_requests++;
      const p = d.previous;
      const s = p.session_id ? this.state.sessions.get(p.session_id) : undefined;
      if (p.outcome === 'REJECTED') void this.update(m.driver_id, 'REJECTED', { request_id: m.request_id, cp_id: p.cp_id, reason: p.reason });
      else if (s) this.sendSessionUpdate(s, m.request_id);
      return;
    }
    if (d.kind === 'reject') return this.reject(m, d.reason);
    const cp = this.state.cps.get(cpId)!;
    const session: SessionRecord = {
      session_id: `S-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`, cp_id: cpId, driver_id: m.driver_id, request_id: m.request_id,
      status: 'ACTIVE', started_at: this.now(), ended_at: null, kw: 0, kwh: 0, eur: 0, price_eur_kwh: cp.profile?.price_eur_kwh ?? 0,
      end_reason: null, interrupted: false, ticket: null, confirmed: false, ticket_sent: false, pending_end: null, telemetry_seq: -1,
    };
    this.journal([
      { t: 'session_started', session },
      { t: 'request_done', request: { request_id: m.request_id, driver_id: m.driver_id, action: 'REQUEST', cp_id: cpId, outcome: 'ACCEPTED', session_id: session.session_id } },
    ]);
    this.notYetDurable.add(session.session_id);
    void this.store.durable().then(() => this.notYetDurable.delete(session.session_id), () => undefined);
    this.counters.accepted++;
    this.log.info({ session_id: session.session_id, cp_id: cpId, driver_id: m.driver_id, request_id: m.request_id }, 'request accepted, supply started');
    this.note('info', `${m.driver_id} charging at ${cpId}`, { cp_id: cpId, driver_id: m.driver_id });
    void this.command(cpId, 'START_SUPPLY', { session_id: session.session_id, driver_id: m.driver_id }, `start:${session.session_id}`);
    void this.update(m.driver_id, 'ACCEPTED', { request_id: m.request_id, session_id: session.session_id, cp_id: cpId });
  }

  private async onStop(m: DriverRequestMsg): Promise<void> {
    this.counters.stops++;
    if (this.state.requests.has(m.request_id)) { this.counters.duplicate_requests++; return; }
    const d = decideStop(activeSessionOf(this.state, m.driver_id));
    if (d.kind === 'reject') return this.reject(m, d.reason);
    const s = d.session;
    this.journal([{ t: 'request_done', request: { request_id: m.request_id, driver_id: m.driver_id, action: 'STOP', cp_id: s.cp_id, outcome: 'STOP_SENT', session_id: s.session_id } }]);
    this.log.info({ session_id: s.session_id, cp_id: s.cp_id, driver_id: m.driver_id }, 'driver stops the session');
    void this.command(s.cp_id, 'STOP_SUPPLY', { session_id: s.session_id, driver_id: m.driver_id });
  }

  private async onQuery(m: DriverRequestMsg): Promise<void> {
    this.counters.queries++;
    const s = latestSessionOf(this.state, m.driver_id);
    if (!s) return void this.update(m.driver_id, 'REJECTED', { request_id: m.request_id, reason: 'no session' });
    this.sendSessionUpdate(s, m.request_id);
  }

  /** A session's current state as a driver update: ACCEPTED / IN_PROGRESS while it runs, its ticket once ended. */
  private sendSessionUpdate(s: SessionRecord, requestId: string): void {
    void this.publish('driver.updates', s.driver_id, sessionUpdate(s, requestId, this.now()));
  }

  // --- monitors -----------------------------------------------------------------------------

  /** False when the report names an unknown CP and the registry is full. */
  onMonitorReport(r: MonitorReportMsg): Promise<boolean> {
    return this.exec(async () => {
      if (!this.state.cps.has(r.cp_id) && this.state.cps.size >= this.opts.maxCps) {
        this.counters.monitor_reports_refused++;
        return false;
      }
      this.counters.monitor_reports++;
      const before = this.monitorOf(r.cp_id);
      const ok = reportSaysOk(r);
      this.monitors.set(r.cp_id, { last_at: this.now(), engine_ok: ok, kind: r.kind, reason: r.reason, monitor_id: r.monitor_id });
      const events: CentralEvent[] = [];
      // A CP known only to its monitor is listed (DISCONNECTED until its engine speaks).
      if (!this.state.cps.has(r.cp_id)) events.push({ t: 'cp_seen', cp_id: r.cp_id, source: 'monitor', at: this.now() });
      const active = activeSessionAt(this.state, r.cp_id);
      const interrupt = !ok && active && !active.pending_end ? active : undefined;
      if (interrupt) events.push({ t: 'session_pending_end', session_id: interrupt.session_id, reason: 'fault', deadline: this.now() + this.opts.endGraceMs });
      this.journal(events);
      // A faulty CP must not go on supplying: stop it (a CP that already ended the session refuses harmlessly).
      if (interrupt) void this.command(r.cp_id, 'STOP_SUPPLY', { session_id: interrupt.session_id });
      const after = this.monitorOf(r.cp_id);
      this.shownMonitor.set(r.cp_id, after);
      if (before !== after) {
        const level = after === 'OK' ? 'info' : 'warn';
        this.log[level]({ cp_id: r.cp_id, monitor: after, kind: r.kind, reason: r.reason }, `${r.cp_id} monitor ${after}`);
        this.note(level, `${r.cp_id} monitor ${after}${r.reason ? ` (${r.reason})` : ''}`, { cp_id: r.cp_id });
      }
      return true;
    });
  }

  // --- admin --------------------------------------------------------------------------------

  /** Stops (or resumes) a CP; undefined when central does not know it. */
  adminSet(cpId: string, stop: boolean): Promise<CpView | undefined> {
    return this.exec(async () => {
      const cp = this.state.cps.get(cpId);
      if (!cp) return undefined;
      const events: CentralEvent[] = [{ t: 'cp_admin', cp_id: cpId, stopped: stop }];
      const active = activeSessionAt(this.state, cpId);
      if (stop && active) events.push({ t: 'session_pending_end', session_id: active.session_id, reason: 'cp_stopped', deadline: this.now() + this.opts.endGraceMs });
      this.journal(events);
      this.log.info({ cp_id: cpId }, stop ? 'admin stopped the charging point' : 'admin resumed the charging point');
      this.note(stop ? 'warn' : 'info', `${cpId} ${stop ? 'stopped' : 'resumed'} by admin`, { cp_id: cpId });
      void this.command(cpId, stop ? 'STOP_CP' : 'RESUME_CP');
      return this.cpViewOf(cpId);
    });
  }

  // --- time ---------------------------------------------------------------------------------

  /**
   * Periodic: sessions whose CP never reported the end within the grace are closed from
   * telemetry; starts never confirmed are closed; monitors that fell silent are announced.
   */
  sweep(): Promise<boolean> {
    return this.exec(async () => {
      let changed = false;
      const now = this.now();
      const closing: SessionRecord[] = [];
      const events: CentralEvent[] = [];
      for (const s of this.state.sessions.values()) {
        if (s.status !== 'ACTIVE') continue;
        if (s.pending_end && now >= s.pending_end.deadline) { events.push(...this.closeEvents(s, s.pending_end.reason)); closing.push(s); }
        else if (!s.confirmed && now - Math.max(s.started_at, this.bootAt) > this.opts.startConfirmMs) {
          const cp = this.state.cps.get(s.cp_id);
          const reason: SessionEndReason = cp?.engine_state === 'FAULTY' ? 'fault' : cp?.engine_state === 'DISCONNECTED' ? 'disconnected' : 'cp_stopped';
          this.log.warn({ session_id: s.session_id, cp_id: s.cp_id }, 'charging point never confirmed the supply, session closed');
          events.push(...this.closeEvents(s, reason));
          closing.push(s);
        }
      }
      if (events.length) this.journal(events);
      for (const s of closing) {
        this.logEnd(s);
        this.sendFinal(s.session_id);
        changed = true;
      }
      for (const cpId of this.monitors.keys()) {
        const now2 = this.monitorOf(cpId);
        if (this.shownMonitor.get(cpId) !== now2) {
          this.shownMonitor.set(cpId, now2);
          changed = true;
          if (now2 === 'DOWN') {
            this.log.warn({ cp_id: cpId }, `${cpId} monitor DOWN (silent for over ${this.opts.monitorTimeoutMs} ms)`);
            this.note('warn', `${cpId} monitor DOWN`, { cp_id: cpId });
          }
        }
      }
      return changed;
    }, 'if-true');
  }

  /** After a restart: tickets that never reached their driver go again. */
  resendPending(): void {
    for (const s of this.state.sessions.values()) if (s.ticket && !s.ticket_sent) this.sendFinal(s.session_id);
  }

  /** Resolves when every input so far is handled. */
  idle(): Promise<void> { return this.chain.then(() => undefined); }
}

function newId(): string { return `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`; }
