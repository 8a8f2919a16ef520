import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../lib/log.js';
import { encode, embeddedBusTopic, parseEmbeddedBusTopic, type BusMessage, type BusTopic } from '../protocol/index.js';
import type { Bus, BusConfig, BusHandler, BusHealth, PublishOptions, SubscribeOptions } from './types.js';
import { checkOutgoing, deliver, type Sub } from './validate.js';

/**
 * The bus over the gateway's own MQTT broker: `bus/<topic>/<key>`, QoS 1. Each subscription
 * group gets its own client with clean:false and a fixed client id, so messages published
 * while a consumer is away wait in the broker's session store until it returns.
 */
export class EmbeddedBus implements Bus {
  readonly kind = 'embedded' as const;
  private producer?: MqttClient;
  private consumers: MqttClient[] = [];
  private subs: Sub[] = [];
  private counts = { published: 0, received: 0, invalid: 0 };
  private warnedDown = false;

  constructor(private readonly config: BusConfig, private readonly log: Logger) {}

  subscribe<T extends BusTopic>(topic: T, handler: BusHandler<T>, opts: SubscribeOptions): void {
    this.subs.push({ topic, handler: handler as unknown as BusHandler<BusTopic>, opts });
  }

  private connect(name: string, clean: boolean): MqttClient {
    // With credentials the gateway binds client ids to the username: `<username>` or `<username>:<suffix>`.
    const u = this.config.username;
    const clientId = !u || name === u ? name : `${u}:${name}`;
    const c = mqtt.connect(this.config.mqttUrl, {
      clientId, clean, username: this.config.username, password: this.config.password,
      reconnectPeriod: 1000, connectTimeout: 10_000, protocolVersion: 4,
    });
    c.on('error', (err) => {
      if (!this.warnedDown) { this.warnedDown = true; this.log.warn({ url: this.config.mqttUrl, err: err.message }, 'embedded bus not reachable yet, retrying'); }
    });
    // mqtt.js waits for 'drain' once per QoS 0 write while the socket is full: a burst (central's
    // IN_PROGRESS updates while the gateway is busy) is thousands of listeners, not a leak.
    c.on('connect', () => { c.stream.setMaxListeners(0); if (this.warnedDown) this.log.info({ url: this.config.mqttUrl }, 'embedded bus connected'); this.warnedDown = false; });
    return c;
  }

  async start(): Promise<void> {
    this.producer = this.connect(`${this.config.clientId}-pub-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, true);
    const groups = new Map<string, Sub[]>();
    for (const s of this.subs) groups.set(s.opts.group, [...(groups.get(s.opts.group) ?? []), s]);
    for (const [group, subs] of groups) {
      const client = this.connect(`${group}`.slice(0, 100), false);
      this.consumers.push(client);
      const filters = subs.map((s) => embeddedBusTopic(s.topic, s.opts.key ?? '+'));
      client.on('connect', (ack) => {
        if (!ack.sessionPresent) client.subscribe(filters, { qos: 1 }, (err) => { if (err) this.log.warn({ err: err.message }, 'embedded bus subscribe failed'); });
      });
      // mqtt.js sends the PUBACK only once handleMessage calls back, and reads the next
      // message after that: handlers run one after another, and a message whose handler had
      // not finished when this process died is redelivered by the broker (at least once, as
      // on Kafka, where the offset is committed after the handler).
      client.handleMessage = (packet, done) => {
        const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
        this.dispatch(subs, packet.topic, payload).then(() => done(), () => done());
      };
    }
    await Promise.all([this.producer, ...this.consumers].map((c) => new Promise<void>((resolve) => {
      if (c.connected) resolve(); else c.once('connect', () => resolve());
    })));
  }

  private async dispatch(subs: Sub[], mqttTopic: string, payload: Buffer): Promise<void> {
    const t = parseEmbeddedBusTopic(mqttTopic);
    if (!t) return;
    await deliver(subs, t.topic, t.key, payload, this.counts, this.log);
  }

  async publish<T extends BusTopic>(topic: T, key: string, value: BusMessage<T>, opts?: PublishOptions): Promise<void> {
    checkOutgoing(topic, value);
    if (!this.producer) throw new Error('bus not started');
    await this.producer.publishAsync(embeddedBusTopic(topic, key), encode(value), { qos: opts?.droppable ? 0 : 1 });
    this.counts.published++;
  }

  health(): BusHealth {
    const st = (c?: MqttClient) => (c?.connected ? 'connected' : c && !c.disconnected ? 'connecting' : 'disconnected') as 'connected';
    return { producer: st(this.producer), consumer: this.consumers.length ? (this.consumers.every((c) => c.connected) ? 'connected' : 'connecting') : 'idle' };
  }

  stats() { return { ...this.counts }; }

  async close(): Promise<void> {
    await Promise.all([this.producer, ...this.consumers].filter(Boolean).map((c) => c!.endAsync().catch(() => undefined)));
  }
}
