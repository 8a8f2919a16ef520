import mqtt from 'mqtt';
import { ALL_BUS_TOPICS, EMBEDDED_BUS_PREFIX, type BusTopic } from '../../protocol/index.js';
import { readTopics } from './kafka-mock.js';
import { waitFor } from './wait.js';

/**
 * An independent witness of a network's bus: every record on every bus topic, in arrival
 * order, read by its own client (an MQTT subscriber on `bus/#` for the embedded bus, a
 * Kafka consumer in its own group from the beginning for Kafka). Tests compare what central
 * and drivers say with what actually travelled, e.g. a ticket against the CP's session_end.
 */

export interface BusRecord { topic: BusTopic; key: string; value: Record<string, unknown>; at: number }

export interface BusRecorder {
  readonly records: BusRecord[];
  of(topic: BusTopic, key?: string): BusRecord[];
  stop(): Promise<void>;
}

export async function recordBus(target: { kafkaBootstrap?: string[]; mqttUrl: string }): Promise<BusRecorder> {
  return target.kafkaBootstrap?.length ? recordKafka(target.kafkaBootstrap) : recordEmbedded(target.mqttUrl);
}

const parse = (raw: string): Record<string, unknown> => {
  try { return JSON.parse(raw) as Record<string, unknown>; } catch { return { raw }; }
};

const filterOf = (records: BusRecord[]) => (topic: BusTopic, key?: string) =>
  records.filter((r) => r.topic === topic && (key === undefined || r.key === key));

async function recordEmbedded(mqttUrl: string): Promise<BusRecorder> {
  const records: BusRecord[] = [];
  const client = mqtt.connect(mqttUrl, {
    clientId: `bus-recorder-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, clean: true, reconnectPeriod: 500, protocolVersion: 4,
  });
  client.on('error', () => undefined); // reconnects on its own; the subscribe wait below reports a broker that never answers
  client.on('message', (topic, payload) => {
    const parts = topic.split('/');
    if (parts.length !== 3 || parts[0] !== EMBEDDED_BUS_PREFIX) return;
    records.push({ topic: parts[1] as BusTopic, key: parts[2]!, value: parse(payload.toString()), at: Date.now() });
  });
  let subscribed = false;
  client.on('connect', () => {
    client.subscribe(`${EMBEDDED_BUS_PREFIX}/#`, { qos: 1 }, (err) => { if (!err) subscribed = true; });
  });
  await waitFor(() => subscribed, { timeoutMs: 30_000, what: `bus recorder subscribed at ${mqttUrl}` });
  return { records, of: filterOf(records), stop: () => client.endAsync(true).then(() => undefined, () => undefined) };
}

async function recordKafka(bootstrap: string[]): Promise<BusRecorder> {
  const reader = await readTopics(bootstrap, [...ALL_BUS_TOPICS]);
  // readTopics keeps its own array; mirror it with arrival times so both adapters look alike.
  const records: BusRecord[] = [];
  let seen = 0;
  const sync = () => {
    for (; seen < reader.records.length; seen++) {
      const r = reader.records[seen]!;
      records.push({ topic: r.topic as BusTopic, key: r.key, value: r.value, at: Date.now() });
    }
  };
  const timer = setInterval(sync, 20);
  return {
    get records() { sync(); return records; },
    of: (topic, key) => { sync(); return filterOf(records)(topic, key); },
    stop: async () => { clearInterval(timer); await reader.stop(); },
  };
}
