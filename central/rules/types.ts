import type {
  BusMessage, BusTopic, CommandAckMsg, CpAnnounceMsg, CpStatusMsg, CpTelemetryMsg, DriverRequestMsg, GatewayBeatMsg, MonitorReportMsg, SessionEndMsg,
} from '../../protocol/index.js';
import type { CounterName } from '../metrics.js';
import type { MonitorRecord, MonitorStatus } from '../monitors.js';
import type { CentralEvent, CentralState } from '../state.js';

/**
 * The shapes of central's rules: one input in, what follows from it out. `handle` (index.ts)
 * reads the state and never changes it; the controller journals `events` (the durable state
 * changes through the reducer in state.ts), applies `mem` (what central keeps only in memory),
 * publishes `out` once the journal is durable, and logs/counts `notes`.
 */

/** Who sent a bus message, as the bus says: its key (a CP id, a driver id, a gateway id). Absent: not known (trusted as the payload says). */
export type Key = string | undefined;

export type Input =
  | { t: 'announce'; m: CpAnnounceMsg; key?: Key }
  | { t: 'status'; m: CpStatusMsg; key?: Key }
  | { t: 'ack'; m: CommandAckMsg; key?: Key }
  | { t: 'session_end'; m: SessionEndMsg; key?: Key }
  | { t: 'gateway_beat'; m: GatewayBeatMsg; key?: Key }
  | { t: 'telemetry'; m: CpTelemetryMsg; key?: Key }
  /** A driver's REQUEST, STOP, QUERY or CANCEL (the action is in the message). */
  | { t: 'driver'; m: DriverRequestMsg; key?: Key }
  | { t: 'monitor_report'; r: MonitorReportMsg }
  | { t: 'admin'; cp_id: string; stop: boolean }
  /** Periodic: deadlines, silences, pruning. `busUp`: central's own bus is connected (silence means nothing while it is not). */
  | { t: 'tick'; busUp: boolean }
  /** The bus (re)connected: tickets that never reached their driver go again. */
  | { t: 'bus_up' };

export interface GatewayMem {
  boot_id: string;
  interval_ms: number;
  last_at: number;
  seq: number;
  /** When central first saw this boot; set only when the boot changed while central watched (CPs must come back after it). */
  boot_changed_at?: number;
}

/** What central knows only in memory: it comes back within seconds after a restart. */
export interface Mem {
  bootAt: number;
  monitors: Map<string, MonitorRecord>;
  /** The monitor status last announced per CP (a change is logged once). */
  shownMonitor: Map<string, MonitorStatus>;
  /** When the last IN_PROGRESS went to the driver, per session (one per `progressEveryMs` at most). */
  lastProgress: Map<string, number>;
  /** The IN_PROGRESS period now: set each tick from the number of running sessions (RulesOptions.progress). */
  progressEveryMs: number;
  gateways: Map<string, GatewayMem>;
  /**
   * When central last received a CP message a known gateway forwarded (stamped `gw`), central's
   * clock, refreshed at most every GATEWAY_TRAFFIC_EVERY_MS. Proof of life as good as a beat: an
   * overloaded gateway's beat timer runs late while its forwarding goes on.
   */
  gatewayTraffic: Map<string, number>;
  /** When each CP last spoke (any message), central's clock. */
  heard: Map<string, number>;
  /** Reachability last announced per CP (a change is logged once). */
  shownReach: Map<string, string>;
  /** Per-driver token buckets for the request rate limit. */
  buckets: Map<string, { tokens: number; at: number; refusedAt?: number }>;
  /** When a STOP last went for a session central no longer runs (a late START), so telemetry does not send one a second. */
  lateStops: Map<string, number>;
  /** Sources already logged for a kind of forged input (log once per source, count always). */
  warned: Set<string>;
  /** Central's own bus: false while it is down; `busBackAt` when it came back (silences count from then). */
  busUp: boolean;
  busBackAt: number;
  /** When the last tick ran: a much longer gap means central itself was stopped or stalled. */
  lastTickAt: number;
}

export type MemEvent =
  | { m: 'monitor'; cp_id: string; rec: MonitorRecord }
  | { m: 'monitor_shown'; cp_id: string; status: MonitorStatus }
  | { m: 'progress'; session_id: string; at: number }
  | { m: 'gateway'; gateway_id: string; rec: GatewayMem }
  | { m: 'heard'; cp_id: string; at: number }
  | { m: 'gateway_traffic'; gateway_id: string; at: number }
  | { m: 'reach_shown'; cp_id: string; reach: string }
  | { m: 'bucket'; driver_id: string; bucket: { tokens: number; at: number; refusedAt?: number } }
  | { m: 'late_stop'; session_id: string; at: number }
  | { m: 'warned'; key: string }
  | { m: 'bus'; up: boolean; at: number }
  | { m: 'tick'; at: number }
  | { m: 'progress_every'; ms: number }
  /** Central itself was stopped (SIGSTOP, a suspended host, a stalled loop): silences count from `at`, as after a bus return. */
  | { m: 'resumed'; at: number }
  /** Drops per-session and per-driver memory that no longer matters (bounded growth). */
  | { m: 'forget'; sessions: string[]; drivers: string[]; lateStops: string[] };

/**
 * A message to publish once everything journaled before it is durable; `then` is journaled once the bus took it.
 * `droppable`: the next of its kind supersedes it (IN_PROGRESS), so the bus may send it without an acknowledgement.
 */
export type Out = { [T in BusTopic]: { topic: T; key: string; value: BusMessage<T>; then?: CentralEvent[]; droppable?: true } }[BusTopic];

export type Note =
  | { n: 'count'; name: CounterName; by?: number }
  | { n: 'reject'; reason: string }
  | { n: 'log'; level: 'info' | 'warn'; msg: string; fields: Record<string, unknown> }
  | { n: 'recent'; level: 'info' | 'warn'; text: string; cp_id?: string; driver_id?: string }
  /** Input refused because its sender does not own what it names (every time; the log line comes once per source). For an audit trail. */
  | { n: 'refused'; counter: CounterName; source: string; what: string; fields: Record<string, unknown> };

export interface Result {
  events: CentralEvent[];
  mem: MemEvent[];
  out: Out[];
  notes: Note[];
  /** monitor_report: false when refused (registry full); admin: false for an unknown CP; tick: whether anything shown changed. */
  reply?: boolean;
}

export interface RulesState { durable: CentralState; mem: Mem }

export interface RulesOptions {
  monitorTimeoutMs: number;
  /** How long central waits for a CP's own session_end after a fault, stop or lost link before closing the session from telemetry. */
  endGraceMs: number;
  /** How long a START_SUPPLY may stay unconfirmed before the session is closed (`unconfirmed`); also the START's expires_at. */
  startConfirmMs: number;
  /** Above this many CPs, a monitor report for an unknown CP is refused instead of registering it. */
  maxCps: number;
  /** How long a session whose CP became unreachable (silent gateway or engine) is held before it is closed from telemetry (`unreachable`). */
  unreachableGraceMs: number;
  /** A CP supplying a session that sends nothing (no telemetry, no status) this long is unreachable. */
  engineSilenceMs: number;
  /** A gateway is silent after this many of its own beat intervals without a beat. */
  gatewayMissedBeats: number;
  /** Per-driver request rate: a bucket of `burst` requests refilled at `perSecond`. */
  driverRate: { burst: number; perSecond: number };
  /** Commands other than START (whose deadline is startConfirmMs) expire this long after they are sent. */
  commandTtlMs: number;
  /** Bounded growth: request ids are kept this long and at most this many; ended, delivered sessions at most this many. */
  requestTtlMs: number;
  maxRequests: number;
  maxSessions: number;
  /**
   * Ticks further apart than this mean central itself was paused: what the gateways and CPs
   * said meanwhile is still queued for it, so silences and deadlines count from the resume.
   */
  pauseMs: number;
  /**
   * IN_PROGRESS updates to drivers: one per session every `minMs` while that keeps the total
   * under `perSecond`, stretched up to `maxMs` past it (each one is a bus message through the
   * gateway; at 10,000 sessions a second each would double its load). `maxMs` stays well under
   * a driver's request timeout (10 s), after which it asks central.
   */
  progress: { minMs: number; maxMs: number; perSecond: number };
  /** New session and command ids (injected so the rules stay deterministic under test). */
  newId: () => string;
}

export const DEFAULT_RULES: Omit<RulesOptions, 'newId'> = {
  monitorTimeoutMs: 3000, endGraceMs: 5000, startConfirmMs: 30_000, maxCps: 10_000,
  unreachableGraceMs: 30_000, engineSilenceMs: 10_000, gatewayMissedBeats: 3, pauseMs: 2_500,
  driverRate: { burst: 30, perSecond: 10 }, commandTtlMs: 60_000,
  requestTtlMs: 24 * 3600_000, maxRequests: 100_000, maxSessions: 20_000,
  progress: { minMs: 900, maxMs: 5_000, perSecond: 1_000 },
};

/** Memory at start: the bus counts as down until the first tick sees it connected. */
export function emptyMem(bootAt: number, busUp = false): Mem {
  return {
    bootAt, monitors: new Map(), shownMonitor: new Map(), lastProgress: new Map(), progressEveryMs: DEFAULT_RULES.progress.minMs, gateways: new Map(), gatewayTraffic: new Map(), heard: new Map(),
    shownReach: new Map(), buckets: new Map(), lateStops: new Map(), warned: new Set(), busUp, busBackAt: bootAt, lastTickAt: bootAt,
  };
}

/** Applies one memory event in place (the in-memory twin of state.ts `apply`). */
export function applyMem(mem: Mem, e: MemEvent): void {
  switch (e.m) {
    case 'monitor': mem.monitors.set(e.cp_id, e.rec); return;
    case 'monitor_shown': mem.shownMonitor.set(e.cp_id, e.status); return;
    case 'progress': mem.lastProgress.set(e.session_id, e.at); return;
    case 'gateway': mem.gateways.set(e.gateway_id, e.rec); return;
    case 'heard': mem.heard.set(e.cp_id, e.at); return;
    case 'gateway_traffic': mem.gatewayTraffic.set(e.gateway_id, e.at); return;
    case 'reach_shown': mem.shownReach.set(e.cp_id, e.reach); return;
    case 'bucket': mem.buckets.set(e.driver_id, e.bucket); return;
    case 'late_stop': mem.lateStops.set(e.session_id, e.at); return;
    case 'warned':
      // Bounded: past 10,000 sources the oldest are forgotten (and may be logged once more).
      if (mem.warned.size >= 10_000) mem.warned.delete(mem.warned.values().next().value as string);
      mem.warned.add(e.key);
      return;
    case 'bus':
      if (e.up && !mem.busUp) mem.busBackAt = e.at;
      mem.busUp = e.up;
      return;
    case 'tick': mem.lastTickAt = e.at; return;
    case 'progress_every': mem.progressEveryMs = e.ms; return;
    case 'resumed': mem.busBackAt = e.at; return;
    case 'forget':
      for (const s of e.sessions) mem.lastProgress.delete(s);
      for (const d of e.drivers) mem.buckets.delete(d);
      for (const s of e.lateStops) mem.lateStops.delete(s);
      return;
  }
}
