import type { z } from 'zod';
import { CommandAckMsg, CpAnnounceMsg, CpStatusMsg, CpTelemetryMsg, PROTOCOL_VERSION, SessionEndMsg } from './messages.js';
import type { CpState, FaultKind } from './states.js';
import { BUS_TOPICS, mqttTopics, type BusTopic, type CpChannel } from './topics.js';

/**
 * The one table of what a CP sends over MQTT: for each channel its schema, its message type,
 * the bus topic the gateway bridges it to, the QoS and retain flag the engine publishes with,
 * and whether it is critical (never shed, acknowledged to the CP only once the bus has it).
 * The engine's link, the gateway's bridge and its ACLs all read this.
 */
export interface ChannelSpec<S extends z.ZodType = z.ZodType> {
  schema: S;
  type: string;
  busTopic: BusTopic;
  qos: 0 | 1;
  retain: boolean;
  critical: boolean;
}

export const CP_CHANNEL_TABLE = {
  status: { schema: CpStatusMsg, type: 'status', busTopic: BUS_TOPICS.cpStatus, qos: 1, retain: true, critical: true },
  announce: { schema: CpAnnounceMsg, type: 'announce', busTopic: BUS_TOPICS.cpStatus, qos: 1, retain: false, critical: true },
  ack: { schema: CommandAckMsg, type: 'ack', busTopic: BUS_TOPICS.cpStatus, qos: 1, retain: false, critical: true },
  session: { schema: SessionEndMsg, type: 'session_end', busTopic: BUS_TOPICS.cpStatus, qos: 1, retain: false, critical: true },
  telemetry: { schema: CpTelemetryMsg, type: 'telemetry', busTopic: BUS_TOPICS.cpTelemetry, qos: 0, retain: false, critical: false },
} as const satisfies Record<CpChannel, ChannelSpec>;

/** A message a CP sends, by its `type`. */
export type CpOutMsg = z.infer<typeof CpStatusMsg> | z.infer<typeof CpAnnounceMsg> | z.infer<typeof CommandAckMsg> | z.infer<typeof SessionEndMsg> | z.infer<typeof CpTelemetryMsg>;

const BY_TYPE = new Map<string, CpChannel>(Object.entries(CP_CHANNEL_TABLE).map(([ch, spec]) => [spec.type, ch as CpChannel]));

/** The channel a CP message goes on, from its type. */
export function channelOf(msg: { type: string }): CpChannel {
  const ch = BY_TYPE.get(msg.type);
  if (!ch) throw new Error(`no CP channel carries messages of type ${msg.type}`);
  return ch;
}

/** Where and how a CP publishes a message: topic, QoS and retain from the table. */
export function mqttRouteOf(cpId: string, msg: { type: string }): { topic: string; qos: 0 | 1; retain: boolean } {
  const ch = channelOf(msg);
  const spec = CP_CHANNEL_TABLE[ch];
  return { topic: mqttTopics[ch](cpId), qos: spec.qos, retain: spec.retain };
}

/**
 * The one builder of a CP status: the engine's own statuses, the MQTT link's last will and the
 * gateway's "connection lost" all come from here, so they cannot drift apart.
 */
export function cpStatus(f: {
  cpId: string; state: CpState; seq: number; ts: number;
  source?: CpStatusMsg['source']; faults?: readonly FaultKind[]; reason?: string; sessionId?: string;
}): CpStatusMsg {
  return {
    v: PROTOCOL_VERSION, type: 'status', cp_id: f.cpId, state: f.state, faults: [...(f.faults ?? [])],
    ...(f.reason ? { reason: f.reason } : {}), ...(f.sessionId ? { session_id: f.sessionId } : {}),
    source: f.source ?? 'engine', seq: f.seq, ts: f.ts,
  };
}
