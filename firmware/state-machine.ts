import type { CpState, FaultKind, SessionEndReason } from '../protocol/index.js';

/**
 * The charging point's pure state machine: no I/O, no timers. The engine feeds it events
 * (commands, link changes, hardware changes) and carries out the effects it returns.
 *
 * The link (MQTT to the gateway) is tracked beside the state: a CP that loses its link while
 * SUPPLYING keeps supplying locally (the vehicle is plugged in and the meter runs); the
 * session end is queued by the engine and published when the link is back. A FAULTY CP stays
 * FAULTY while offline. An idle CP (ACTIVATED/STOPPED) without link is DISCONNECTED.
 */
export type CpEvent =
  | { type: 'CONNECT' }
  | { type: 'DISCONNECT' }
  /** `expires_at` (epoch ms): central's deadline for the START; a START that arrives later is refused (its driver gave up). */
  | { type: 'START_SUPPLY'; session_id: string; driver_id?: string; expires_at?: number }
  | { type: 'STOP_SUPPLY'; reason?: 'driver_stop' | 'central_stop' }
  | { type: 'STOP_CP' }
  | { type: 'RESUME_CP' }
  | { type: 'FAULT'; kind: FaultKind }
  /** A fault went away (`kind`), or all of them (no kind). */
  | { type: 'FAULT_CLEARED'; kind?: FaultKind }
  | { type: 'VEHICLE_FULL' };
export type CpEventType = CpEvent['type'];
export const CP_EVENT_TYPES: readonly CpEventType[] = ['CONNECT', 'DISCONNECT', 'START_SUPPLY', 'STOP_SUPPLY', 'STOP_CP', 'RESUME_CP', 'FAULT', 'FAULT_CLEARED', 'VEHICLE_FULL'];

export interface ActiveSession {
  session_id: string;
  driver_id?: string;
  started_at: number;
}

export interface CpContext {
  state: CpState;
  linkUp: boolean;
  /** Hardware faults currently active (reported by the HAL). */
  faults: FaultKind[];
  session?: ActiveSession;
}

export type Effect =
  | { type: 'relay'; closed: boolean }
  | { type: 'session_start'; session: ActiveSession }
  | { type: 'session_end'; session: ActiveSession; reason: SessionEndReason; at: number };

export interface StepResult {
  ctx: CpContext;
  effects: Effect[];
  /** Set when the state changed. */
  transition?: { from: CpState; to: CpState };
  /** Set when the event is not allowed in this state; ctx is then unchanged. */
  rejected?: string;
}

export const initialContext = (): CpContext => ({ state: 'DISCONNECTED', linkUp: false, faults: [] });

/** Where an idle CP rests: ACTIVATED with a link, DISCONNECTED without. */
const idle = (c: CpContext): CpState => (c.linkUp ? 'ACTIVATED' : 'DISCONNECTED');

function result(prev: CpContext, ctx: CpContext, effects: Effect[] = []): StepResult {
  return prev.state === ctx.state ? { ctx, effects } : { ctx, effects, transition: { from: prev.state, to: ctx.state } };
}
const reject = (ctx: CpContext, reason: string): StepResult => ({ ctx, effects: [], rejected: reason });

function endSession(c: CpContext, reason: SessionEndReason, now: number): Effect[] {
  const effects: Effect[] = [{ type: 'relay', closed: false }];
  if (c.session) effects.push({ type: 'session_end', session: c.session, reason, at: now });
  return effects;
}

export function step(ctx: CpContext, ev: CpEvent, now: number): StepResult {
  const s = ctx.state;
  switch (ev.type) {
    case 'CONNECT': {
      if (ctx.linkUp) return reject(ctx, 'already connected');
      const linked = { ...ctx, linkUp: true };
      if (s === 'DISCONNECTED') return result(ctx, { ...linked, state: ctx.faults.length ? 'FAULTY' : 'ACTIVATED' });
      return result(ctx, linked); // SUPPLYING / FAULTY carried on while offline
    }
    case 'DISCONNECT': {
      if (!ctx.linkUp) return reject(ctx, 'already disconnected');
      const unlinked = { ...ctx, linkUp: false };
      if (s === 'ACTIVATED' || s === 'STOPPED') return result(ctx, { ...unlinked, state: 'DISCONNECTED' });
      return result(ctx, unlinked);
    }
    case 'START_SUPPLY': {
      // A late START (held up by a dead gateway, a paused bus, a crashed central) must never start a
      // supply nobody follows: refused before anything else, whatever the state.
      if (ev.expires_at !== undefined && now > ev.expires_at) return reject(ctx, `START expired ${now - ev.expires_at} ms ago`);
      if (s === 'SUPPLYING') return reject(ctx, `already SUPPLYING session ${ctx.session?.session_id ?? '?'}`);
      if (s !== 'ACTIVATED') return reject(ctx, `CP is ${s}`);
      const session: ActiveSession = { session_id: ev.session_id, started_at: now, ...(ev.driver_id ? { driver_id: ev.driver_id } : {}) };
      return result(ctx, { ...ctx, state: 'SUPPLYING', session }, [{ type: 'session_start', session }, { type: 'relay', closed: true }]);
    }
    case 'STOP_SUPPLY': {
      if (s !== 'SUPPLYING') return reject(ctx, `CP is ${s}, not SUPPLYING`);
      return result(ctx, { ...ctx, state: idle(ctx), session: undefined }, endSession(ctx, ev.reason ?? 'central_stop', now));
    }
    case 'VEHICLE_FULL': {
      if (s !== 'SUPPLYING') return reject(ctx, `CP is ${s}, not SUPPLYING`);
      return result(ctx, { ...ctx, state: idle(ctx), session: undefined }, endSession(ctx, 'full', now));
    }
    case 'STOP_CP': {
      if (s === 'ACTIVATED') return result(ctx, { ...ctx, state: 'STOPPED' }, [{ type: 'relay', closed: false }]);
      if (s === 'SUPPLYING') {
        // Offline the stop cannot have come from central; it only arrives with a link.
        return result(ctx, { ...ctx, state: ctx.linkUp ? 'STOPPED' : 'DISCONNECTED', session: undefined }, endSession(ctx, 'cp_stopped', now));
      }
      return reject(ctx, s === 'STOPPED' ? 'CP is already STOPPED' : `CP is ${s}`);
    }
    case 'RESUME_CP': {
      if (s !== 'STOPPED') return reject(ctx, `CP is ${s}, not STOPPED`);
      return result(ctx, { ...ctx, state: 'ACTIVATED' });
    }
    case 'FAULT': {
      const faults = ctx.faults.includes(ev.kind) ? ctx.faults : [...ctx.faults, ev.kind];
      if (s === 'DISCONNECTED') return result(ctx, { ...ctx, faults }); // remembered: CONNECT then lands in FAULTY
      if (s === 'FAULTY') {
        if (faults === ctx.faults) return reject(ctx, `fault ${ev.kind} already active`);
        return result(ctx, { ...ctx, faults });
      }
      return result(ctx, { ...ctx, state: 'FAULTY', faults, session: undefined }, s === 'SUPPLYING' ? endSession(ctx, 'fault', now) : [{ type: 'relay', closed: false }]);
    }
    case 'FAULT_CLEARED': {
      if (!ctx.faults.length) return reject(ctx, 'no fault active');
      if (ev.kind && !ctx.faults.includes(ev.kind)) return reject(ctx, `fault ${ev.kind} is not active`);
      const faults = ev.kind ? ctx.faults.filter((k) => k !== ev.kind) : [];
      if (s === 'FAULTY' && !faults.length) return result(ctx, { ...ctx, state: idle(ctx), faults });
      return result(ctx, { ...ctx, faults });
    }
  }
}
