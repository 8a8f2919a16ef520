import { z } from 'zod';
import { COMMANDS, CP_STATES, DRIVER_UPDATE_STATUSES, FAULT_KINDS, SESSION_END_REASONS } from './states.js';

/**
 * Versioned payload schemas: the one definition of every message on MQTT and on the bus.
 * Every boundary (gateway, central, driver, firmware) validates with these.
 */
export const PROTOCOL_VERSION = 1 as const;

/** Ids travel inside MQTT topics and Kafka keys, so no '/', '+', '#' or whitespace. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const CpId = z.string().regex(ID_PATTERN, 'invalid CP id');
export const DriverId = z.string().regex(ID_PATTERN, 'invalid driver id');
const Id = z.string().min(1).max(128);
const Ts = z.number().int().nonnegative(); // epoch milliseconds
const v = z.literal(PROTOCOL_VERSION);
const NonNeg = z.number().finite().nonnegative();

export const CpStateSchema = z.enum(CP_STATES);
export const CommandSchema = z.enum(COMMANDS);
export const FaultKindSchema = z.enum(FAULT_KINDS);
export const SessionEndReasonSchema = z.enum(SESSION_END_REASONS);

export const ProfileSummary = z.object({
  name: z.string().min(1).max(64),
  max_kw: z.number().positive(),
  price_eur_kwh: NonNeg,
  connector: z.string().max(32),
  phases: z.number().int().min(1).max(3),
  hal: z.string().max(16),
});
export type ProfileSummary = z.infer<typeof ProfileSummary>;

/** Retained state of a CP (MQTT `cp/<id>/status`, Kafka `cp.status`). */
export const CpStatusMsg = z.object({
  v, type: z.literal('status'),
  cp_id: CpId,
  state: CpStateSchema,
  faults: z.array(FaultKindSchema).max(8).default([]),
  reason: z.string().max(256).optional(),
  session_id: Id.optional(),
  /** Set by the gateway when the status comes from an MQTT last will or a dropped connection. */
  source: z.enum(['engine', 'last_will', 'gateway']).default('engine'),
  seq: z.number().int().nonnegative(),
  ts: Ts,
});
export type CpStatusMsg = z.infer<typeof CpStatusMsg>;

/** Sent by a CP on every (re)connect: what it is and how to reach its health port. */
export const CpAnnounceMsg = z.object({
  v, type: z.literal('announce'),
  cp_id: CpId,
  profile: ProfileSummary,
  health_port: z.number().int().min(0).max(65535).optional(),
  health_host: z.string().max(255).optional(),
  fw_version: z.string().max(32),
  boot_id: Id,
  ts: Ts,
});
export type CpAnnounceMsg = z.infer<typeof CpAnnounceMsg>;

/** Once a second while supplying (`cp/<id>/telemetry`, Kafka `cp.telemetry`). Droppable under pressure. */
export const CpTelemetryMsg = z.object({
  v, type: z.literal('telemetry'),
  cp_id: CpId,
  session_id: Id,
  kw: NonNeg,
  kwh: NonNeg,
  eur: NonNeg,
  soc: z.number().min(0).max(1).optional(),
  seq: z.number().int().nonnegative(),
  ts: Ts,
});
export type CpTelemetryMsg = z.infer<typeof CpTelemetryMsg>;

/** A CP's answer to a command (`cp/<id>/ack`, Kafka `cp.status`). */
export const CommandAckMsg = z.object({
  v, type: z.literal('ack'),
  cp_id: CpId,
  command_id: Id,
  command: CommandSchema,
  ok: z.boolean(),
  reason: z.string().max(256).optional(),
  state: CpStateSchema,
  ts: Ts,
});
export type CommandAckMsg = z.infer<typeof CommandAckMsg>;

/** The metered record of a finished session (`cp/<id>/session`, Kafka `cp.status`): the source of billing. */
export const SessionEndMsg = z.object({
  v, type: z.literal('session_end'),
  cp_id: CpId,
  session_id: Id,
  driver_id: DriverId.optional(),
  kwh: NonNeg,
  eur: NonNeg,
  price_eur_kwh: NonNeg,
  started_at: Ts,
  ended_at: Ts,
  reason: SessionEndReasonSchema,
  ts: Ts,
});
export type SessionEndMsg = z.infer<typeof SessionEndMsg>;

/** Everything that travels on Kafka `cp.status`. */
export const CpStatusTopicMsg = z.discriminatedUnion('type', [CpStatusMsg, CpAnnounceMsg, CommandAckMsg, SessionEndMsg]);
export type CpStatusTopicMsg = z.infer<typeof CpStatusTopicMsg>;

/** Central → CP (Kafka `central.commands` keyed by CP id, MQTT `cp/<id>/cmd`). */
export const CentralCommandMsg = z.object({
  v,
  command_id: Id,
  cp_id: CpId,
  command: CommandSchema,
  session_id: Id.optional(),
  driver_id: DriverId.optional(),
  ts: Ts,
});
export type CentralCommandMsg = z.infer<typeof CentralCommandMsg>;

/** Driver → central (Kafka `driver.requests` keyed by driver id). */
export const DriverRequestMsg = z.object({
  v,
  request_id: Id,
  driver_id: DriverId,
  action: z.enum(['REQUEST', 'STOP', 'QUERY']),
  cp_id: CpId.optional(),
  vehicle_id: z.string().max(64).optional(),
  ts: Ts,
}).refine((m) => m.action !== 'REQUEST' || m.cp_id !== undefined, { message: 'cp_id is required for REQUEST', path: ['cp_id'] });
export type DriverRequestMsg = z.infer<typeof DriverRequestMsg>;

export const Ticket = z.object({
  session_id: Id,
  cp_id: CpId,
  driver_id: DriverId,
  kwh: NonNeg,
  eur: NonNeg,
  price_eur_kwh: NonNeg,
  started_at: Ts,
  ended_at: Ts,
  duration_s: NonNeg,
  reason: SessionEndReasonSchema,
  interrupted: z.boolean(),
});
export type Ticket = z.infer<typeof Ticket>;

/** Central → driver (Kafka `driver.updates` keyed by driver id). */
export const DriverUpdateMsg = z.object({
  v,
  driver_id: DriverId,
  request_id: Id.optional(),
  session_id: Id.optional(),
  cp_id: CpId.optional(),
  status: z.enum(DRIVER_UPDATE_STATUSES),
  reason: z.string().max(256).optional(),
  kw: NonNeg.optional(),
  kwh: NonNeg.optional(),
  eur: NonNeg.optional(),
  ticket: Ticket.optional(),
  ts: Ts,
});
export type DriverUpdateMsg = z.infer<typeof DriverUpdateMsg>;

/** Monitor → central over HTTP. */
export const MonitorReportMsg = z.object({
  v,
  cp_id: CpId,
  monitor_id: Id,
  kind: z.enum(['heartbeat', 'fault', 'recovered']),
  engine_ok: z.boolean(),
  reason: z.string().max(256).optional(),
  ts: Ts,
});
export type MonitorReportMsg = z.infer<typeof MonitorReportMsg>;

/** Which schema validates each bus topic. */
export const BUS_SCHEMAS = {
  'cp.status': CpStatusTopicMsg,
  'cp.telemetry': CpTelemetryMsg,
  'central.commands': CentralCommandMsg,
  'driver.requests': DriverRequestMsg,
  'driver.updates': DriverUpdateMsg,
} as const;
export type BusMessage<T extends keyof typeof BUS_SCHEMAS> = z.infer<(typeof BUS_SCHEMAS)[T]>;
