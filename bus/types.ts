import type { BusMessage, BusTopic } from '../protocol/index.js';

/**
 * The bus port central and drivers use. Two adapters implement it: `kafka` (kafkajs) and
 * `embedded` (the gateway's own aedes broker, topics `bus/<topic>/<key>`). Both pass the
 * contract suite in test/integration/bus-contract.test.ts.
 *
 * - Messages are validated against protocol/BUS_SCHEMAS on publish and on receipt; an
 *   invalid received message is logged once, counted in `stats().invalid`, and skipped.
 * - Per-key order is kept. Delivery is at-least-once: handlers must be idempotent.
 * - `subscribe` is called before `start`. `start` waits for the broker with backoff.
 */
export interface BusHandlerMeta { topic: BusTopic; key: string }
export type BusHandler<T extends BusTopic> = (value: BusMessage<T>, meta: BusHandlerMeta) => void | Promise<void>;

export interface SubscribeOptions {
  /** Consumer group (kafka) / persistent session name (embedded). Same group = shared work. */
  group: string;
  /** Only messages with this key (e.g. one driver's updates). */
  key?: string;
  /** kafka: a group with no committed offset starts at the earliest message (default: the latest). Embedded: no effect. */
  fromBeginning?: boolean;
  /**
   * kafka: one process alone consumes this group, and its restart must not wait for its killed
   * predecessor's session to time out (kafkajs has no static membership). Each start joins a fresh
   * generation `<group>.<n>` and resumes at the offsets the previous generation committed, so
   * nothing committed is skipped and what was not committed is delivered again. Embedded: no effect.
   */
  perInstance?: boolean;
}

export interface BusHealth {
  producer: 'connected' | 'connecting' | 'disconnected';
  consumer: 'connected' | 'connecting' | 'disconnected' | 'idle';
  /** kafka: are the brokers Kafka advertises reachable from here (bus/kafka-probe.ts)? */
  advertised?: 'ok' | 'unreachable' | 'unknown';
  /** kafka: the one-line reason when they are not. */
  problem?: string;
}

/** The bus carries messages both ways: what /health reports as up (503 otherwise). */
export function busUp(h: BusHealth): boolean {
  return h.producer === 'connected' && (h.consumer === 'connected' || h.consumer === 'idle') && h.advertised !== 'unreachable';
}

export interface PublishOptions { droppable?: boolean }

export interface Bus {
  readonly kind: 'kafka' | 'embedded';
  subscribe<T extends BusTopic>(topic: T, handler: BusHandler<T>, opts: SubscribeOptions): void;
  start(): Promise<void>;
  /**
   * `droppable`: superseded by the next of its kind (a driver's IN_PROGRESS). The embedded bus
   * sends it at QoS 0 (no PUBACK and no inflight record either side, not queued for a consumer
   * that is away); Kafka sends it as any other.
   */
  publish<T extends BusTopic>(topic: T, key: string, value: BusMessage<T>, opts?: PublishOptions): Promise<void>;
  health(): BusHealth;
  stats(): { published: number; received: number; invalid: number };
  close(): Promise<void>;
}

/** How a process reaches the bus: Kafka when a bootstrap list is given, else the gateway's embedded broker. */
export interface BusConfig {
  kafkaBootstrap?: string[];
  kafka?: {
    clientId?: string;
    ssl?: boolean;
    sslCaFile?: string;
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  };
  /** Embedded bus: the gateway's MQTT URL and the service credentials it accepts. */
  mqttUrl: string;
  username?: string;
  password?: string;
  clientId: string;
}
