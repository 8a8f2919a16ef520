import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { silentLogger } from '../../lib/log.js';
import { createBus } from '../../bus/create.js';
import type { Bus, BusConfig } from '../../bus/types.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { waitFor } from '../helpers/wait.js';
import type { BusMessage } from '../../protocol/index.js';

const uid = () => Math.random().toString(36).slice(2, 8);
const cmd = (cpId: string, n: number): BusMessage<'central.commands'> => ({ v: 1, command_id: `c-${n}`, cp_id: cpId, command: 'STOP_SUPPLY', ts: Date.now() });

/** One contract, two adapters: both must deliver in per-key order, filter by key, and share work in a group. */
function contract(name: string, setup: () => Promise<{ config: (id: string) => BusConfig; teardown: () => Promise<void> }>) {
  describe(`bus contract: ${name}`, () => {
    let env: Awaited<ReturnType<typeof setup>>;
    const buses: Bus[] = [];
    beforeAll(async () => { env = await setup(); });
    afterAll(async () => { for (const b of buses) await b.close(); await env.teardown(); });

    it('delivers published messages in per-key order and honours the key filter', async () => {
      const cpA = `CP-A${uid()}`; const cpB = `CP-B${uid()}`;
      const all: string[] = []; const onlyB: string[] = [];
      const consumer = createBus(env.config(`c-${uid()}`), silentLogger);
      const filtered = createBus(env.config(`f-${uid()}`), silentLogger);
      const producer = createBus(env.config(`p-${uid()}`), silentLogger);
      buses.push(consumer, filtered, producer);
      consumer.subscribe('central.commands', (m, meta) => { expect(meta.key).toBe(m.cp_id); all.push(`${meta.key}:${m.command_id}`); }, { group: `g-${uid()}` });
      filtered.subscribe('central.commands', (m) => { onlyB.push(m.command_id); }, { group: `gf-${uid()}`, key: cpB });
      await Promise.all([consumer.start(), filtered.start(), producer.start()]);
      // Kafka consumers join their group asynchronously; probe until a marker arrives.
      await waitFor(async () => { await producer.publish('central.commands', cpB, cmd(cpB, -1)); return onlyB.includes('c--1') && all.includes(`${cpB}:c--1`); }, { timeoutMs: 40_000, intervalMs: 1000, what: 'consumers ready' });
      all.length = 0; onlyB.length = 0;
      for (let i = 0; i < 50; i++) { await producer.publish('central.commands', cpA, cmd(cpA, i)); await producer.publish('central.commands', cpB, cmd(cpB, i)); }
      await waitFor(() => all.filter((x) => !x.endsWith('c--1')).length >= 100 && onlyB.filter((x) => x !== 'c--1').length >= 50, { timeoutMs: 30_000, what: '100 messages' });
      const seqA = all.filter((x) => x.startsWith(cpA)).map((x) => Number(x.split(':c-')[1]));
      expect(seqA).toEqual([...Array(50).keys()]);
      expect(onlyB.filter((x) => x !== 'c--1').map((x) => Number(x.slice(2)))).toEqual([...Array(50).keys()]);
      expect(producer.stats().published).toBeGreaterThanOrEqual(100);
      expect(consumer.health().producer).toBe('connected');
    });

    it('takes a burst of publishes at once (central starting thousands of sessions) without a warning, and delivers them all', async () => {
      const cp = `CP-C${uid()}`;
      const got: string[] = [];
      const consumer = createBus(env.config(`c-${uid()}`), silentLogger);
      const producer = createBus(env.config(`p-${uid()}`), silentLogger);
      buses.push(consumer, producer);
      consumer.subscribe('central.commands', (m) => { got.push(m.command_id); }, { group: `gb-${uid()}`, key: cp });
      await Promise.all([consumer.start(), producer.start()]);
      await waitFor(async () => { await producer.publish('central.commands', cp, cmd(cp, -1)); return got.includes('c--1'); }, { timeoutMs: 40_000, intervalMs: 1000, what: 'consumer ready' });
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
      process.on('warning', onWarning);
      try {
        // Droppable ones too (QoS 0 on the embedded bus: mqtt.js waits for 'drain' per write once the socket is full).
        await Promise.all(Array.from({ length: 3000 }, (_, i) => producer.publish('central.commands', cp, cmd(cp, i), { droppable: i % 2 === 0 })));
        await waitFor(() => got.length >= 3001, { timeoutMs: 60_000, what: () => `3,000 messages (${got.length - 1})` });
        await new Promise((r) => setImmediate(r)); // a warning is emitted on the next tick
      } finally { process.off('warning', onWarning); }
      expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
      // Nothing is lost on a healthy loopback, QoS 0 included.
      expect(new Set(got).size).toBe(3001);
    }, 120_000);

    it('refuses to publish an invalid message', async () => {
      const producer = createBus(env.config(`p-${uid()}`), silentLogger);
      buses.push(producer);
      await producer.start();
      await expect(producer.publish('central.commands', 'CP-1', { v: 1 } as never)).rejects.toThrow(/invalid central.commands/);
    });
  });
}

contract('embedded', async () => {
  const gw: RunningGateway = await startGateway({ host: '127.0.0.1', mqttPort: 0, httpPort: 0, credentials: null, bufferMax: 1000 }, silentLogger);
  return { config: (id) => ({ mqttUrl: `mqtt://127.0.0.1:${gw.mqttPort}`, clientId: id }), teardown: () => gw.close() };
});

contract('kafka (librdkafka mock cluster)', async () => {
  const mock: KafkaMock = await startKafkaMock(1);
  return { config: (id) => ({ kafkaBootstrap: mock.bootstrap, mqttUrl: 'mqtt://unused:1', clientId: id }), teardown: () => mock.stop() };
});

describe('embedded bus: droppable messages', () => {
  it('go at QoS 0 (no PUBACK, not queued for a consumer away), the others at QoS 1', async () => {
    const gw = await startGateway({ host: '127.0.0.1', mqttPort: 0, httpPort: 0, credentials: null, bufferMax: 1000 }, silentLogger);
    const url = `mqtt://127.0.0.1:${gw.mqttPort}`;
    const watcher = await mqtt.connectAsync(url, { clientId: `w-${uid()}` });
    const seen: Array<[string, number]> = [];
    watcher.on('message', (_t, payload, packet) => { seen.push([(JSON.parse(payload.toString()) as { status: string }).status, packet.qos]); });
    await watcher.subscribeAsync('bus/driver.updates/+', { qos: 1 });
    const bus = createBus({ mqttUrl: url, clientId: `p-${uid()}` }, silentLogger);
    try {
      await bus.start();
      const update = (status: 'IN_PROGRESS' | 'ACCEPTED'): BusMessage<'driver.updates'> => ({ v: 1, driver_id: 'driver-q', status, ts: Date.now() });
      await bus.publish('driver.updates', 'driver-q', update('IN_PROGRESS'), { droppable: true });
      await bus.publish('driver.updates', 'driver-q', update('ACCEPTED'));
      await waitFor(() => seen.length >= 2, { timeoutMs: 10_000, what: 'both updates' });
      expect(seen).toEqual([['IN_PROGRESS', 0], ['ACCEPTED', 1]]);
    } finally {
      await bus.close(); await watcher.endAsync(); await gw.close();
    }
  });
});
