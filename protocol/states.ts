/** Charging-point states, as the original system named them. */
export const CP_STATES = ['DISCONNECTED', 'ACTIVATED', 'SUPPLYING', 'STOPPED', 'FAULTY'] as const;
export type CpState = (typeof CP_STATES)[number];

/** Commands central sends to a charging point. */
export const COMMANDS = ['START_SUPPLY', 'STOP_SUPPLY', 'STOP_CP', 'RESUME_CP'] as const;
export type Command = (typeof COMMANDS)[number];

/** Hardware faults a HAL can report (and the simulator can inject). */
export const FAULT_KINDS = ['ground_fault', 'over_temperature', 'meter_failure', 'relay_failure', 'link_lost'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Why a charging session ended. `full`, `driver_stop` and `central_stop` are normal ends; the rest interrupt it. */
export const SESSION_END_REASONS = [
  'full', 'driver_stop', 'central_stop', 'cp_stopped', 'fault', 'disconnected', 'engine_restart',
  /** The driver gave up (CANCEL) before the CP confirmed the supply. */
  'cancelled',
  /** The CP never confirmed the START within its deadline. */
  'unconfirmed',
  /** The CP's gateway (or the engine itself) fell silent while the session ran. */
  'unreachable',
  /** The vehicle was unplugged at the CP. */
  'unplugged',
] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

export const INTERRUPTING_END_REASONS: ReadonlySet<SessionEndReason> = new Set(['cp_stopped', 'fault', 'disconnected', 'engine_restart', 'cancelled', 'unconfirmed', 'unreachable', 'unplugged']);

/** What a driver may ask central. */
export const DRIVER_ACTIONS = ['REQUEST', 'STOP', 'QUERY', 'CANCEL'] as const;
export type DriverAction = (typeof DRIVER_ACTIONS)[number];

/** Driver-facing outcome of a request. */
export const DRIVER_UPDATE_STATUSES = ['ACCEPTED', 'REJECTED', 'IN_PROGRESS', 'COMPLETED', 'INTERRUPTED'] as const;

/**
 * Who a connected party is, as the gateway, central and the registry know it. Each role has
 * least privilege (docs/security.md): a CP speaks only for itself, a driver only for itself,
 * a monitor reports only for the CPs it watches, central alone commands CPs and answers
 * drivers, a gateway bridges, an admin manages the registry and stops CPs.
 * `service` is the older name of `central` in credentials files and is read as it.
 */
export const ROLES = ['cp', 'driver', 'monitor', 'central', 'gateway', 'admin'] as const;
export type Role = (typeof ROLES)[number];
