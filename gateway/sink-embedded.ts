import type { Aedes } from 'aedes';
import { embeddedBusTopic, type CentralCommandMsg } from '../protocol/index.js';
import type { BusEntry } from './bridge.js';
import { ForwardBuffer } from './forward-buffer.js';
import { pushCounted, type BusSink, type SinkCounters } from './sink.js';

/**
 * The embedded bus: entries are published on this gateway's own broker as `bus/<topic>/<key>`.
 *
 * Never from inside aedes' publish handling: a synchronous publish there deepens aedes'
 * emitter chain with every message waiting, until the stack overflows (the 7k msgs/s crash).
 * Entries wait in the bounded forward buffer, drained on setImmediate one batch at a time (at
 * most `batchMax` handed to the broker at once; its callback comes once the subscribers'
 * sockets took the message, so a slow consumer slows the drain). Over the bound the oldest
 * telemetry is shed and counted; critical entries are never shed — their CPs wait for their
 * acknowledgement instead. Arrival order is kept.
 */
export class EmbeddedSink implements BusSink {
  readonly kind = 'embedded' as const;
  private readonly buffer: ForwardBuffer;
  private busy = false;
  private scheduled = false;
  private closing = false;
  private commandHandler?: (key: string, cmd: CentralCommandMsg) => void;
  private readonly qos0Id: string;

  constructor(private readonly broker: Aedes, private readonly counters: SinkCounters, max: number, private readonly batchMax = 512) {
    this.buffer = new ForwardBuffer(max);
    this.qos0Id = `${broker.id}-qos0`;
  }

  get queued(): number { return this.buffer.size; }
  readingWaitingSince(cpId: string): number | undefined { return this.buffer.waitingSince(cpId); }
  up(): boolean { return !this.closing; }

  push(entry: BusEntry, safe?: () => void): void {
    if (this.closing) return;
    pushCounted(this.buffer, this.counters, safe ? { ...entry, onBus: safe } : entry);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.busy) return;
    this.scheduled = true;
    setImmediate(() => { this.scheduled = false; this.drain(); });
  }

  private drain(): void {
    const batch = this.buffer.take(this.batchMax);
    this.counters.buffered(this.buffer.size);
    if (!batch.length) return;
    this.busy = true;
    let left = batch.length;
    for (const p of batch) {
      const topic = embeddedBusTopic(p.topic as never, p.key);
      // Telemetry and beats (droppable: each one supersedes the last) go at QoS 0: no packet id, no
      // inflight record in aedes and no PUBACK from each subscriber (a write per message on both
      // sides). What a subscriber misses while away, the next one carries.
      // Each QoS has its own broker id: aedes drops, per subscriber, any packet whose counter is
      // below the last one it delivered from that broker id, and a QoS 1 packet waits on the
      // persistence (offline queue) while a later QoS 0 one does not — one shared id lost the
      // overtaken status and session_end messages (the fuzz-gateway test).
      const qos = p.droppable ? 0 : 1;
      this.broker.publish({ cmd: 'publish', topic, payload: p.value, qos, retain: false, dup: false, ...(qos === 0 ? { brokerId: this.qos0Id } : {}) } as never, () => {
        this.counters.bridged(p.topic, 1);
        p.onBus?.();
        if (--left === 0) {
          this.buffer.ack();
          this.busy = false;
          this.counters.buffered(this.buffer.size);
          if (this.buffer.size) this.schedule();
        }
      });
    }
  }

  onCommand(handler: (key: string, cmd: CentralCommandMsg) => void): void { this.commandHandler = handler; }
  /** The server hands over commands published on `bus/central.commands/<cp>` here (decoded once). */
  command(key: string, cmd: CentralCommandMsg): void { this.commandHandler?.(key, cmd); }

  async start(): Promise<void> { this.counters.busUp(true); }

  health(): Record<string, unknown> { return { bus: 'embedded', buffered: this.buffer.size, shed: this.buffer.shed }; }

  async close(drainMs: number): Promise<number> {
    const deadline = Date.now() + drainMs;
    while (this.buffer.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.closing = true;
    return this.buffer.size;
  }
}
