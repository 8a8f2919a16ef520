import { z } from 'zod';
import { COMMANDS, CP_STATES, DRIVER_ACTIONS, DRIVER_UPDATE_STATUSES, FAULT_KINDS, SESSION_END_REASONS } from './states.js';

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
/** Energy and money are bounded at the boundary: no CP meters a megawatt-hour in one session, so larger values are lies or bugs. */
export const MAX_SESSION_KWH = 10_000;
export const MAX_SESSION_EUR = 100_000;
const Kwh = NonNeg.max(MAX_SESSION_KWH);
const Eur = NonNeg.max(MAX_SESSION_EUR);
const Kw = NonNeg.max(10_000);
const Price = NonNeg.max(100);
/** Which gateway bridged a CP message: stamped (overwritten) by the gateway, never trusted from the CP. */
const Via = z.string().regex(ID_PATTERN).optional();

export const CpStateSchema = z.enum(CP_STATES);
export const CommandSchema = z.enum(COMMANDS);
export const FaultKindSchema = z.enum(FAULT_KINDS);
export const SessionEndReasonSchema = z.enum(SESSION_END_REASONS);

export const ProfileSummary = z.object({
  name: z.string().min(1).max(64),
  max_kw: z.number().positive().max(10_000),
  price_eur_kwh: Price,
  connector: z.string().max(32),
  phases: z.number().int().min(1).max(3),
  hal: z.string().max(16),
});
export type ProfileSummary = z.infer<typeof ProfileSummary>;

/** Retained state of a CP (MQTT `cp/<id>/status`, Kafka `cp.status`). */
export const CpStatusMsg = z.object({
  v, type: z.literal('status'),
  cp_id: CpId,
  gw: Via,
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
  gw: Via,
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
  gw: Via,
  session_id: Id,
  kw: Kw,
  kwh: Kwh,
  eur: Eur,
  soc: z.number().min(0).max(1).optional(),
  seq: z.number().int().nonnegative(),
  ts: Ts,
});
export type CpTelemetryMsg = z.infer<typeof CpTelemetryMsg>;

/** A CP's answer to a command (`cp/<id>/ack`, Kafka `cp.status`). */
export const CommandAckMsg = z.object({
  v, type: z.literal('ack'),
  cp_id: CpId,
  gw: Via,
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
  gw: Via,
  session_id: Id,
  driver_id: DriverId.optional(),
  kwh: Kwh,
  eur: Eur,
  price_eur_kwh: Price,
  started_at: Ts,
  ended_at: Ts,
  reason: SessionEndReasonSchema,
  ts: Ts,
});
export type SessionEndMsg = z.infer<typeof SessionEndMsg>;

/**
 * A gateway's heartbeat on `cp.status`, keyed by its gateway id: central marks every CP whose
 * messages came through a gateway that fell silent as unreachable. A new boot_id means the
 * gateway restarted (its CPs reconnect and announce again).
 */
export const GatewayBeatMsg = z.object({
  v, type: z.literal('gateway'),
  gateway_id: z.string().regex(ID_PATTERN, 'invalid gateway id'),
  boot_id: Id,
  /** How often it beats; central's silence limit is a few of these. */
  interval_ms: z.number().int().min(100).max(60_000),
  /** CPs connected to it now (a count: a list would not fit 10,000 CPs in one message). */
  cps: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
  ts: Ts,
});
export type GatewayBeatMsg = z.infer<typeof GatewayBeatMsg>;

/** Everything that travels on Kafka `cp.status`. */
export const CpStatusTopicMsg = z.discriminatedUnion('type', [CpStatusMsg, CpAnnounceMsg, CommandAckMsg, SessionEndMsg, GatewayBeatMsg]);
export type CpStatusTopicMsg = z.infer<typeof CpStatusTopicMsg>;

/** Central → CP (Kafka `central.commands` keyed by CP id, MQTT `cp/<id>/cmd`). */
export const CentralCommandMsg = z.object({
  v,
  command_id: Id,
  cp_id: CpId,
  command: CommandSchema,
  session_id: Id.optional(),
  driver_id: DriverId.optional(),
  /** After this moment (epoch ms) the command must not be carried out: the gateway drops it, a CP refuses it. */
  expires_at: Ts.optional(),
  ts: Ts,
});
export type CentralCommandMsg = z.infer<typeof CentralCommandMsg>;

/** Driver → central (Kafka `driver.requests` keyed by driver id). */
export const DriverRequestMsg = z.object({
  v,
  request_id: Id,
  driver_id: DriverId,
  /** CANCEL withdraws the earlier request `cancels` (the driver gave up waiting). */
  action: z.enum(DRIVER_ACTIONS),
  cp_id: CpId.optional(),
  vehicle_id: z.string().max(64).optional(),
  cancels: Id.optional(),
  /** The driver stops waiting at this moment (epoch ms): central never starts a supply for it later. */
  expires_at: Ts.optional(),
  ts: Ts,
}).refine((m) => m.action !== 'REQUEST' || m.cp_id !== undefined, { message: 'cp_id is required for REQUEST', path: ['cp_id'] })
  .refine((m) => m.action !== 'CANCEL' || m.cancels !== undefined, { message: 'cancels is required for CANCEL', path: ['cancels'] });
export type DriverRequestMsg = z.infer<typeof DriverRequestMsg>;

export const Ticket = z.object({
  session_id: Id,
  cp_id: CpId,
  driver_id: DriverId,
  kwh: Kwh,
  eur: Eur,
  price_eur_kwh: Price,
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
  kw: Kw.optional(),
  kwh: Kwh.optional(),
  eur: Eur.optional(),
  soc: z.number().min(0).max(1).optional(),
  ticket: Ticket.optional(),
  /** When the session was accepted (epoch ms): a driver that takes a running session back enforces its charge limit from here. */
  started_at: Ts.optional(),
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
