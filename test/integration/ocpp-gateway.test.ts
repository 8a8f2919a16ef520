import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRpcClient, onCall, type RpcClient } from '../../lib/ocpp.js';
import { Ticket } from '../../protocol/index.js';
import { OcppNetwork, type Json } from '../helpers/ocpp-network.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Real charge points' view of the gateway: an independent OCPP-J client (ocpp-rpc in strict
 * mode, so every call and answer is checked against the official 1.6 / 2.0.1 JSON schemas)
 * plays a charge point against a real `evcharging gateway` process with credentials and an
 * OCPP port, with a real `evcharging central`. A driver request on the bus makes central start
 * a session; the gateway turns it into a remote start; the charge point meters; the driver's
 * stop ends it; the ticket must bill exactly the charge point's own meter readings.
 */

const PRICE = 0.4;
let net: OcppNetwork | undefined;
const clients: RpcClient[] = [];

beforeAll(async () => {
  net = await OcppNetwork.start({ cps: { 'CP-OC16': 'secret-16', 'CP-OC201': 'secret-201', 'CP-FWOC': 'secret-fw' }, drivers: ['driver-oc16', 'driver-oc201', 'driver-fw'], price: PRICE });
}, 120_000);
let firmware: CliProcess | undefined;
afterAll(async () => {
  await firmware?.kill('SIGKILL');
  for (const c of clients) await c.close({ force: true }).catch(() => undefined);
  await net?.stop();
}, 60_000);

function client(identity: string, protocol: 'ocpp1.6' | 'ocpp2.0.1', password?: string, extra: Record<string, unknown> = {}): RpcClient {
  const c = newRpcClient({ endpoint: net!.ocppUrl, identity, protocols: [protocol], strictMode: true, reconnect: false, ...(password ? { password } : {}), ...extra });
  clients.push(c);
  return c;
}

/** What the scripted charge point saw of its own transaction. */
interface Meter { startWh: number; stopWh?: number; transactionId?: string | number; strictFailures: number; stopAnswered?: boolean; remoteStartIdTag?: string }

/** A 1.6J charge point: answers RemoteStart by authorizing and starting, meters 37 Wh every 150 ms, answers RemoteStop by stopping. */
async function chargePoint16(id: string, secret: string): Promise<{ rpc: RpcClient; meter: Meter }> {
  const rpc = client(id, 'ocpp1.6', secret);
  const meter: Meter = { startWh: 12_345, strictFailures: 0 };
  rpc.on('strictValidationFailure', () => { meter.strictFailures++; });
  let wh = meter.startWh;
  let timer: NodeJS.Timeout | undefined;
  onCall(rpc, 'RemoteStartTransaction', (params: { idTag: string }) => {
    const idTag = params.idTag;
    meter.remoteStartIdTag = idTag;
    setImmediate(async () => {
      const auth = await rpc.call('Authorize', { idTag }) as { idTagInfo: { status: string } };
      if (auth.idTagInfo.status !== 'Accepted') return;
      await rpc.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Preparing' });
      const started = await rpc.call('StartTransaction', { connectorId: 1, idTag, meterStart: meter.startWh, timestamp: new Date().toISOString() }) as { transactionId: number; idTagInfo: { status: string } };
      meter.transactionId = started.transactionId;
      await rpc.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Charging' });
      timer = setInterval(() => {
        wh += 37;
        void rpc.call('MeterValues', { connectorId: 1, transactionId: started.transactionId, meterValue: [{ timestamp: new Date().toISOString(), sampledValue: [
          { value: String(wh), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }, { value: '7400', measurand: 'Power.Active.Import', unit: 'W' },
        ] }] }).catch(() => undefined);
      }, 150);
    });
    return { status: 'Accepted' };
  });
  onCall(rpc, 'RemoteStopTransaction', (params: Json) => {
    if (params.transactionId !== meter.transactionId) return { status: 'Rejected' };
    setImmediate(async () => {
      clearInterval(timer);
      meter.stopWh = wh;
      await rpc.call('StopTransaction', { transactionId: meter.transactionId, meterStop: wh, timestamp: new Date().toISOString(), reason: 'Remote', idTag: meter.remoteStartIdTag });
      meter.stopAnswered = true;
      await rpc.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' });
    });
    return { status: 'Accepted' };
  });
  await rpc.connect();
  const boot = await rpc.call('BootNotification', { chargePointVendor: 'TestVendor', chargePointModel: 'Strict16' }) as { status: string; interval: number };
  expect(boot.status).toBe('Accepted');
  expect(boot.interval).toBeGreaterThan(0);
  await rpc.call('StatusNotification', { connectorId: 1, errorCode: 'NoError', status: 'Available' });
  await rpc.call('Heartbeat', {});
  return { rpc, meter };
}

/** A 2.0.1 charging station: RequestStart → Authorize, TransactionEvent Started/Updated; RequestStop → Ended. */
async function chargePoint201(id: string, secret: string): Promise<{ rpc: RpcClient; meter: Meter }> {
  const rpc = client(id, 'ocpp2.0.1', secret);
  const meter: Meter = { startWh: 50_000, strictFailures: 0 };
  rpc.on('strictValidationFailure', () => { meter.strictFailures++; });
  let wh = meter.startWh;
  let seqNo = 0;
  let timer: NodeJS.Timeout | undefined;
  const mv = (context: string) => [{ timestamp: new Date().toISOString(), sampledValue: [
    { value: wh, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh' }, context }, { value: 11, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'kW' }, context },
  ] }];
  onCall(rpc, 'RequestStartTransaction', (p: { idToken: { idToken: string; type: string }; remoteStartId: number }) => {
    meter.remoteStartIdTag = p.idToken.idToken;
    const txId = `tx-${Date.now()}`;
    setImmediate(async () => {
      const auth = await rpc.call('Authorize', { idToken: p.idToken }) as { idTokenInfo: { status: string } };
      if (auth.idTokenInfo.status !== 'Accepted') return;
      await rpc.call('StatusNotification', { timestamp: new Date().toISOString(), connectorStatus: 'Occupied', evseId: 1, connectorId: 1 });
      meter.transactionId = txId;
      await rpc.call('TransactionEvent', { eventType: 'Started', timestamp: new Date().toISOString(), triggerReason: 'RemoteStart', seqNo: seqNo++,
        transactionInfo: { transactionId: txId, chargingState: 'Charging', remoteStartId: p.remoteStartId }, idToken: p.idToken, evse: { id: 1, connectorId: 1 }, meterValue: mv('Transaction.Begin') });
      timer = setInterval(() => {
        wh += 61;
        void rpc.call('TransactionEvent', { eventType: 'Updated', timestamp: new Date().toISOString(), triggerReason: 'MeterValuePeriodic', seqNo: seqNo++,
          transactionInfo: { transactionId: txId }, meterValue: mv('Sample.Periodic') }).catch(() => undefined);
      }, 150);
    });
    return { status: 'Accepted', transactionId: txId };
  });
  onCall(rpc, 'RequestStopTransaction', (params: Json) => {
    if (params.transactionId !== meter.transactionId) return { status: 'Rejected' };
    setImmediate(async () => {
      clearInterval(timer);
      meter.stopWh = wh;
      await rpc.call('TransactionEvent', { eventType: 'Ended', timestamp: new Date().toISOString(), triggerReason: 'RemoteStop', seqNo: seqNo++,
        transactionInfo: { transactionId: meter.transactionId, stoppedReason: 'Remote' }, meterValue: mv('Transaction.End') });
      meter.stopAnswered = true;
      await rpc.call('StatusNotification', { timestamp: new Date().toISOString(), connectorStatus: 'Available', evseId: 1, connectorId: 1 });
    });
    return { status: 'Accepted' };
  });
  await rpc.connect();
  const boot = await rpc.call('BootNotification', { reason: 'PowerUp', chargingStation: { model: 'Strict201', vendorName: 'TestVendor' } }) as { status: string };
  expect(boot.status).toBe('Accepted');
  await rpc.call('StatusNotification', { timestamp: new Date().toISOString(), connectorStatus: 'Available', evseId: 1, connectorId: 1 });
  await rpc.call('Heartbeat', {});
  return { rpc, meter };
}

async function chargeAndStop(cpId: string, driverId: string, meter: Meter): Promise<void> {
  const n = net!;
  await waitFor(async () => (await n.cp(cpId))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: `central lists ${cpId} ACTIVATED` });
  expect(Number((await n.cp(cpId))!.price_eur_kwh)).toBe(PRICE);

  const req = await n.request(driverId, 'REQUEST', cpId);
  const accepted = await n.update(driverId, (u) => u.request_id === req && u.status === 'ACCEPTED', 'ACCEPTED');
  const sessionId = String(accepted.session_id);
  // The remote start carried the driver's id tag, the charge point was authorized and started.
  await waitFor(() => meter.transactionId !== undefined, { timeoutMs: 20_000, what: 'transaction started at the charge point' });
  expect(meter.remoteStartIdTag).toBe(driverId);
  await waitFor(() => n.of('cp.status', cpId).some((m) => m.type === 'status' && m.state === 'SUPPLYING' && m.session_id === sessionId), { timeoutMs: 10_000, what: 'SUPPLYING on the bus' });
  await waitFor(() => n.of('cp.status', cpId).some((m) => m.type === 'ack' && m.command === 'START_SUPPLY' && m.ok === true), { timeoutMs: 10_000, what: 'START_SUPPLY acknowledged' });
  await n.update(driverId, (u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId && Number(u.kwh) > 0, 'IN_PROGRESS with energy');

  await n.request(driverId, 'STOP');
  const final = await n.update(driverId, (u) => u.status === 'COMPLETED' && u.session_id === sessionId, 'COMPLETED');
  await waitFor(() => meter.stopAnswered, { timeoutMs: 10_000, what: 'stop answered' });
  const t = final.ticket as Ticket;
  expect(Ticket.safeParse(t).success).toBe(true);
  const metered = (meter.stopWh! - meter.startWh) / 1000;
  expect(metered).toBeGreaterThan(0);
  // The ticket is the charge point's own meter: stop register − start register, at the announced price.
  expect(t).toMatchObject({ session_id: sessionId, cp_id: cpId, driver_id: driverId, reason: 'driver_stop', interrupted: false, price_eur_kwh: PRICE });
  expect(t.kwh).toBeCloseTo(metered, 6);
  expect(t.eur).toBe(Math.round(metered * PRICE * 100) / 100);
  const end = n.of('cp.status', cpId).find((m) => m.type === 'session_end' && m.session_id === sessionId)!;
  expect(end).toMatchObject({ kwh: metered, reason: 'driver_stop', driver_id: driverId });
  expect(meter.strictFailures).toBe(0);
  await waitFor(async () => (await n.cp(cpId))?.state === 'ACTIVATED', { timeoutMs: 10_000, what: `${cpId} free again` });
}

describe('gateway OCPP endpoint', () => {
  it('1.6J: boots, is authorized, charges, is stopped by the driver through central; the ticket is its own meter', async () => {
    const { meter } = await chargePoint16('CP-OC16', 'secret-16');
    await chargeAndStop('CP-OC16', 'driver-oc16', meter);
    expect(net!.of('cp.status', 'CP-OC16').find((m) => m.type === 'announce')).toMatchObject({ profile: { hal: 'ocpp', name: 'TestVendor Strict16' } });
  }, 90_000);

  it('2.0.1: the same with RequestStart/RequestStop and TransactionEvent', async () => {
    const { meter } = await chargePoint201('CP-OC201', 'secret-201');
    await chargeAndStop('CP-OC201', 'driver-oc201', meter);
  }, 90_000);

  it('a wrong password is refused, and so is a charge point speaking for another id', async () => {
    const n = net!;
    await expect(client('CP-OC16', 'ocpp1.6', 'not-the-secret').connect()).rejects.toThrow(/Unauthorized|401/);
    // CP-OC16's own secret does not open CP-OC201's identity.
    await expect(client('CP-OC201', 'ocpp2.0.1', 'secret-16').connect()).rejects.toThrow(/Unauthorized|401/);
    // Nor does a Basic auth user other than the URL's identity.
    const basic = `Basic ${Buffer.from('CP-OC16:secret-16').toString('base64')}`;
    await expect(client('CP-OC201', 'ocpp2.0.1', undefined, { headers: { authorization: basic } }).connect()).rejects.toThrow(/Unauthorized|401/);
    await expect(client('CP-NOBODY', 'ocpp1.6').connect()).rejects.toThrow(/Unauthorized|401/);
    expect(await n.metrics()).toMatch(/gateway_ocpp_refused_total\{reason="auth"\} 4/);
    // Every bus message of an OCPP charge point is keyed by, and names, its own id.
    for (const r of n.records.filter((x) => x.topic === 'cp.status' || x.topic === 'cp.telemetry')) {
      if (r.value.type === 'gateway') continue;
      expect(r.value.cp_id).toBe(r.key);
    }
    expect(n.records.filter((r) => r.key === 'CP-NOBODY')).toHaveLength(0);
  }, 30_000);

  it('a charge point that goes away is DISCONNECTED at central', async () => {
    const n = net!;
    for (const c of clients.splice(0)) await c.close({ force: true }).catch(() => undefined);
    await waitFor(async () => (await n.cp('CP-OC16'))?.state === 'DISCONNECTED', { timeoutMs: 10_000, what: 'CP-OC16 DISCONNECTED' });
    expect(n.of('cp.status', 'CP-OC16').at(-1)).toMatchObject({ type: 'status', state: 'DISCONNECTED', source: 'gateway' });
  }, 30_000);

  it("the project's own firmware over OCPP: central starts, stops and bills it, and an admin stop is a ChangeAvailability", async () => {
    const n = net!;
    firmware = spawnCli(['cp', '--id', 'CP-FWOC', '--ocpp', n.ocppUrl, '--ocpp-version', '2.0.1', '--secret', 'secret-fw', '--health-port', String(await freePort()),
      '--health-host', '127.0.0.1', '--speed', '60', '--meter-interval-s', '1']);
    await waitFor(async () => (await n.cp('CP-FWOC'))?.state === 'ACTIVATED', { timeoutMs: 30_000, what: `CP-FWOC ACTIVATED\n${firmware.lines.slice(-5).join('\n')}` });
    const req = await n.request('driver-fw', 'REQUEST', 'CP-FWOC');
    const sessionId = String((await n.update('driver-fw', (u) => u.request_id === req && u.status === 'ACCEPTED', 'ACCEPTED')).session_id);
    await n.update('driver-fw', (u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId && Number(u.kwh) > 0, `IN_PROGRESS\n${firmware.lines.slice(-8).join('\n')}`, 60_000);
    await n.request('driver-fw', 'STOP');
    const t = (await n.update('driver-fw', (u) => u.status === 'COMPLETED' && u.session_id === sessionId, 'COMPLETED')).ticket as Ticket;
    // The firmware's own registers, as it logged them, are the ticket.
    const started = await firmware.waitForLine(/"transaction started"/);
    const ended = await firmware.waitForLine(/"transaction ended"/);
    const metered = (Number(JSON.parse(ended).meter_stop_wh) - Number(JSON.parse(started).meter_start_wh)) / 1000;
    expect(metered).toBeGreaterThan(0);
    expect(t).toMatchObject({ session_id: sessionId, cp_id: 'CP-FWOC', driver_id: 'driver-fw', reason: 'driver_stop', interrupted: false, price_eur_kwh: PRICE });
    expect(t.kwh).toBeCloseTo(metered, 6);
    expect(t.eur).toBe(Math.round(metered * PRICE * 100) / 100);
    // An admin stop reaches the firmware as ChangeAvailability Inoperative, a resume as Operative.
    const admin = (action: string) => fetch(`${n.centralUrl}/cp/CP-FWOC/${action}`, { method: 'POST', headers: { authorization: 'Bearer ocpp-test-token' } });
    expect((await admin('stop')).status).toBe(200);
    await waitFor(async () => (await n.cp('CP-FWOC'))?.state === 'STOPPED', { timeoutMs: 15_000, what: 'CP-FWOC STOPPED' });
    await firmware.waitForLine(/ACTIVATED \+ STOP_CP -> STOPPED/);
    expect((await admin('resume')).status).toBe(200);
    await waitFor(async () => (await n.cp('CP-FWOC'))?.state === 'ACTIVATED', { timeoutMs: 15_000, what: 'CP-FWOC ACTIVATED again' });
    expect(n.of('cp.status', 'CP-FWOC').filter((m) => m.type === 'ack' && (m.command === 'STOP_CP' || m.command === 'RESUME_CP')).map((m) => m.ok)).toEqual([true, true]);
  }, 90_000);
});
