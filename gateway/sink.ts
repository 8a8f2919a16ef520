import type { CentralCommandMsg } from '../protocol/index.js';
import type { BusEntry } from './bridge.js';
import type { ForwardBuffer, Pending } from './forward-buffer.js';

/**
 * Where the bridge hands CP messages and where central's commands come from: one interface,
 * two implementations (gateway/sink-embedded.ts: this gateway's own broker; gateway/sink-kafka.ts:
 * Kafka with a forward buffer and a spool on disk). The server never branches on which.
 */
export interface BusSink {
  readonly kind: 'embedded' | 'kafka';
  /**
   * Hands one entry on. `safe` is called once the bus (or, on Kafka, the spool on disk) holds
   * it; the server acknowledges a critical message to its CP only then. Telemetry over the
   * bound may be shed (counted); critical entries never are.
   */
  push(entry: BusEntry, safe?: () => void): void;
  /** Central's commands for CPs (Kafka: read from central.commands; embedded: fed by the server). */
  onCommand(handler: (key: string, cmd: CentralCommandMsg) => void): void;
  start(): Promise<void>;
  /** Whether the bus takes entries now (a heartbeat is sent only then: a late one would claim a liveness that was not there). */
  up(): boolean;
  /** Entries waiting to be handed to the bus. */
  readonly queued: number;
  /** Since when (ms) a reading (telemetry) of this CP has waited to be handed to the bus, not yet in flight; undefined if none waits. */
  readingWaitingSince(cpId: string): number | undefined;
  health(): Record<string, unknown>;
  /** Stops taking entries, gives the bus up to `drainMs` to take what is held, and says what was left. */
  close(drainMs: number): Promise<number>;
}

/** What a sink counts (the server turns these into Prometheus metrics). */
export interface SinkCounters {
  bridged(topic: string, n: number): void;
  shed(n: number): void;
  buffered(n: number): void;
  busUp(up: boolean): void;
  outage(): void;
}

/** One push into a forward buffer, with what it shed counted. */
export function pushCounted(buffer: ForwardBuffer, counters: SinkCounters, p: Pending): void {
  const shed = buffer.shed;
  buffer.push(p);
  if (buffer.shed > shed) counters.shed(buffer.shed - shed);
}
