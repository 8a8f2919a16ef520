import {
  PROTOCOL_VERSION,
  type CentralCommandMsg, type CommandAckMsg, type CpAnnounceMsg, type CpState, type CpTelemetryMsg, type SessionEndMsg, type SessionEndReason,
} from '../protocol/index.js';
import { summarize, type HwProfile } from '../hw-profiles/profile.js';

/** What the engine sends, built from plain values: the loop decides when, these say what. */

export const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

export function announceMsg(f: { cpId: string; profile: HwProfile; fwVersion: string; bootId: string; healthPort?: number; healthHost?: string; now: number }): CpAnnounceMsg {
  return {
    v: PROTOCOL_VERSION, type: 'announce', cp_id: f.cpId, profile: summarize(f.profile), fw_version: f.fwVersion, boot_id: f.bootId, ts: f.now,
    ...(f.healthPort !== undefined ? { health_port: f.healthPort } : {}), ...(f.healthHost ? { health_host: f.healthHost } : {}),
  };
}

/** The metered record of a session: energy to the Wh (6 decimals), money to 4, at the profile's price. */
export function sessionEndMsg(f: {
  cpId: string; session: { session_id: string; driver_id?: string; started_at: number }; kwh: number; price: number; reason: SessionEndReason; endedAt: number; now: number;
}): SessionEndMsg {
  const kwh = round(f.kwh, 6);
  return {
    v: PROTOCOL_VERSION, type: 'session_end', cp_id: f.cpId, session_id: f.session.session_id,
    ...(f.session.driver_id ? { driver_id: f.session.driver_id } : {}),
    kwh, eur: round(kwh * f.price, 4), price_eur_kwh: f.price, started_at: f.session.started_at, ended_at: f.endedAt, reason: f.reason, ts: f.now,
  };
}

export function ackMsg(f: { cpId: string; cmd: CentralCommandMsg; reason?: string; state: CpState; now: number }): CommandAckMsg {
  return {
    v: PROTOCOL_VERSION, type: 'ack', cp_id: f.cpId, command_id: f.cmd.command_id, command: f.cmd.command, ok: !f.reason,
    ...(f.reason ? { reason: f.reason } : {}), state: f.state, ts: f.now,
  };
}

export function telemetryMsg(f: { cpId: string; sessionId: string; kw: number; kwh: number; price: number; soc?: number; seq: number; now: number }): CpTelemetryMsg {
  const kwh = round(f.kwh, 6);
  return {
    v: PROTOCOL_VERSION, type: 'telemetry', cp_id: f.cpId, session_id: f.sessionId,
    kw: round(f.kw, 3), kwh, eur: round(kwh * f.price, 4), ...(f.soc !== undefined ? { soc: round(f.soc, 4) } : {}),
    seq: f.seq, ts: f.now,
  };
}
