import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { hashSecret, loadCredentials, upsertCredential } from '../../registry/credentials.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { waitFor } from '../helpers/wait.js';

const status = (cp: string, seq: number) => JSON.stringify({ v: 1, type: 'status', cp_id: cp, state: 'ACTIVATED', seq, ts: Date.now() });

describe('gateway with credentials, bridged to Kafka', () => {
  let mock: KafkaMock; let gw: RunningGateway; let dir: string;
  const clients: mqtt.MqttClient[] = [];
  const metric = async (line: string) => {
    const text = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    const m = text.split('\n').find((l) => l.startsWith(line + ' '));
    return m ? Number(m.split(' ').pop()) : 0;
  };
  const connect = (id: string) => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${gw.mqttPort}`, { username: id, password: `secret-${id}`, clientId: id, reconnectPeriod: 0 });
    clients.push(c);
    return new Promise<mqtt.MqttClient>((res, rej) => { c.once('connect', () => res(c)); c.once('error', rej); });
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-'));
    const file = path.join(dir, 'credentials.json');
    for (const id of ['CP-001', 'CP-002']) upsertCredential(file, hashSecret(id, 'cp', `secret-${id}`));
    mock = await startKafkaMock(1);
    gw = await startGateway({ host: '127.0.0.1', mqttPort: 0, httpPort: 0, credentials: loadCredentials(file), bufferMax: 1000, kafka: { kafkaBootstrap: mock.bootstrap, mqttUrl: 'mqtt://unused:1', clientId: 'gw-test' } }, silentLogger);
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await gw?.close(); await mock?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a wrong secret and counts it', async () => {
    const c = mqtt.connect(`mqtt://127.0.0.1:${gw.mqttPort}`, { username: 'CP-001', password: 'wrong', reconnectPeriod: 0 });
    clients.push(c);
    await new Promise<void>((res) => c.once('error', () => res()));
    expect(await metric('gateway_auth_failed_total')).toBeGreaterThanOrEqual(1);
  });

  it('bridges status in per-CP order to Kafka, refuses ACL violations, spoofs and 1,000 malformed payloads, routes commands to the right CP only', async () => {
    const kafka = new Kafka({ brokers: mock.bootstrap, clientId: 'test-reader', logLevel: 0 });
    const consumer = kafka.consumer({ groupId: `reader-${Date.now()}` });
    const seen: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: 'cp.status', fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { seen.push(`${message.key}:${JSON.parse(message.value!.toString()).seq}`); } });

    const cp1 = await connect('CP-001');
    const cp2 = await connect('CP-002');
    const cmds1: string[] = []; const cmds2: string[] = [];
    cp1.on('message', (_t, p) => cmds1.push(JSON.parse(p.toString()).command_id));
    cp2.on('message', (_t, p) => cmds2.push(JSON.parse(p.toString()).command_id));
    await cp1.subscribeAsync('cp/CP-001/cmd', { qos: 1 });
    await cp2.subscribeAsync('cp/CP-002/cmd', { qos: 1 });

    for (let i = 1; i <= 30; i++) await cp1.publishAsync('cp/CP-001/status', status('CP-001', i), { qos: 1 });
    await waitFor(() => seen.filter((s) => s.startsWith('CP-001:')).length >= 30, { timeoutMs: 40_000, what: '30 statuses on Kafka' });
    expect(seen.filter((s) => s.startsWith('CP-001:')).slice(0, 30)).toEqual([...Array(30).keys()].map((i) => `CP-001:${i + 1}`));

    // Spoofed: CP-002 claims to be CP-001 in the payload.
    await cp2.publishAsync('cp/CP-002/status', status('CP-001', 99), { qos: 1 });
    await waitFor(async () => (await metric('gateway_rejected_total{reason="spoofed"}')) === 1, { timeoutMs: 10_000 });

    // 1,000 malformed payloads: bad JSON, wrong schema, binary, and one 100 KiB body.
    for (let i = 0; i < 333; i++) cp2.publish('cp/CP-002/telemetry', '{"broken');
    for (let i = 0; i < 333; i++) cp2.publish('cp/CP-002/telemetry', JSON.stringify({ v: 1, type: 'telemetry', cp_id: 'CP-002' }));
    for (let i = 0; i < 333; i++) cp2.publish('cp/CP-002/telemetry', Buffer.from([0xff, 0x00, 0xfe, i & 0xff]));
    await cp2.publishAsync('cp/CP-002/telemetry', Buffer.alloc(100 * 1024, 0x41), { qos: 1 }); // over the bridge's 64 KiB, under the edge's packet limit
    await waitFor(async () => (await metric('gateway_rejected_total{reason="not_json"}')) === 666
      && (await metric('gateway_rejected_total{reason="schema"}')) === 333
      && (await metric('gateway_rejected_total{reason="oversize"}')) === 1, { timeoutMs: 30_000, what: 'reject counters' });
    expect(seen.some((s) => s.startsWith('CP-002:99'))).toBe(false);

    // ACL: CP-002 publishing under CP-001 is refused and counted; the connection is dropped.
    const closed = new Promise<void>((r) => cp2.once('close', () => r()));
    cp2.publish('cp/CP-002/../CP-001/status', 'x');
    cp2.publish('cp/CP-001/status', status('CP-001', 100), { qos: 1 });
    await closed;
    expect(await metric('gateway_acl_denied_total{action="publish"}')).toBeGreaterThanOrEqual(1);
    expect(seen.some((s) => s === 'CP-001:100')).toBe(false);

    // A command produced to central.commands reaches CP-001 and no other CP.
    const producer = kafka.producer();
    await producer.connect();
    await waitFor(async () => {
      await producer.send({ topic: 'central.commands', messages: [{ key: 'CP-001', value: JSON.stringify({ v: 1, command_id: 'k-1', cp_id: 'CP-001', command: 'STOP_CP', ts: Date.now() }) }] });
      return cmds1.includes('k-1');
    }, { timeoutMs: 40_000, intervalMs: 2000, what: 'command to CP-001' });
    expect(cmds2).toEqual([]);
    await producer.disconnect();
    await consumer.disconnect();
    const health = await (await fetch(`http://127.0.0.1:${gw.httpPort}/health`)).json();
    expect(health.status).toBe('ok');
  });
});
