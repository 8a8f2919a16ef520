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
export const SESSION_END_REASONS = ['full', 'driver_stop', 'central_stop', 'cp_stopped', 'fault', 'disconnected', 'engine_restart'] as const;
export type SessionEndReason = (typeof SESSION_END_REASONS)[number];

export const INTERRUPTING_END_REASONS: ReadonlySet<SessionEndReason> = new Set(['cp_stopped', 'fault', 'disconnected', 'engine_restart']);

/** Driver-facing outcome of a request. */
export const DRIVER_UPDATE_STATUSES = ['ACCEPTED', 'REJECTED', 'IN_PROGRESS', 'COMPLETED', 'INTERRUPTED'] as const;
export type DriverUpdateStatus = (typeof DRIVER_UPDATE_STATUSES)[number];
