import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRpcClient, type RpcClient } from '../../lib/ocpp.js';
import { readTopics, startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Nothing acknowledged is lost: an OCPP charge point's StopTransaction is answered only once
 * Kafka has its session_end. A real gateway process bridges to librdkafka's mock cluster (kcat);
 * the cluster is frozen (SIGSTOP: a hung broker), the charge point ends its transaction, and
 * the CALLRESULT must come only after the cluster is resumed, with the record on Kafka.
 */
let mock: KafkaMock | undefined;
let gw: CliProcess | undefined;
let rpc: RpcClient | undefined;
let reader: Awaited<ReturnType<typeof readTopics>> | undefined;
let httpPort = 0;
let ocppPort = 0;

beforeAll(async () => {
  mock = await startKafkaMock(1);
  const mqttPort = await freePort(); httpPort = await freePort(); ocppPort = await freePort();
  gw = spawnCli(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort), '--ocpp-port', String(ocppPort),
    '--kafka-bootstrap', mock.bootstrap.join(','), '--ocpp-price', '0.5']);
  await gw.waitForLine(/"gateway listening"/, 30_000);
  reader = await readTopics(mock.bootstrap, ['cp.status', 'cp.telemetry']);
}, 90_000);
afterAll(async () => {
  mock?.resume();
  await rpc?.close({ force: true }).catch(() => undefined);
  await reader?.stop();
  await gw?.kill('SIGKILL');
  await mock?.stop();
}, 30_000);

const received = async (channel: string) => {
  const m = new RegExp(`^gateway_mqtt_received_total\\{channel="${channel}"\\} (\\d+)`, 'm').exec(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
  return m ? Number(m[1]) : 0;
};

describe('OCPP at a gateway bridging to Kafka', () => {
  it('answers StopTransaction only once the session_end is durable (in the gateway\'s spool on disk while Kafka hangs), and delivers it when Kafka is back', async () => {
    const cp = 'CP-KDUR';
    rpc = newRpcClient({ endpoint: `ws://127.0.0.1:${ocppPort}/ocpp`, identity: cp, protocols: ['ocpp1.6'], strictMode: true, reconnect: false });
    await rpc.connect();
    expect((await rpc.call('BootNotification', { chargePointVendor: 'V', chargePointModel: 'M' }) as { status: string }).status).toBe('Accepted');
    await rpc.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' });
    // A locally started transaction (dev mode accepts local id tags).
    expect((await rpc.call('Authorize', { idTag: 'LOCAL-1' }) as { idTagInfo: { status: string } }).idTagInfo.status).toBe('Accepted');
    const start = await rpc.call('StartTransaction', { connectorId: 1, idTag: 'LOCAL-1', meterStart: 1000, timestamp: new Date().toISOString() }) as { transactionId: number };
    await waitFor(() => reader!.of('cp.status', cp).some((r) => r.value.type === 'status' && r.value.state === 'SUPPLYING'), { timeoutMs: 20_000, what: 'SUPPLYING on Kafka' });

    mock!.pause();
    // Something in flight makes the gateway notice the hung broker.
    await rpc.call('MeterValues', { connectorId: 1, transactionId: start.transactionId, meterValue: [{ timestamp: new Date().toISOString(), sampledValue: [{ value: '1500' }] }] });
    await gw!.waitForLine(/kafka unavailable, buffering/, 20_000);

    let answeredAt: number | undefined;
    const stop = rpc.call('StopTransaction', { transactionId: start.transactionId, meterStop: 2234, timestamp: new Date().toISOString(), reason: 'Local' }, { callTimeoutMs: 60_000 })
      .then((r) => { answeredAt = Date.now(); return r; });
    await waitFor(async () => (await received('session')) === 1, { timeoutMs: 10_000, what: 'the gateway took the session_end in' });
    // Answered while Kafka still hangs, because the gateway's spool holds it (fsynced) — not before.
    expect(await stop).toMatchObject({ idTagInfo: { status: 'Accepted' } });
    const health = await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json() as { spooled: number };
    expect(health.spooled).toBeGreaterThanOrEqual(1); // the session_end, and the status that follows it
    expect(reader!.of('cp.status', cp).some((r) => r.value.type === 'session_end')).toBe(false);
    expect(answeredAt).toBeDefined();
    mock!.resume();
    await waitFor(() => reader!.of('cp.status', cp).some((r) => r.value.type === 'session_end'), { timeoutMs: 20_000, what: 'session_end on Kafka' });
    const end = reader!.of('cp.status', cp).find((r) => r.value.type === 'session_end')!.value;
    expect(end).toMatchObject({ cp_id: cp, kwh: 1.234, eur: 0.617, price_eur_kwh: 0.5, reason: 'driver_stop' });
  }, 90_000);
});
