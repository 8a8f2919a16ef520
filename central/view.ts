import type { CpState } from '../protocol/index.js';
import type { MonitorStatus } from './monitors.js';
import type { CpRecord, SessionRecord } from './state.js';

/** Whether central can reach the CP (rules/common.ts reachOf): a silent gateway or engine makes it unreachable. */
export type ReachView = { ok: true } | { ok: false; reason: string; detail: string };

/**
 * The state central shows for a CP, from what the engine, its monitor, its gateway and the
 * admin say. Worst news first: a monitor fault, then a lost engine, monitor or gateway, then
 * an engine fault, then an admin stop; a CP with a running session at central is SUPPLYING.
 */
export function shownState(cp: CpRecord, monitor: MonitorStatus, active: SessionRecord | undefined, reach: ReachView = { ok: true }): CpState {
  if (monitor === 'KO') return 'FAULTY';
  if (cp.engine_state === 'DISCONNECTED' || monitor === 'DOWN' || !reach.ok) return 'DISCONNECTED';
  if (cp.engine_state === 'FAULTY') return 'FAULTY';
  if (cp.admin_stopped || cp.engine_state === 'STOPPED') return 'STOPPED';
  if (active || cp.engine_state === 'SUPPLYING') return 'SUPPLYING';
  return cp.engine_state;
}

export interface CpView {
  cp_id: string;
  state: CpState;
  engine_state: CpState;
  monitor_status: MonitorStatus;
  max_kw: number | null;
  price_eur_kwh: number | null;
  profile: string | null;
  admin_stopped: boolean;
  faults: string[];
  /** False while central cannot reach it (its gateway or engine is silent); `unreachable` says why. */
  reachable: boolean;
  unreachable?: string;
  /** The gateway it is behind, when the gateway said. */
  gw?: string;
  session_id?: string;
  driver_id?: string;
  kw?: number;
  kwh?: number;
  eur?: number;
  /** Battery level 0..1 of the vehicle charging here. */
  soc?: number;
}

export function cpView(cp: CpRecord, monitor: MonitorStatus, active: SessionRecord | undefined, reach: ReachView = { ok: true }): CpView {
  const v: CpView = {
    cp_id: cp.cp_id,
    state: shownState(cp, monitor, active, reach),
    engine_state: cp.engine_state,
    monitor_status: monitor,
    max_kw: cp.profile?.max_kw ?? null,
    price_eur_kwh: cp.profile?.price_eur_kwh ?? null,
    profile: cp.profile?.name ?? null,
    admin_stopped: cp.admin_stopped,
    faults: cp.faults,
    reachable: reach.ok,
    ...(reach.ok ? {} : { unreachable: reach.detail }),
    ...(cp.gw ? { gw: cp.gw } : {}),
  };
  if (active) Object.assign(v, { session_id: active.session_id, driver_id: active.driver_id, kw: active.kw, kwh: active.kwh, eur: active.eur, ...(active.soc !== undefined ? { soc: active.soc } : {}) });
  return v;
}

export function sessionView(s: SessionRecord) {
  return {
    session_id: s.session_id, cp_id: s.cp_id, driver_id: s.driver_id, request_id: s.request_id, status: s.status,
    started_at: s.started_at, ended_at: s.ended_at, kw: s.kw, kwh: s.kwh, eur: s.eur, price_eur_kwh: s.price_eur_kwh,
    end_reason: s.end_reason, interrupted: s.interrupted, ticket: s.ticket,
  };
}
export type SessionView = ReturnType<typeof sessionView>;
