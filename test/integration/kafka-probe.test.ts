/**
 * The advertised-broker probe (bus/kafka-probe.ts) against a real Kafka-protocol peer, librdkafka's
 * mock cluster. The "advertised address unreachable" case needs a second host, so it runs in the
 * three-host lab test (test/deploy/lab.deploy.ts); here: the broker list it reads is the one Kafka
 * advertises, and a bootstrap server that is not Kafka is a clear bootstrap failure.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeAdvertised, advertisedProblem } from '../../bus/kafka-probe.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';

let mock: KafkaMock;
beforeAll(async () => { mock = await startKafkaMock(3); });
afterAll(async () => { await mock?.stop(); });

describe('kafka advertised-broker probe', () => {
  it('reads the brokers the cluster advertises and finds them reachable', async () => {
    const r = await probeAdvertised(mock.bootstrap);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.brokers.map((b) => `${b.host}:${b.port}`).sort()).toEqual([...mock.bootstrap].sort());
  });

  it('a bootstrap address that is not Kafka is a bootstrap failure naming it', async () => {
    const server = net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const r = await probeAdvertised([`127.0.0.1:${port}`], { timeoutMs: 2000 });
    server.close();
    expect(r).toMatchObject({ ok: false, stage: 'bootstrap' });
    if (!r.ok && r.stage === 'bootstrap') expect(r.reason).toContain(`127.0.0.1:${port}`);
  });

  it('the operator line names the advertised address, the reason and the setting', () => {
    const line = advertisedProblem({ ok: false, stage: 'advertised', bootstrap: '10.0.0.1:9092', brokers: [{ nodeId: 1, host: 'localhost', port: 9092 }], unreachable: [{ address: 'localhost:9092', reason: 'ECONNREFUSED' }] });
    expect(line).toBe('Kafka at 10.0.0.1:9092 advertises localhost:9092 (ECONNREFUSED), which this machine cannot reach: set KAFKA_ADVERTISED_HOST on the Kafka machine to an address clients reach (KAFKA_ADVERTISED_LISTENERS)');
  });
});
