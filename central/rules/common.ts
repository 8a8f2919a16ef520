import { INTERRUPTING_END_REASONS, PROTOCOL_VERSION, type CentralCommandMsg, type Command, type CpState, type DriverUpdateMsg, type SessionEndReason } from '../../protocol/index.js';
import { makeTicket } from '../billing.js';
import type { CounterName } from '../metrics.js';
import { monitorStatus, type MonitorStatus } from '../monitors.js';
import { activeSessionAt, type CentralEvent, type SessionRecord } from '../state.js';
import { sessionUpdate } from '../updates.js';
import type { MemEvent, Note, Out, Result, RulesOptions, RulesState } from './types.js';

/** Collects what one input leads to; `done()` is the rules' result. Nothing here touches the world. */
export class Acc {
  readonly events: CentralEvent[] = [];
  readonly mem: MemEvent[] = [];
  readonly out: Out[] = [];
  readonly notes: Note[] = [];
  reply?: boolean;

  constructor(readonly st: RulesState, readonly now: number, readonly o: RulesOptions) {}

  get state() { return this.st.durable; }
  journal(...e: CentralEvent[]): void { this.events.push(...e); }
  remember(...e: MemEvent[]): void { this.mem.push(...e); }
  count(name: CounterName, by = 1): void { this.notes.push({ n: 'count', name, by }); }
  log(level: 'info' | 'warn', msg: string, fields: Record<string, unknown> = {}): void { this.notes.push({ n: 'log', level, msg, fields }); }
  recent(level: 'info' | 'warn', text: string, ids: { cp_id?: string; driver_id?: string } = {}): void { this.notes.push({ n: 'recent', level, text, ...ids }); }

  command(cpId: string, command: Command, extra: Partial<CentralCommandMsg> = {}, commandId = `${command}-${this.o.newId()}`): void {
    const ttl = command === 'START_SUPPLY' ? this.o.startConfirmMs : this.o.commandTtlMs;
    this.out.push({ topic: 'central.commands', key: cpId, value: { v: PROTOCOL_VERSION, command_id: commandId, cp_id: cpId, command, expires_at: this.now + ttl, ts: this.now, ...extra } });
  }
  update(driverId: string, status: DriverUpdateMsg['status'], extra: Partial<DriverUpdateMsg> = {}): void {
    this.out.push({ topic: 'driver.updates', key: driverId, value: { v: PROTOCOL_VERSION, driver_id: driverId, status, ts: this.now, ...extra }, ...(status === 'IN_PROGRESS' ? { droppable: true as const } : {}) });
  }
  /** A session's state as the driver sees it (ACCEPTED / IN_PROGRESS / its ticket), answering `requestId`. */
  sessionUpdate(s: SessionRecord, requestId = s.request_id): void {
    this.out.push({ topic: 'driver.updates', key: s.driver_id, value: sessionUpdate(s, requestId, this.now) });
  }

  /** Logs a refused input once per source and kind; counts it every time. */
  forged(counter: CounterName, source: string, msg: string, fields: Record<string, unknown>): void {
    this.count(counter);
    this.notes.push({ n: 'refused', counter, source, what: msg, fields });
    const key = `${counter}:${source}`;
    if (this.st.mem.warned.has(key) || this.mem.some((m) => m.m === 'warned' && m.key === key)) return;
    this.remember({ m: 'warned', key });
    this.log('warn', `${msg} (logged once per source, counted in /health as ${counter})`, { source, ...fields });
  }

  /** Closes a session at central, billed by the last telemetry it saw, and sends the driver the ticket. */
  close(s: SessionRecord, reason: SessionEndReason, kwh = s.kwh): void {
    this.count('closed_by_central');
    // It ended when central asked for the end, not when the grace for the CP's own record ran out.
    const endedAt = s.pending_end ? Math.min(this.now, s.pending_end.deadline - this.o.endGraceMs) : this.now;
    this.bill(s, makeTicket({ session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, kwh, price_eur_kwh: s.price_eur_kwh, started_at: s.started_at, ended_at: endedAt, reason }), true);
  }

  /** Journals the ticket, logs it, and sends it to the driver; `ticket_sent` is journaled once the bus took it. `estimate`: billed by central, not by the CP's record. */
  bill(s: SessionRecord, ticket: SessionRecord['ticket'] & object, estimate = false): void {
    this.journal({ t: 'session_ended', session_id: s.session_id, ticket, ...(estimate ? { estimate: true } : {}) });
    const t = ticket;
    this.log('info', 'session billed', { session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, kwh: t.kwh, eur: t.eur, reason: t.reason, interrupted: t.interrupted });
    this.recent(t.interrupted ? 'warn' : 'info', `${s.cp_id} ${s.driver_id} ${t.interrupted ? 'INTERRUPTED' : 'COMPLETED'} ${t.kwh.toFixed(3)} kWh ${t.eur.toFixed(2)} € (${t.reason})`, { cp_id: s.cp_id, driver_id: s.driver_id });
    this.finalUpdate({ ...s, ticket });
  }

  finalUpdate(s: SessionRecord): void {
    if (!s.ticket) return;
    this.out.push({ topic: 'driver.updates', key: s.driver_id, value: sessionUpdate(s, s.request_id, this.now), then: s.ticket_sent ? undefined : [{ t: 'ticket_sent', session_id: s.session_id }] });
  }

  done(): Result {
    return { events: this.events, mem: this.mem, out: this.out, notes: this.notes, ...(this.reply !== undefined ? { reply: this.reply } : {}) };
  }
}

/**
 * Why a session ended when the CP's own state is all central has to go on (a refused START,
 * an engine that moved on without its session_end): the one place this is derived.
 */
export function endReasonOf(state: CpState | undefined): SessionEndReason {
  switch (state) {
    case 'FAULTY': return 'fault';
    case 'STOPPED': return 'cp_stopped';
    default: return 'disconnected';
  }
}

/** Holds that a CP showing its session again lifts (a stop or a fault does not go away by itself). */
export const LIFTABLE_HOLDS: ReadonlySet<SessionEndReason> = new Set(['disconnected', 'unreachable']);

/**
 * An interrupting end central demanded (fault, admin stop, cancel), as opposed to one it
 * guessed because it could not hear the CP (a lost link, an engine restart): a demanded reason
 * outranks the CP's own normal end, a guess gives way to it.
 */
export const demandedEnd = (reason: SessionEndReason | undefined): boolean =>
  reason !== undefined && INTERRUPTING_END_REASONS.has(reason) && !LIFTABLE_HOLDS.has(reason) && reason !== 'engine_restart';

export function monitorOf(st: RulesState, cpId: string, now: number, o: Pick<RulesOptions, 'monitorTimeoutMs'>): MonitorStatus {
  return monitorStatus(st.mem.monitors.get(cpId), now, o.monitorTimeoutMs);
}

/** How often a gateway's forwarded traffic refreshes its proof of life (Mem.gatewayTraffic). */
export const GATEWAY_TRAFFIC_EVERY_MS = 250;

/** A CP message stamped by gateway `gw`: if central knows that gateway, it is alive now (as good as a beat). */
export function heardFromGateway(a: Acc, gw: string | undefined): void {
  if (gw === undefined || !a.state.gateways.has(gw)) return;
  const last = a.st.mem.gatewayTraffic.get(gw);
  if (last === undefined || a.now - last >= GATEWAY_TRAFFIC_EVERY_MS) a.remember({ m: 'gateway_traffic', gateway_id: gw, at: a.now });
}

/** When central last heard from a gateway: its beat, or a CP message it forwarded. */
export function gatewayHeardAt(mem: RulesState['mem'], gatewayId: string): number | undefined {
  const beat = mem.gateways.get(gatewayId)?.last_at;
  const traffic = mem.gatewayTraffic.get(gatewayId);
  return beat === undefined ? traffic : traffic === undefined ? beat : Math.max(beat, traffic);
}

export type Reach = { ok: true } | { ok: false; reason: 'gateway unreachable' | 'CP unreachable'; detail: string };
const REACHABLE: Reach = { ok: true };
const BUS_DOWN: Reach = { ok: false, reason: 'gateway unreachable', detail: "central's bus is down" };

/**
 * Whether central can reach a CP now. Unreachable: the gateway it is behind has beaten before
 * and is silent (no beat, and nothing it forwarded) for `gatewayMissedBeats` of its intervals; or that gateway restarted and the CP
 * has not spoken since; or the CP runs a confirmed session and has sent nothing for
 * `engineSilenceMs`. While central's own bus is down every CP is unreachable; silences count
 * from when it was last (re)connected. A CP behind a gateway that never beat (older
 * gateways) is judged by its engine only.
 */
export function reachOf(
  st: RulesState, cpId: string, now: number, o: Pick<RulesOptions, 'gatewayMissedBeats' | 'engineSilenceMs'>,
  /** The CP's running session if the caller knows it (null: none); looked up otherwise. */
  activeKnown?: SessionRecord | null,
): Reach {
  const { durable: d, mem } = st;
  if (!mem.busUp) return BUS_DOWN;
  const cp = d.cps.get(cpId);
  if (!cp) return REACHABLE;
  const since = Math.max(mem.bootAt, mem.busBackAt);
  const heard = mem.heard.get(cpId);
  const known = cp.gw !== undefined ? d.gateways.get(cp.gw) : undefined;
  if (known) {
    const g = mem.gateways.get(known.gateway_id);
    const interval = g?.interval_ms ?? known.interval_ms;
    if (now - Math.max(gatewayHeardAt(mem, known.gateway_id) ?? since, since) > o.gatewayMissedBeats * interval) {
      return { ok: false, reason: 'gateway unreachable', detail: `gateway ${known.gateway_id} silent` };
    }
    // Every CP that reconnects announces itself: one that has not since its gateway restarted is not there.
    if (g?.boot_changed_at !== undefined && (heard ?? -Infinity) < g.boot_changed_at - 2 * interval) {
      return { ok: false, reason: 'CP unreachable', detail: `not back since gateway ${known.gateway_id} restarted` };
    }
  }
  const active = activeKnown === undefined ? activeSessionAt(d, cpId) : activeKnown;
  if (active?.confirmed && now - Math.max(heard ?? since, since, active.started_at) > o.engineSilenceMs) {
    return { ok: false, reason: 'CP unreachable', detail: 'engine silent while supplying' };
  }
  return REACHABLE;
}
