import fs from 'node:fs';
import { Kafka, Partitioners, logLevel, type Consumer, type LogEntry, type Producer, type SASLOptions } from 'kafkajs';
import type { Logger } from '../lib/log.js';
import { retryWithBackoff } from '../lib/backoff.js';
import { errText } from '../lib/log.js';
import { encode, type BusMessage, type BusTopic } from '../protocol/index.js';
import type { Bus, BusConfig, BusHandler, BusHealth, SubscribeOptions } from './types.js';
import { checkOutgoing, deliver, type Sub } from './validate.js';
import { advertisedProblem, probeAdvertised, type ProbeOptions } from './kafka-probe.js';

/**
 * kafkajs log lines go to pino at debug, one line without stack traces. kafkajs logs every failed
 * connection attempt and request at ERROR, which would flood the log during an outage; the adapter
 * and the gateway log the outage themselves, once, and its end.
 */
function kafkaLogCreator(log: Logger, onError: (text: string) => void) {
  return () => ({ level, log: entry }: LogEntry) => {
    const { message, error } = entry;
    if (level === logLevel.ERROR) onError(typeof error === 'string' ? error : message);
    log.debug({ kafka: entry.logger ?? undefined, error: typeof error === 'string' ? error : undefined }, message);
  };
}

/** The bus over Kafka (kafkajs): key = CP or driver id, so per-key order is kept by partition. */
export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  private readonly kafka: Kafka;
  private producer: Producer;
  private consumers: Consumer[] = [];
  private subs: Sub[] = [];
  private counts = { published: 0, received: 0, invalid: 0 };
  private producerState: BusHealth['producer'] = 'disconnected';
  private consumerState: BusHealth['consumer'] = 'idle';
  private readonly abort = new AbortController();
  private readonly brokers: string[];
  private rejoin = false;
  /** The last error kafkajs reported, for the one "not reachable" line. */
  private lastError?: string;
  private advertised: NonNullable<BusHealth['advertised']> = 'unknown';
  private problem?: string;
  private firstVerdict!: () => void;
  /** Settles once the probe of the advertised brokers has a verdict (or gave up waiting). */
  private readonly probed = new Promise<void>((r) => { this.firstVerdict = r; });
  private readonly probeOptions?: ProbeOptions;
  /**
   * kafkajs 2.2 leaves a broker it could not handshake with unusable: when ApiVersions times
   * out (a broker that accepts the connection but answers late, e.g. resuming after a stall) the
   * socket stays open and marked connected, so its own retry skips the handshake and every later
   * request fails with "Broker not connected" after a long internal retry loop. Set when that
   * timeout is seen; the producer is then torn down and connected afresh.
   */
  private handshakeLost = false;
  private resetting?: Promise<void>;
  private readyResolve!: () => void;
  /** Resolves when the producer is connected (after `start`). */
  readonly ready = new Promise<void>((r) => { this.readyResolve = r; });

  constructor(config: BusConfig, private readonly log: Logger) {
    const k = config.kafka ?? {};
    this.brokers = config.kafkaBootstrap ?? [];
    this.kafka = new Kafka({
      clientId: k.clientId ?? config.clientId,
      brokers: config.kafkaBootstrap ?? [],
      ssl: k.ssl ? (k.sslCaFile ? { ca: [fs.readFileSync(k.sslCaFile, 'utf8')] } : true) : undefined,
      sasl: k.sasl as SASLOptions | undefined,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(log, (text) => { this.lastError = text; }),
      retry: { initialRetryTime: 300, maxRetryTime: 5_000, retries: 8 },
      connectionTimeout: 5_000,
    });
    // The default partitioner, named so kafkajs does not warn about its v2 change: key → partition murmur2, as Java clients.
    this.producer = this.kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
    // SASL listeners refuse an unauthenticated Metadata request: no probe there.
    if (!k.sasl) this.probeOptions = { ssl: k.ssl ? (k.sslCaFile ? { ca: [fs.readFileSync(k.sslCaFile, 'utf8')] } : true) : false, timeoutMs: 3_000 };
    this.producer.on(this.producer.events.DISCONNECT, () => { this.producerState = 'disconnected'; });
    this.producer.on(this.producer.events.REQUEST_TIMEOUT, (e) => { if (e.payload.apiName === 'ApiVersions') this.handshakeLost = true; });
  }

  /** connect(), then a fresh start if the handshake timed out on the way (see `handshakeLost`). */
  private async connectProducer(): Promise<void> {
    await this.producer.connect();
    if (!this.handshakeLost) return;
    this.handshakeLost = false;
    await Promise.race([this.producer.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 1_500).unref())]);
    throw new Error('kafka accepted the connection but did not answer the handshake in time');
  }

  /** Replaces a producer whose handshake was lost after start (one reset at a time). */
  private resetProducer(): Promise<void> {
    this.resetting ??= (async () => {
      this.log.info('kafka handshake lost: reconnecting the producer');
      await Promise.race([this.producer.disconnect().catch(() => undefined), new Promise((r) => setTimeout(r, 1_500).unref())]);
      this.handshakeLost = false;
      await retryWithBackoff(() => this.connectProducer(), { signal: this.abort.signal });
    })().finally(() => { this.resetting = undefined; });
    return this.resetting;
  }

  subscribe<T extends BusTopic>(topic: T, handler: BusHandler<T>, opts: SubscribeOptions): void {
    this.subs.push({ topic, handler: handler as unknown as BusHandler<BusTopic>, opts });
  }

  /**
   * Until every advertised broker answers: one error line naming the address Kafka advertised and
   * the setting that fixes it, then a re-check every 5 s (and one line when it is fixed).
   */
  private async watchAdvertised(): Promise<void> {
    if (!this.probeOptions) { this.firstVerdict(); return; }
    while (!this.abort.signal.aborted) {
      const r = await probeAdvertised(this.brokers, this.probeOptions);
      if (r.ok) {
        if (this.advertised === 'unreachable') this.log.info({ brokers: r.brokers.map((b) => `${b.host}:${b.port}`) }, 'kafka advertised brokers reachable now');
        this.advertised = 'ok'; this.problem = undefined; this.firstVerdict();
        return;
      }
      if (r.stage === 'advertised') {
        const line = advertisedProblem(r);
        if (this.problem !== line) this.log.error({ bootstrap: r.bootstrap, advertised: r.brokers.map((b) => `${b.host}:${b.port}`), fix: 'KAFKA_ADVERTISED_HOST' }, line);
        this.advertised = 'unreachable'; this.problem = line; this.firstVerdict();
      }
      await new Promise((res) => setTimeout(res, r.stage === 'bootstrap' ? 1_000 : 5_000).unref());
    }
  }

  async start(): Promise<void> {
    void this.watchAdvertised().catch((err) => { this.log.debug({ err: errText(err) }, 'advertised-broker probe failed'); this.firstVerdict(); });
    let warned = false;
    const onWaiting = (err: unknown) => {
      if (!warned) { warned = true; this.log.warn({ err: errText(err) }, 'kafka not reachable yet, retrying with backoff'); }
    };
    this.producerState = 'connecting';
    // kafkajs retries a connect internally for many seconds before it throws; say sooner that we wait.
    const slow = setTimeout(() => onWaiting(new Error(this.lastError ?? 'no answer yet')), 1_500);
    try {
      await retryWithBackoff(() => this.connectProducer(), { signal: this.abort.signal, onWaiting });
    } finally { clearTimeout(slow); }
    this.producerState = 'connected';
    // "connected" only when it is true: the bootstrap answering is not enough if the brokers it
    // advertises cannot be reached (the probe has said so in its own line by then).
    await Promise.race([this.probed, new Promise((r) => setTimeout(r, 8_000).unref())]);
    if (warned && this.advertised !== 'unreachable') this.log.info({ brokers: this.brokers }, 'kafka reachable, connected');
    this.readyResolve();
    const groups = new Map<string, Sub[]>();
    for (const s of this.subs) groups.set(s.opts.group, [...(groups.get(s.opts.group) ?? []), s]);
    if (groups.size) this.consumerState = 'connecting';
    for (const [baseGroup, subs] of groups) {
      const topics = [...new Set(subs.map((s) => s.topic))];
      const generation = subs.some((s) => s.opts.perInstance)
        ? await retryWithBackoff(() => this.nextGeneration(baseGroup, topics), { signal: this.abort.signal, onWaiting })
        : undefined;
      const group = generation?.groupId ?? baseGroup;
      if (generation) this.log.info({ group, resume_partitions: generation.resume.length }, 'kafka consumer joins a fresh group generation');
      // A member killed with SIGKILL holds its partitions until its session times out, and a
      // restarted central reads nothing until then: 10 s instead of kafkajs's 30 s/60 s defaults
      // (brokers allow 6 s at least). A short fetch wait keeps each hop quick on brokers that
      // do not answer a waiting fetch early.
      const consumer = this.kafka.consumer({
        groupId: group, allowAutoTopicCreation: true,
        sessionTimeout: 10_000, rebalanceTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 250,
      });
      this.consumers.push(consumer);
      await retryWithBackoff(async () => {
        await consumer.connect();
        for (const t of new Set(subs.map((s) => s.topic))) {
          await consumer.subscribe({ topic: t, fromBeginning: subs.some((s) => s.topic === t && s.opts.fromBeginning) });
        }
      }, { signal: this.abort.signal, onWaiting });
      // One line when the consumer falls over and one when it is back, not one per retry.
      // Registered before run(): the first GROUP_JOIN can fire before run() resolves.
      consumer.on(consumer.events.CRASH, (e) => {
        if (this.consumerState !== 'connecting') this.log.warn({ group, err: errText(e.payload.error) }, 'kafka consumer restarting');
        this.consumerState = 'connecting';
      });
      let resumed = !generation?.resume.length;
      consumer.on(consumer.events.GROUP_JOIN, () => {
        // Emitted synchronously before the first fetch: the seeks apply (and are committed) before any message is read.
        if (!resumed) {
          resumed = true;
          for (const r of generation!.resume) consumer.seek(r);
          // Commit at once, so this generation counts as used even if nothing is ever read in it:
          // an instance killed in a quiet moment must not leave its successor the same generation,
          // where the dead member holds the partitions until its session times out.
          consumer.commitOffsets(generation!.resume).catch((err: unknown) => this.log.debug({ group, err: errText(err) }, 'could not commit the generation\'s starting offsets'));
        }
        if (this.consumerState === 'connecting' && this.rejoin) this.log.info({ group }, 'kafka consumer rejoined its group');
        this.consumerState = 'connected';
        this.rejoin = true;
      });
      await consumer.run({
        eachMessage: async ({ topic, message }) => {
          await deliver(subs, topic as BusTopic, message.key?.toString() ?? '', message.value ?? Buffer.alloc(0), this.counts, this.log);
        },
      });
    }
    if (groups.size && this.consumerState === 'connecting') this.consumerState = 'connecting';
  }

  /**
   * The first unused generation of `base` (`base.0`, `base.1`, …: used = it committed an offset)
   * and the offsets its predecessor committed (the plain `base` group's before generation 0).
   * Found by galloping then bisecting, so a long crash loop costs a few offset fetches.
   */
  private async nextGeneration(base: string, topics: string[]): Promise<{ groupId: string; resume: Array<{ topic: string; partition: number; offset: string }> }> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const offsetsOf = async (groupId: string) => {
        const out: Array<{ topic: string; partition: number; offset: string }> = [];
        let res: Awaited<ReturnType<typeof admin.fetchOffsets>>;
        try { res = await admin.fetchOffsets({ groupId, topics }); } catch { return out; } // topics not created yet: nothing committed
        for (const t of res) for (const p of t.partitions) if (Number(p.offset) >= 0) out.push({ topic: t.topic, partition: p.partition, offset: p.offset });
        return out;
      };
      const name = (n: number) => `${base}.${n}`;
      const used = async (n: number) => (await offsetsOf(name(n))).length > 0;
      let next = 0;
      if (await used(0)) {
        let lo = 0; next = 1;
        while (await used(next)) { lo = next; next *= 2; }
        while (next - lo > 1) { const mid = (lo + next) >> 1; if (await used(mid)) lo = mid; else next = mid; }
      }
      return { groupId: name(next), resume: await offsetsOf(next === 0 ? base : name(next - 1)) };
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async publish<T extends BusTopic>(topic: T, key: string, value: BusMessage<T>): Promise<void> {
    checkOutgoing(topic, value);
    await this.producer.send({ topic, messages: [{ key, value: encode(value) }] });
    this.counts.published++;
  }

  /** Batch publish for the gateway bridge (already validated): one call for all topics, arrival order kept per topic. */
  async publishBatch(entries: ReadonlyArray<{ topic: string; key: string; value: Buffer }>): Promise<void> {
    const byTopic = new Map<string, Array<{ key: string; value: Buffer }>>();
    for (const e of entries) {
      let list = byTopic.get(e.topic);
      if (!list) byTopic.set(e.topic, list = []);
      list.push({ key: e.key, value: e.value });
    }
    if (this.handshakeLost || this.resetting) await this.resetProducer();
    try {
      await this.producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
    } catch (err) {
      // The caller retries the batch: on a fresh producer if this one lost its handshake meanwhile.
      if (this.handshakeLost) void this.resetProducer().catch(() => undefined);
      throw err;
    }
    this.counts.published += entries.length;
  }

  health(): BusHealth {
    return { producer: this.producerState, consumer: this.consumerState, advertised: this.advertised, ...(this.problem ? { problem: this.problem } : {}) };
  }
  stats() { return { ...this.counts }; }

  async close(): Promise<void> {
    this.abort.abort();
    // A hung broker must not hold up a shutdown: disconnects get a bounded wait.
    await Promise.race([
      Promise.all([...this.consumers.map((c) => c.disconnect()), this.producer.disconnect()]).catch(() => undefined),
      new Promise((r) => setTimeout(r, 1_500).unref()),
    ]);
  }
}
