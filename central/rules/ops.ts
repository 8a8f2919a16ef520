import type { MonitorReportMsg } from '../../protocol/index.js';
import { monitorStatus, reportSaysOk } from '../monitors.js';
import { activeSessionAt, type SessionRecord } from '../state.js';
import { Acc, monitorOf, reachOf } from './common.js';

/** Monitor reports, admin actions, time (the tick) and the bus coming back. */

export function onMonitorReport(a: Acc, r: MonitorReportMsg): void {
  if (!a.state.cps.has(r.cp_id) && a.state.cps.size >= a.o.maxCps) {
    a.count('monitor_reports_refused');
    a.reply = false;
    return;
  }
  a.reply = true;
  a.count('monitor_reports');
  const before = monitorOf(a.st, r.cp_id, a.now, a.o);
  const ok = reportSaysOk(r);
  const rec = { last_at: a.now, engine_ok: ok, kind: r.kind, reason: r.reason, monitor_id: r.monitor_id };
  a.remember({ m: 'monitor', cp_id: r.cp_id, rec });
  // A CP known only to its monitor is listed (DISCONNECTED until its engine speaks).
  if (!a.state.cps.has(r.cp_id)) a.journal({ t: 'cp_seen', cp_id: r.cp_id, source: 'monitor', at: a.now });
  const active = activeSessionAt(a.state, r.cp_id);
  if (!ok && active && !active.pending_end) {
    a.journal({ t: 'session_pending_end', session_id: active.session_id, reason: 'fault', deadline: a.now + a.o.endGraceMs });
    // A faulty CP must not go on supplying: stop it (a CP that already ended the session refuses harmlessly).
    a.command(r.cp_id, 'STOP_SUPPLY', { session_id: active.session_id });
  }
  const after = monitorStatus(rec, a.now, a.o.monitorTimeoutMs);
  a.remember({ m: 'monitor_shown', cp_id: r.cp_id, status: after });
  if (before !== after) {
    const level = after === 'OK' ? 'info' : 'warn';
    a.log(level, `${r.cp_id} monitor ${after}`, { cp_id: r.cp_id, monitor: after, kind: r.kind, reason: r.reason });
    a.recent(level, `${r.cp_id} monitor ${after}${r.reason ? ` (${r.reason})` : ''}`, { cp_id: r.cp_id });
  }
}

export function onAdmin(a: Acc, cpId: string, stop: boolean): void {
  const cp = a.state.cps.get(cpId);
  a.reply = !!cp;
  if (!cp) return;
  a.journal({ t: 'cp_admin', cp_id: cpId, stopped: stop });
  const active = activeSessionAt(a.state, cpId);
  if (stop && active) a.journal({ t: 'session_pending_end', session_id: active.session_id, reason: 'cp_stopped', deadline: a.now + a.o.endGraceMs });
  a.log('info', stop ? 'admin stopped the charging point' : 'admin resumed the charging point', { cp_id: cpId });
  a.recent(stop ? 'warn' : 'info', `${cpId} ${stop ? 'stopped' : 'resumed'} by admin`, { cp_id: cpId });
  a.command(cpId, stop ? 'STOP_CP' : 'RESUME_CP');
}

export function onBusUp(a: Acc): void {
  // After a restart or a reconnect: tickets that never reached their driver go again.
  for (const s of a.state.sessions.values()) if (s.ticket && !s.ticket_sent) a.finalUpdate(s);
}

/** Per tick, how many lines of one kind are told one by one before the rest go into one summary line. */
export const TOLD_PER_TICK = 10;

/** Counts what a tick tells by kind: true while a kind is under TOLD_PER_TICK; `rest()` sums up the others, a line per kind. */
class Summary {
  private readonly n = new Map<string, { k: number; level: 'info' | 'warn'; recent: boolean }>();
  constructor(private readonly a: Acc) {}
  /** `recent`: the kind's lines also go to the dashboard's recent events (so does its summary). */
  one(kind: string, level: 'info' | 'warn', recent: boolean): boolean {
    const c = this.n.get(kind) ?? { k: 0, level, recent };
    c.k++;
    this.n.set(kind, c);
    return c.k <= TOLD_PER_TICK;
  }
  rest(): void {
    for (const [kind, { k, level, recent }] of this.n) {
      if (k <= TOLD_PER_TICK) continue;
      const text = `${k - TOLD_PER_TICK} more ${kind} (${k} in all)`;
      this.a.log(level, text, { more: k - TOLD_PER_TICK, total: k });
      if (recent) this.a.recent(level, text);
    }
  }
}

/** How often the tick runs: every CP is judged in it, so it runs less often past 1,000 CPs (1 s from 4,000; pauseMs stays above that). */
export const sweepEveryMs = (cps: number): number => Math.round(Math.min(1_000, Math.max(250, cps / 4)));

/**
 * Periodic. Sessions: a hold past its deadline is closed from telemetry; a START never
 * confirmed within startConfirmMs (counted from central's own start, as the CP's ack may have
 * waited on the bus meanwhile) is closed `unconfirmed`; a session whose CP became unreachable
 * is held for unreachableGraceMs. CPs: changes of reachability and monitor status are told
 * once. Bounded growth: old request ids and delivered sessions are pruned.
 */
export function onTick(a: Acc, busUp: boolean): void {
  const { mem } = a.st;
  let changed = false;
  if (busUp !== mem.busUp) {
    a.remember({ m: 'bus', up: busUp, at: a.now });
    // The first connection after start is not news (central.ts says it); a loss and a return are.
    if (!busUp || mem.busBackAt !== mem.bootAt) a.log(busUp ? 'info' : 'warn', busUp ? 'bus back: silences and deadlines count from now' : 'bus down: every CP is unreachable; no session is held or closed meanwhile');
    // Back after a loss (the first connection is central.ts's bus_up): tickets that never reached their driver go again.
    if (busUp && mem.busBackAt !== mem.bootAt) onBusUp(a);
    changed = true;
  }
  a.remember({ m: 'tick', at: a.now });
  // Cut off itself, central judges nothing: what the CPs said meanwhile is on its way.
  if (!busUp) { a.reply = changed; return; }
  // Paused itself, likewise: the gateways' beats of the pause are queued behind this tick.
  const paused = mem.busUp && a.now - mem.lastTickAt > a.o.pauseMs;
  if (paused) {
    a.remember({ m: 'resumed', at: a.now });
    a.count('self_pauses');
    a.log('warn', `central was paused for ${a.now - mem.lastTickAt} ms (stopped or stalled): silences and deadlines count from now`);
  }
  const st = mem.busUp && !paused ? a.st : { durable: a.state, mem: { ...mem, busUp, busBackAt: a.now } };
  const since = st.mem.busBackAt;

  const activeByCp = new Map<string, SessionRecord>();
  const closed = new Set<string>();
  for (const s of a.state.sessions.values()) {
    if (s.status !== 'ACTIVE') continue;
    activeByCp.set(s.cp_id, s);
    // A deadline that passed while the bus was away waits a grace more: the CP's record may be queued.
    if (s.pending_end && a.now >= Math.max(s.pending_end.deadline, since + a.o.endGraceMs)) {
      a.close(s, s.pending_end.reason);
      closed.add(s.session_id);
    } else if (!s.confirmed && a.now - Math.max(s.started_at, mem.bootAt, since) > a.o.startConfirmMs) {
      a.count('unconfirmed_closed');
      a.log('warn', 'charging point never confirmed the supply, session closed', { session_id: s.session_id, cp_id: s.cp_id });
      a.close(s, 'unconfirmed');
      closed.add(s.session_id);
    }
  }
  if (closed.size) changed = true;
  const { minMs, maxMs, perSecond } = a.o.progress;
  const every = Math.round(Math.min(maxMs, Math.max(minMs, (activeByCp.size * 1000) / perSecond)));
  if (every !== mem.progressEveryMs) a.remember({ m: 'progress_every', ms: every });

  // A gateway falling silent changes every CP behind it at once: a line (and a dashboard event)
  // for each of the first few, then one summary per kind and reason (10,000 lines in one tick
  // held central's loop long enough to fall behind the gateway it had just judged silent).
  const told = new Summary(a);
  for (const cp of a.state.cps.values()) {
    const active = activeByCp.get(cp.cp_id);
    const judged = active || (cp.gw !== undefined && a.state.gateways.has(cp.gw));
    const reach = judged ? reachOf(st, cp.cp_id, a.now, a.o, active ?? null) : { ok: true as const };
    const shown = reach.ok ? 'ok' : reach.detail;
    if ((mem.shownReach.get(cp.cp_id) ?? 'ok') !== shown) {
      a.remember({ m: 'reach_shown', cp_id: cp.cp_id, reach: shown });
      changed = true;
      if (told.one(reach.ok ? 'charging points reachable again' : `charging points unreachable: ${reach.detail}`, reach.ok ? 'info' : 'warn', true)) {
        a.log(reach.ok ? 'info' : 'warn', reach.ok ? `${cp.cp_id} reachable again` : `${cp.cp_id} unreachable: ${reach.detail}`, { cp_id: cp.cp_id, ...(cp.gw ? { gw: cp.gw } : {}) });
        a.recent(reach.ok ? 'info' : 'warn', reach.ok ? `${cp.cp_id} reachable again` : `${cp.cp_id} unreachable (${reach.detail})`, { cp_id: cp.cp_id });
      }
    }
    if (!reach.ok && active && !active.pending_end && !closed.has(active.session_id)) {
      // The CP may well go on supplying offline (its meter runs, its record comes when it is back): hold the session, do not close it yet.
      a.count('unreachable_holds');
      if (told.one(`sessions held, their charging point unreachable: ${reach.detail}`, 'warn', false)) a.log('warn', 'charging point unreachable mid-session, holding the session', { session_id: active.session_id, cp_id: cp.cp_id, why: reach.detail, hold_ms: a.o.unreachableGraceMs });
      a.journal({ t: 'session_pending_end', session_id: active.session_id, reason: 'unreachable', deadline: a.now + a.o.unreachableGraceMs });
    }
  }
  told.rest();

  for (const cpId of mem.monitors.keys()) {
    const now2 = monitorOf(st, cpId, a.now, a.o);
    if (mem.shownMonitor.get(cpId) !== now2) {
      a.remember({ m: 'monitor_shown', cp_id: cpId, status: now2 });
      changed = true;
      if (now2 === 'DOWN') {
        a.log('warn', `${cpId} monitor DOWN (silent for over ${a.o.monitorTimeoutMs} ms)`, { cp_id: cpId });
        a.recent('warn', `${cpId} monitor DOWN`, { cp_id: cpId });
      }
    }
  }

  housekeeping(a);
  a.reply = changed;
}

/** Bounded growth, a little each tick (at most 1,000 ids per event). */
function housekeeping(a: Acc): void {
  const { requests, sessions } = a.state;
  const { mem } = a.st;
  const requestIds: string[] = [];
  let excess = requests.size - a.o.maxRequests;
  let scanned = 0;
  for (const r of requests.values()) {
    if (requestIds.length >= 1000 || scanned++ >= 2000) break;
    const old = r.at !== undefined && a.now - r.at > a.o.requestTtlMs;
    if (excess <= 0 && !old) break; // insertion order is time order: the rest are newer
    const s = r.session_id ? sessions.get(r.session_id) : undefined;
    if (s?.status === 'ACTIVE') continue; // a running session's request still answers repeats
    requestIds.push(r.request_id);
    excess--;
  }
  const sessionIds: string[] = [];
  let extra = sessions.size - a.o.maxSessions;
  if (extra > 0) {
    for (const s of sessions.values()) {
      if (extra <= 0 || sessionIds.length >= 1000) break;
      if (s.ticket && s.ticket_sent) { sessionIds.push(s.session_id); extra--; }
    }
  }
  if (requestIds.length || sessionIds.length) {
    a.journal({ t: 'pruned', request_ids: requestIds, session_ids: sessionIds });
    if (requestIds.length) a.count('pruned_requests', requestIds.length);
    if (sessionIds.length) a.count('pruned_sessions', sessionIds.length);
  }
  const forgetSessions = [...mem.lastProgress.keys()].filter((id) => sessions.get(id)?.status !== 'ACTIVE');
  const { burst, perSecond } = a.o.driverRate;
  const forgetDrivers = [...mem.buckets.entries()].filter(([, b]) => b.tokens + ((a.now - b.at) / 1000) * perSecond >= burst).map(([d]) => d);
  const forgetStops = [...mem.lateStops.entries()].filter(([, at]) => a.now - at > 60_000).map(([id]) => id);
  if (forgetSessions.length || forgetDrivers.length || forgetStops.length) a.remember({ m: 'forget', sessions: forgetSessions, drivers: forgetDrivers, lateStops: forgetStops });
}
