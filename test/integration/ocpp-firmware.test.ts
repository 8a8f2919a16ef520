import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ocppRpc, onCall, onOtherCalls, type RpcClient, type RpcServer } from '../../lib/ocpp.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The firmware as an OCPP charge point (`evcharging cp --ocpp`, a real process on the sim HAL)
 * against an independent central system: ocpp-rpc's RPCServer in strict mode, so every call
 * and answer of the firmware is checked against the official 1.6 / 2.0.1 JSON schemas. The
 * test plays the CSMS: boot, status, a remote start, meter values, a charging profile that
 * must lower the measured power, a remote stop, then a transaction that ends while the CSMS is
 * away and whose end must arrive, queued, once it is back.
 */

type Json = Record<string, any>;
interface Seen { method: string; params: Json; at: number }

class Csms {
  readonly seen: Seen[] = [];
  client?: RpcClient;
  strictFailures = 0;
  private server?: RpcServer;
  txIds = 100;
  constructor(readonly port: number, readonly protocol: 'ocpp1.6' | 'ocpp2.0.1') {}

  async listen(): Promise<void> {
    const s = new ocppRpc.RPCServer({ protocols: [this.protocol], strictMode: true });
    s.on('client', (c: RpcClient) => {
      this.client = c;
      c.on('strictValidationFailure', () => { this.strictFailures++; });
      const record = (method: string, answer: (p: Json) => unknown) => onCall(c, method, (p: Json) => { this.seen.push({ method, params: p, at: Date.now() }); return answer(p); });
      record('BootNotification', () => ({ status: 'Accepted', interval: 30, currentTime: new Date().toISOString() }));
      record('Heartbeat', () => ({ currentTime: new Date().toISOString() }));
      record('StatusNotification', () => ({}));
      record('Authorize', () => (this.protocol === 'ocpp1.6' ? { idTagInfo: { status: 'Accepted' } } : { idTokenInfo: { status: 'Accepted' } }));
      record('StartTransaction', () => ({ transactionId: ++this.txIds, idTagInfo: { status: 'Accepted' } }));
      record('MeterValues', () => ({}));
      record('StopTransaction', () => ({ idTagInfo: { status: 'Accepted' } }));
      record('TransactionEvent', () => ({}));
      onOtherCalls(c);
    });
    await s.listen(this.port, '127.0.0.1');
    this.server = s;
  }

  async close(): Promise<void> { await this.server?.close({ force: true }); this.server = undefined; }

  of(method: string): Seen[] { return this.seen.filter((x) => x.method === method); }
  async call(method: string, params: Json): Promise<Json> { return (await this.client!.call(method, params)) as Json; }

  /** Power (kW) of the transaction's meter samples after `since`. */
  powers(since: number): number[] {
    return this.seen.filter((x) => x.at > since && (x.method === 'MeterValues' || (x.method === 'TransactionEvent' && x.params.eventType === 'Updated')))
      .flatMap((x) => (x.params.meterValue as Json[]).flatMap((mv) => (mv.sampledValue as Json[]).filter((sv) => sv.measurand === 'Power.Active.Import').map((sv) => Number(sv.value) / 1000)));
  }
}

function health(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`${line}\n`));
    s.setEncoding('utf8');
    s.once('data', (d: string) => { s.destroy(); resolve(d.trim()); });
    s.once('error', reject);
  });
}

let cp: CliProcess | undefined;
let csms: Csms | undefined;
afterEach(async () => { await cp?.kill('SIGKILL'); await csms?.close().catch(() => undefined); cp = undefined; csms = undefined; });

async function run(version: '1.6' | '2.0.1') {
  const v16 = version === '1.6';
  const port = await freePort();
  const healthPort = await freePort();
  const c = new Csms(port, v16 ? 'ocpp1.6' : 'ocpp2.0.1');
  csms = c;
  await c.listen();
  const id = v16 ? 'CP-FW16' : 'CP-FW201';
  cp = spawnCli(['cp', '--id', id, '--ocpp', `ws://127.0.0.1:${port}/ocpp`, '--ocpp-version', version, '--health-port', String(healthPort), '--health-host', '127.0.0.1',
    '--profile', 'ac-22kw', '--speed', '30', '--meter-interval-s', '1']);

  // Boot and status.
  await waitFor(() => c.of('BootNotification').length === 1 && c.of('StatusNotification').length >= 1, { timeoutMs: 30_000, what: `boot and status\n${cp.lines.slice(-5).join('\n')}` });
  const boot = c.of('BootNotification')[0]!.params;
  expect(v16 ? boot.chargePointModel : boot.chargingStation.model).toBe('ac-22kw');
  expect(c.of('StatusNotification').at(-1)!.params).toMatchObject(v16 ? { connectorId: 1, status: 'Available', errorCode: 'NoError' } : { evseId: 1, connectorStatus: 'Available' });

  // A remote start: the transaction begins with the meter register.
  const started = v16
    ? await c.call('RemoteStartTransaction', { connectorId: 1, idTag: 'TAG-1' })
    : await c.call('RequestStartTransaction', { idToken: { idToken: 'TAG-1', type: 'ISO14443' }, remoteStartId: 4711, evseId: 1 });
  expect(started.status).toBe('Accepted');
  const startOf = () => (v16 ? c.of('StartTransaction') : c.of('TransactionEvent').filter((x) => x.params.eventType === 'Started'));
  await waitFor(() => startOf().length === 1, { timeoutMs: 10_000, what: 'transaction start' });
  const start = startOf()[0]!.params;
  let transactionId: number | string;
  if (v16) { expect(start).toMatchObject({ connectorId: 1, idTag: 'TAG-1' }); transactionId = c.txIds; }
  else { expect(start.transactionInfo.remoteStartId).toBe(4711); transactionId = start.transactionInfo.transactionId; expect(started.transactionId).toBe(transactionId); }
  await waitFor(() => c.of('StatusNotification').some((x) => (v16 ? x.params.status === 'Charging' : x.params.connectorStatus === 'Occupied')), { timeoutMs: 10_000, what: 'Charging status' });

  // Meter values at the configured interval, at the charger's full power.
  const t0 = Date.now();
  await waitFor(() => c.powers(t0).length >= 2, { timeoutMs: 10_000, what: 'meter values' });
  expect(Math.max(...c.powers(t0))).toBeGreaterThan(20);

  // A charging profile of 7 kW lowers the measured power.
  const profile = v16
    ? { connectorId: 1, csChargingProfiles: { chargingProfileId: 1, transactionId, stackLevel: 0, chargingProfilePurpose: 'TxProfile', chargingProfileKind: 'Relative', chargingSchedule: { chargingRateUnit: 'W', chargingSchedulePeriod: [{ startPeriod: 0, limit: 7000 }] } } }
    : { evseId: 1, chargingProfile: { id: 1, stackLevel: 0, chargingProfilePurpose: 'TxProfile', chargingProfileKind: 'Relative', transactionId, chargingSchedule: [{ id: 1, chargingRateUnit: 'W', chargingSchedulePeriod: [{ startPeriod: 0, limit: 7000 }] }] } };
  expect((await c.call('SetChargingProfile', profile)).status).toBe('Accepted');
  const t1 = Date.now();
  await waitFor(() => c.powers(t1).length >= 2, { timeoutMs: 10_000, what: 'meter values after the profile' });
  const limited = c.powers(t1).slice(1);
  for (const kw of limited) { expect(kw).toBeLessThanOrEqual(7.0001); expect(kw).toBeGreaterThan(0); }

  // A remote stop: the end carries the meter register.
  const stopped = v16 ? await c.call('RemoteStopTransaction', { transactionId }) : await c.call('RequestStopTransaction', { transactionId });
  expect(stopped.status).toBe('Accepted');
  const endOf = () => (v16 ? c.of('StopTransaction') : c.of('TransactionEvent').filter((x) => x.params.eventType === 'Ended'));
  await waitFor(() => endOf().length === 1, { timeoutMs: 10_000, what: 'transaction end' });
  const end = endOf()[0]!.params;
  if (v16) {
    expect(end).toMatchObject({ transactionId, reason: 'Remote' });
    expect(end.meterStop).toBeGreaterThan(start.meterStart);
  } else {
    expect(end.transactionInfo).toMatchObject({ transactionId, stoppedReason: 'Remote' });
  }
  await waitFor(() => c.of('StatusNotification').at(-1)?.params[v16 ? 'status' : 'connectorStatus'] === 'Available', { timeoutMs: 10_000, what: 'Available again' });

  // A transaction that ends while the central system is away: its end is queued and delivered on reconnect.
  expect((v16 ? await c.call('RemoteStartTransaction', { idTag: 'TAG-2' }) : await c.call('RequestStartTransaction', { idToken: { idToken: 'TAG-2', type: 'ISO14443' }, remoteStartId: 4712 })).status).toBe('Accepted');
  await waitFor(() => startOf().length === 2, { timeoutMs: 10_000, what: 'second transaction start' });
  const second = v16 ? c.txIds : startOf()[1]!.params.transactionInfo.transactionId;
  const seenBefore = c.seen.length;
  await c.close();
  await waitFor(async () => JSON.parse((await health(healthPort, 'STATUS')).slice(3)).link_up === false, { timeoutMs: 10_000, what: 'engine sees the link down' });
  expect(await health(healthPort, 'FAULT ground_fault')).toMatch(/^OK/); // ends the session while offline
  await waitFor(async () => JSON.parse((await health(healthPort, 'STATUS')).slice(3)).state === 'FAULTY', { timeoutMs: 10_000, what: 'session ended by the fault' });
  const offlineEndAt = Date.now();
  await c.listen(); // the same central system back on the same port
  await waitFor(() => endOf().length === 2, { timeoutMs: 30_000, what: `queued transaction end delivered\n${cp.lines.slice(-5).join('\n')}` });
  const queued = endOf()[1]!;
  if (v16) {
    expect(queued.params).toMatchObject({ transactionId: second, reason: 'EmergencyStop' });
    expect(queued.params.meterStop).toBeGreaterThan(end.meterStop);
  } else {
    expect(queued.params.transactionInfo).toMatchObject({ transactionId: second, stoppedReason: 'EmergencyStop' });
  }
  expect(Date.parse(v16 ? queued.params.timestamp : queued.params.timestamp)).toBeLessThanOrEqual(offlineEndAt);
  // A reconnect is not a reboot: no second BootNotification.
  expect(c.seen.slice(seenBefore).filter((x) => x.method === 'BootNotification')).toHaveLength(0);
  await waitFor(() => c.of('StatusNotification').at(-1)?.params[v16 ? 'status' : 'connectorStatus'] === 'Faulted', { timeoutMs: 10_000, what: 'Faulted status after reconnect' });
  expect(c.strictFailures).toBe(0);
}

describe('firmware as an OCPP charge point (evcharging cp --ocpp)', () => {
  it('1.6J against a strict-mode central system', () => run('1.6'), 90_000);
  it('2.0.1 against a strict-mode central system', () => run('2.0.1'), 90_000);
});
