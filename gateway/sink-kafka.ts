import { KafkaBus } from '../bus/kafka.js';
import { busUp, type BusConfig } from '../bus/types.js';
import { errText, type Logger } from '../lib/log.js';
import { BUS_TOPICS, type CentralCommandMsg } from '../protocol/index.js';
import type { BusEntry } from './bridge.js';
import { ForwardBuffer, type Pending } from './forward-buffer.js';
import { startForwarder, type Forwarder } from './kafka-forwarder.js';
import { pushCounted, type BusSink, type SinkCounters } from './sink.js';
import { Spool } from './spool.js';

export interface KafkaSinkOptions {
  bus: BusConfig;
  /** Consumer group for central.commands: one per gateway, so every gateway sees every command (and delivers its own CPs'). */
  group: string;
  bufferMax: number;
  stallMs?: number;
  /** The spool file; unset = no spool (critical messages are then acknowledged only once Kafka has them). */
  spoolFile?: string;
  spoolMax?: number;
  /** Batches in flight at once (lanes by hash of the CP id; per-CP order holds within a lane). */
  lanes?: number;
}

/**
 * Kafka behind a forward buffer (bounded, telemetry shed first, several lanes by CP id with one
 * batch in flight each, so per-key order holds) and a spool on disk for critical messages. A critical message is safe — and
 * its CP acknowledged — once Kafka has it or an fsync of the spool covers it, whichever comes
 * first; what the spool holds is replayed on start, ahead of anything new.
 */
export class KafkaSink implements BusSink {
  readonly kind = 'kafka' as const;
  readonly bus: KafkaBus;
  private readonly buffer: ForwardBuffer;
  private readonly forwarder: Forwarder;
  readonly spool?: Spool;
  private closing = false;
  private commandHandler?: (key: string, cmd: CentralCommandMsg) => void;

  constructor(o: KafkaSinkOptions, private readonly counters: SinkCounters, private readonly log: Logger) {
    this.bus = new KafkaBus(o.bus, log.child({ part: 'kafka' }));
    this.buffer = new ForwardBuffer(o.bufferMax, o.lanes ?? 4);
    if (o.spoolFile) {
      this.spool = new Spool({ file: o.spoolFile, maxEntries: o.spoolMax });
      const replay = this.spool.replayed;
      for (const e of replay) this.buffer.push({ topic: e.topic, key: e.key, value: e.value, droppable: false, spooled: e.n });
      if (replay.length) log.info({ entries: replay.length, file: o.spoolFile }, 'spool replayed: delivering what was acknowledged but not yet on Kafka');
      if (this.spool.stats.tornLines) log.warn({ torn: this.spool.stats.tornLines }, 'spool had a torn line (killed mid-write): skipped');
    }
    this.forwarder = startForwarder({
      buffer: this.buffer, ready: this.bus.ready, log, stallMs: o.stallMs,
      send: (batch) => this.bus.publishBatch(batch),
      onDelivered: (batch) => this.delivered(batch),
      onOutage: (down) => { counters.busUp(!down); if (down) counters.outage(); },
      where: () => ({ kafka: o.bus.kafkaBootstrap, ...(this.bus.health().problem ? { problem: this.bus.health().problem } : {}) }),
    });
    // perInstance: a gateway restarted after SIGKILL reads commands at once instead of waiting for its
    // dead predecessor's group session to time out (stacked kills held a driver's STOP for 26 s).
    this.bus.subscribe(BUS_TOPICS.centralCommands, (cmd, meta) => this.commandHandler?.(meta.key, cmd), { group: o.group, fromBeginning: true, perInstance: true });
  }

  private delivered(batch: Pending[]): void {
    const spooled: number[] = [];
    const byTopic = new Map<string, number>();
    for (const p of batch) {
      if (p.spooled !== undefined) spooled.push(p.spooled);
      p.onBus?.();
      byTopic.set(p.topic, (byTopic.get(p.topic) ?? 0) + 1);
    }
    for (const [t, n] of byTopic) this.counters.bridged(t, n);
    if (spooled.length) this.spool?.ack(spooled);
    this.counters.buffered(this.buffer.size);
  }

  get queued(): number { return this.buffer.size; }
  readingWaitingSince(cpId: string): number | undefined { return this.buffer.waitingSince(cpId); }
  up(): boolean { return !this.closing && !this.forwarder.down && busUp(this.bus.health()); }

  push(entry: BusEntry, safe?: () => void): void {
    if (this.closing) return;
    const p: Pending = { ...entry };
    if (entry.critical && safe) {
      // Whichever comes first — the spool's fsync or Kafka — acknowledges the CP, once.
      let done = false;
      const once = () => { if (!done) { done = true; safe(); } };
      p.onBus = once;
      const n = this.spool?.append(entry.topic, entry.key, entry.value, once);
      if (n !== undefined) p.spooled = n;
    } else if (safe) p.onBus = safe;
    pushCounted(this.buffer, this.counters, p);
    this.counters.buffered(this.buffer.size);
    this.forwarder.notify();
  }

  onCommand(handler: (key: string, cmd: CentralCommandMsg) => void): void { this.commandHandler = handler; }

  async start(): Promise<void> {
    void this.bus.start().then(() => this.counters.busUp(!this.forwarder.down))
      .catch((err) => { if (!this.closing) this.log.error({ err: errText(err) }, 'kafka bus failed to start'); });
  }

  health(): Record<string, unknown> {
    return {
      bus: 'kafka', kafka: this.bus.health(), kafka_up: !this.forwarder.down && busUp(this.bus.health()),
      buffered: this.buffer.size, shed: this.buffer.shed, spooled: this.spool?.size ?? 0,
    };
  }

  /** Kafka's count of invalid messages read (central.commands that failed validation). */
  invalid(): number { return this.bus.stats().invalid; }

  async close(drainMs: number): Promise<number> {
    this.closing = true;
    // Nothing new comes in now: give Kafka a moment to take what is held; the spool keeps the critical rest.
    const left = await this.forwarder.drain(drainMs);
    this.forwarder.close();
    this.spool?.close();
    await this.bus.close();
    return left;
  }
}
