import { INTERRUPTING_END_REASONS, type CommandAckMsg, type CpAnnounceMsg, type CpStatusMsg, type CpTelemetryMsg, type GatewayBeatMsg, type SessionEndMsg, type Ticket } from '../../protocol/index.js';
import { makeTicket } from '../billing.js';
import type { CounterName } from '../metrics.js';
import { activeSessionAt, type SessionRecord } from '../state.js';
import { Acc, demandedEnd, endReasonOf, gatewayHeardAt, LIFTABLE_HOLDS } from './common.js';
import type { Key } from './types.js';

/**
 * What a CP says (cp.status: announce, status, ack, session_end; cp.telemetry) and what its
 * gateway says (the gateway beat). A CP speaks only for itself: the gateway checks that a
 * message's cp_id is the authenticated sender and keys it by that id on the bus; central then
 * accepts a status, ack, session_end or telemetry about a session only from the CP that runs it.
 */

/** The bus key is the sender as the gateway authenticated it: a payload naming another CP was not put there by the gateway. */
function keyMismatch(a: Acc, key: Key, cpId: string, counter: CounterName, what: string): boolean {
  if (key === undefined || key === cpId) return false;
  a.forged(counter, key, `${what} whose cp_id is not its sender, refused`, { cp_id: cpId });
  return true;
}

/** A session central no longer runs, yet its CP shows it supplying (a START that arrived late): stop it there (at most every 2 s). */
function stopLateStart(a: Acc, s: SessionRecord, seenIn: string): void {
  const last = a.st.mem.lateStops.get(s.session_id);
  if (last !== undefined && a.now - last < 2000) return;
  a.remember({ m: 'late_stop', session_id: s.session_id, at: a.now });
  a.count('late_start_stops');
  a.log('warn', 'charging point supplies a session central has closed, stopping it', { session_id: s.session_id, cp_id: s.cp_id, seen_in: seenIn, end_reason: s.end_reason });
  a.recent('warn', `${s.cp_id} supplied closed session ${s.session_id}: stopped`, { cp_id: s.cp_id, driver_id: s.driver_id });
  a.command(s.cp_id, 'STOP_SUPPLY', { session_id: s.session_id, driver_id: s.driver_id });
}

export function onAnnounce(a: Acc, m: CpAnnounceMsg, key: Key): void {
  a.count('announces');
  if (keyMismatch(a, key, m.cp_id, 'forged_statuses', 'announce')) return;
  const cp = a.state.cps.get(m.cp_id);
  const newBoot = !!cp?.boot_id && cp.boot_id !== m.boot_id;
  a.remember({ m: 'heard', cp_id: m.cp_id, at: a.now });
  // The engine restarted: whatever it was supplying died with the old boot.
  const active = activeSessionAt(a.state, m.cp_id);
  if (newBoot && active) a.close(active, 'engine_restart');
  a.journal({ t: 'cp_announced', cp_id: m.cp_id, profile: m.profile, boot_id: m.boot_id, health_host: m.health_host, health_port: m.health_port, ...(m.gw ? { gw: m.gw } : {}), at: a.now });
  if (!cp || newBoot) {
    a.log('info', cp ? 'charging point restarted' : 'charging point registered', { cp_id: m.cp_id, profile: m.profile.name, boot_id: m.boot_id });
    a.recent('info', `${m.cp_id} ${cp ? 'restarted' : 'registered'} (${m.profile.name})`, { cp_id: m.cp_id });
  }
  // An admin stop outlives the engine's restart.
  if (cp?.admin_stopped) a.command(m.cp_id, 'STOP_CP');
}

export function onStatus(a: Acc, m: CpStatusMsg, key: Key): void {
  a.count('statuses');
  if (keyMismatch(a, key, m.cp_id, 'forged_statuses', 'status')) return;
  const cp = a.state.cps.get(m.cp_id);
  // A last will (or the gateway's word for a dropped link) is authoritative whatever its seq.
  if (cp && m.source === 'engine' && m.seq <= cp.status_seq) { a.count('stale_statuses'); return; }
  if (m.source === 'engine') a.remember({ m: 'heard', cp_id: m.cp_id, at: a.now });
  a.journal({ t: 'cp_status', cp_id: m.cp_id, state: m.state, faults: m.faults, session_id: m.session_id, seq: m.seq, ...(m.gw ? { gw: m.gw } : {}), at: a.now });
  const active = activeSessionAt(a.state, m.cp_id);
  const showsActive = !!active && m.state === 'SUPPLYING' && m.session_id === active.session_id;
  if (active && showsActive) {
    if (!active.confirmed) a.journal({ t: 'session_confirmed', session_id: active.session_id });
    if (active.pending_end && LIFTABLE_HOLDS.has(active.pending_end.reason) && m.source === 'engine') a.journal({ t: 'session_resumed', session_id: active.session_id });
  } else if (m.state === 'SUPPLYING' && m.session_id && m.source === 'engine') {
    const s = a.state.sessions.get(m.session_id);
    if (s && s.cp_id !== m.cp_id) a.forged('forged_statuses', m.cp_id, 'status naming another CP\'s session, ignored', { session_id: s.session_id, owner: s.cp_id });
    else if (s && s.status !== 'ACTIVE') stopLateStart(a, s, 'status');
  }
  if (active && m.state === 'DISCONNECTED' && m.source !== 'engine') {
    // The link died without a session_end: wait a little for the CP's own record, then close from telemetry.
    if (!active.pending_end) a.journal({ t: 'session_pending_end', session_id: active.session_id, reason: 'disconnected', deadline: a.now + a.o.endGraceMs });
  } else if (active && !active.pending_end && m.source === 'engine' && cp?.engine_state === 'SUPPLYING' && cp.engine_session_id === active.session_id && !showsActive) {
    // The engine moved on from this session (its statuses are in order, so this one is newer than the
    // SUPPLYING one) yet no session_end came: it was lost (e.g. acknowledged by a bus just before a crash).
    // Wait for it a little, then close from telemetry, so the CP does not stay busy for ever.
    a.journal({ t: 'session_pending_end', session_id: active.session_id, reason: endReasonOf(m.state), deadline: a.now + a.o.endGraceMs });
  }
  if (cp?.engine_state !== m.state) {
    a.log('info', `${m.cp_id} is ${m.state}`, { cp_id: m.cp_id, state: m.state, source: m.source, reason: m.reason });
    a.recent(m.state === 'FAULTY' || m.state === 'DISCONNECTED' ? 'warn' : 'info', `${m.cp_id} engine ${m.state}${m.reason ? ` (${m.reason})` : ''}`, { cp_id: m.cp_id });
  }
}

/** START commands are sent as `start:<session_id>`, so an ack names its session. */
export function sessionOfStartCommand(a: Acc, commandId: string): SessionRecord | undefined {
  const r = /^start:(.+)$/.exec(commandId);
  return r ? a.state.sessions.get(r[1]!) : undefined;
}

export function onAck(a: Acc, m: CommandAckMsg, key: Key): void {
  a.count('acks');
  if (keyMismatch(a, key, m.cp_id, 'forged_acks', 'ack')) return;
  a.remember({ m: 'heard', cp_id: m.cp_id, at: a.now });
  const s = m.command === 'START_SUPPLY' ? sessionOfStartCommand(a, m.command_id) : undefined;
  if (s && s.cp_id !== m.cp_id) {
    a.forged('forged_acks', m.cp_id, 'ack for another CP\'s session, refused', { session_id: s.session_id, owner: s.cp_id });
    return;
  }
  if (m.ok) {
    if (!s) return;
    if (s.status === 'ACTIVE' && !s.confirmed) a.journal({ t: 'session_confirmed', session_id: s.session_id });
    // The START reached the CP after central had closed the session (cancelled, unconfirmed): stop it there.
    else if (s.status !== 'ACTIVE') stopLateStart(a, s, 'ack');
    return;
  }
  a.count('failed_acks');
  a.log('warn', 'charging point refused a command', { cp_id: m.cp_id, command: m.command, command_id: m.command_id, reason: m.reason, state: m.state });
  if (!s || s.status !== 'ACTIVE') return;
  // A redelivered START for the session the CP already runs is refused harmlessly.
  if (a.state.cps.get(m.cp_id)?.engine_session_id === s.session_id) return;
  a.close(s, endReasonOf(m.state));
  a.recent('warn', `${s.cp_id} refused session ${s.session_id}: ${m.reason ?? m.state}`, { cp_id: s.cp_id, driver_id: s.driver_id });
}

export function onSessionEnd(a: Acc, m: SessionEndMsg, key: Key): void {
  a.count('session_ends');
  if (keyMismatch(a, key, m.cp_id, 'forged_session_ends', 'session_end')) return;
  const s = a.state.sessions.get(m.session_id);
  if (!s) {
    // A new Kafka group replays the whole cp.status history: say it once per CP, count the rest.
    a.forged('unknown_session_ends', m.cp_id, 'session_end for a session central never started, ignored', { session_id: m.session_id });
    return;
  }
  if (s.cp_id !== m.cp_id) {
    a.forged('forged_session_ends', m.cp_id, 'session_end for another CP\'s session, refused', { session_id: s.session_id, owner: s.cp_id });
    return;
  }
  a.remember({ m: 'heard', cp_id: m.cp_id, at: a.now });
  if (s.ticket) {
    if (s.estimated && s.confirmed) return rebill(a, s, s.ticket, m);
    a.count('duplicate_session_ends');
    a.log('info', 'session already billed, repeated session_end ignored', { cp_id: m.cp_id, session_id: m.session_id });
    return;
  }
  // Central asked for an interrupting end (fault, admin stop): the CP's word for a normal end does not undo that.
  // A hold central only guessed (unreachable, disconnected) gives way to the CP's record.
  const reason = demandedEnd(s.pending_end?.reason) && !INTERRUPTING_END_REASONS.has(m.reason) ? s.pending_end!.reason : m.reason;
  a.bill(s, meteredTicket(s, m, reason));
}

/** The CP's meter, at the price central stored when the session started (what the driver was offered). */
function meteredTicket(s: SessionRecord, m: SessionEndMsg, reason: SessionEndMsg['reason']) {
  return makeTicket({ session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, kwh: m.kwh, price_eur_kwh: s.price_eur_kwh, started_at: m.started_at, ended_at: m.ended_at, reason });
}

/**
 * The CP's own record of a session central closed itself from telemetry (it could not reach
 * the CP, or the record was late: a gateway that spooled it while the bus stalled delivers it
 * after its restart). Central cannot tell a dead gateway from its own stalled bus, so it had to
 * close on an estimate; the meter is what was supplied, so the record supersedes the estimate,
 * once: the session's one ticket becomes the metered one, journaled, and sent to the driver as
 * the final word. A reason central demanded (fault, admin stop) stays; its guesses
 * (unreachable, disconnected, engine restart) give way to the CP's reason.
 */
function rebill(a: Acc, s: SessionRecord, prev: Ticket, m: SessionEndMsg): void {
  const reason = demandedEnd(prev.reason) && !INTERRUPTING_END_REASONS.has(m.reason) ? prev.reason : m.reason;
  const ticket = meteredTicket(s, m, reason);
  if (ticket.kwh === prev.kwh && ticket.eur === prev.eur && ticket.reason === prev.reason) {
    a.count('duplicate_session_ends');
    return; // the estimate was right: nothing to tell anyone
  }
  a.count('rebilled_sessions');
  a.journal({ t: 'session_rebilled', session_id: s.session_id, ticket });
  a.log('info', "session rebilled from the charging point's own record", { session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, kwh: ticket.kwh, eur: ticket.eur, reason: ticket.reason, estimate_kwh: prev.kwh, estimate_eur: prev.eur, estimate_reason: prev.reason });
  a.recent('info', `${s.cp_id} ${s.driver_id} rebilled ${ticket.kwh.toFixed(3)} kWh ${ticket.eur.toFixed(2)} € (${ticket.reason}; estimate was ${prev.kwh.toFixed(3)} kWh)`, { cp_id: s.cp_id, driver_id: s.driver_id });
  a.finalUpdate({ ...s, ticket, ticket_sent: false });
}

export function onTelemetry(a: Acc, m: CpTelemetryMsg, key: Key): void {
  a.count('telemetry');
  if (keyMismatch(a, key, m.cp_id, 'forged_telemetry', 'telemetry')) { a.count('telemetry_ignored'); return; }
  const s = a.state.sessions.get(m.session_id);
  if (s && s.cp_id !== m.cp_id) {
    a.count('telemetry_ignored');
    a.forged('forged_telemetry', m.cp_id, 'telemetry for another CP\'s session, ignored', { session_id: s.session_id, owner: s.cp_id });
    return;
  }
  if (s) a.remember({ m: 'heard', cp_id: m.cp_id, at: a.now });
  if (s && s.status !== 'ACTIVE') { a.count('telemetry_ignored'); stopLateStart(a, s, 'telemetry'); return; }
  if (!s || m.seq <= s.telemetry_seq) { a.count('telemetry_ignored'); return; }
  a.journal({ t: 'telemetry', session_id: s.session_id, kw: m.kw, kwh: m.kwh, eur: m.eur, seq: m.seq, ...(m.soc !== undefined ? { soc: m.soc } : {}) });
  if (!s.confirmed) a.journal({ t: 'session_confirmed', session_id: s.session_id });
  if (s.pending_end && LIFTABLE_HOLDS.has(s.pending_end.reason)) a.journal({ t: 'session_resumed', session_id: s.session_id });
  const last = a.st.mem.lastProgress.get(s.session_id) ?? 0;
  if (a.now - last >= a.st.mem.progressEveryMs) {
    a.remember({ m: 'progress', session_id: s.session_id, at: a.now });
    a.update(s.driver_id, 'IN_PROGRESS', { request_id: s.request_id, session_id: s.session_id, cp_id: s.cp_id, started_at: s.started_at, kw: m.kw, kwh: m.kwh, eur: m.eur, ...(m.soc !== undefined ? { soc: m.soc } : {}) });
  }
}

/**
 * A gateway's heartbeat. The first one (and one after a restart) is journaled, so a central
 * restarted while that gateway is dead still knows to wait for it; the rest live in memory.
 */
export function onGatewayBeat(a: Acc, m: GatewayBeatMsg, key: Key): void {
  a.count('gateway_beats');
  if (key !== undefined && key !== m.gateway_id) { a.forged('forged_beats', key, 'gateway beat keyed by another id, refused', { gateway_id: m.gateway_id }); return; }
  const known = a.state.gateways.get(m.gateway_id);
  const prev = a.st.mem.gateways.get(m.gateway_id);
  if (prev && prev.boot_id === m.boot_id && m.seq <= prev.seq) return; // redelivered
  const bootChanged = (prev && prev.boot_id !== m.boot_id) || (!prev && known && known.boot_id !== m.boot_id);
  if (!known || known.boot_id !== m.boot_id || known.interval_ms !== m.interval_ms) {
    a.journal({ t: 'gateway_seen', gateway: { gateway_id: m.gateway_id, boot_id: m.boot_id, interval_ms: m.interval_ms, first_at: known?.first_at ?? a.now } });
  }
  const wasSilent = prev ? a.now - (gatewayHeardAt(a.st.mem, m.gateway_id) ?? prev.last_at) > a.o.gatewayMissedBeats * prev.interval_ms : false;
  a.remember({ m: 'gateway', gateway_id: m.gateway_id, rec: { boot_id: m.boot_id, interval_ms: m.interval_ms, last_at: a.now, seq: m.seq, ...(bootChanged ? { boot_changed_at: a.now } : prev?.boot_changed_at !== undefined ? { boot_changed_at: prev.boot_changed_at } : {}) } });
  if (!known) {
    a.log('info', `gateway ${m.gateway_id} is beating`, { gateway_id: m.gateway_id, interval_ms: m.interval_ms, cps: m.cps });
    a.recent('info', `gateway ${m.gateway_id} up (${m.cps} CPs)`);
  } else if (bootChanged || wasSilent) {
    a.log('info', bootChanged ? `gateway ${m.gateway_id} restarted` : `gateway ${m.gateway_id} is back`, { gateway_id: m.gateway_id, boot_id: m.boot_id, cps: m.cps });
    a.recent('info', `gateway ${m.gateway_id} ${bootChanged ? 'restarted' : 'back'} (${m.cps} CPs)`);
  }
}
