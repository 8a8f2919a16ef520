import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION as v } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig, type Json } from '../helpers/central-rig.js';

/**
 * Central (a real process on the gateway's embedded bus) knows what it can reach, and whom to
 * believe. Gateway heartbeats come from a named stand-in in this test (`beatStandIn`, publishing
 * protocol GatewayBeatMsg on cp.status as a gateway does), two gateways at once; CP messages
 * are hand-made with the `gw` stamp. Also: a forged session_end, an expired request, CANCEL,
 * and a START that reaches its CP after central closed the session.
 */
let rig: CentralRig | undefined;
const beating = new Map<string, NodeJS.Timeout>();

/** Stand-in for a gateway's heartbeat (the real gateway sends the same message every interval). */
function beatStandIn(r: CentralRig, gatewayId: string, intervalMs = 300): void {
  let seq = 0;
  const send = () => void r.publish('cp.status', gatewayId, { v, type: 'gateway', gateway_id: gatewayId, boot_id: `${gatewayId}-boot`, interval_ms: intervalMs, cps: 1, seq: ++seq, ts: Date.now() }).catch(() => undefined);
  send();
  beating.set(gatewayId, setInterval(send, intervalMs));
}
const silence = (gatewayId: string) => { clearInterval(beating.get(gatewayId)); beating.delete(gatewayId); };

beforeAll(async () => {
  rig = await CentralRig.start();
  for (const [cp, gw] of [['CP-701', 'GW-T1'], ['CP-702', 'GW-T2'], ['CP-703', 'GW-T2']] as const) {
    await rig.publish('cp.status', cp, {
      v, type: 'announce', cp_id: cp, gw, boot_id: 'boot-1', fw_version: 'test', ts: Date.now(),
      profile: { name: 'test-profile', max_kw: 22, price_eur_kwh: 0.4, connector: 'Type2', phases: 3, hal: 'sim' },
    });
    await rig.status(cp, 'ACTIVATED', 1, { gw });
  }
  beatStandIn(rig, 'GW-T1');
  beatStandIn(rig, 'GW-T2');
  await waitFor(async () => (await rig!.cp('CP-703'))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'CPs ACTIVATED' });
}, 120_000);
afterAll(async () => {
  for (const id of [...beating.keys()]) silence(id);
  await rig?.stop();
}, 60_000);

const counters = async () => (await rig!.health()).counters as Json;
const driverRequest = (driverId: string, extra: Json) => {
  const requestId = `${driverId}-${Math.random().toString(36).slice(2, 8)}`;
  return rig!.publish('driver.requests', driverId, { v, request_id: requestId, driver_id: driverId, ts: Date.now(), ...extra }).then(() => requestId);
};

describe('central: gateways it cannot hear', () => {
  it('marks every CP behind a silent gateway DISCONNECTED and refuses them with a reason; the other gateway\'s CPs go on; a beat brings them back', async () => {
    const r = rig!;
    expect(await r.cp('CP-701')).toMatchObject({ state: 'ACTIVATED', reachable: true, gw: 'GW-T1' });
    silence('GW-T1');
    await waitFor(async () => (await r.cp('CP-701'))?.state === 'DISCONNECTED', { timeoutMs: 10_000, intervalMs: 100, what: 'CP-701 DISCONNECTED behind silent GW-T1' });
    expect(await r.cp('CP-701')).toMatchObject({ reachable: false, unreachable: 'gateway GW-T1 silent', engine_state: 'ACTIVATED' });
    expect((await r.cp('CP-702'))!.state).toBe('ACTIVATED');
    const q = await r.request('driver-liv', 'REQUEST', 'CP-701');
    expect(await r.update('driver-liv', (u) => u.request_id === q, 'answer')).toMatchObject({ status: 'REJECTED', reason: 'gateway unreachable' });
    expect(r.of('central.commands', 'CP-701').filter((c) => c.command === 'START_SUPPLY')).toEqual([]);
    // The log line may reach our pipe after the state shows over HTTP (a loaded machine): wait for it.
    await waitFor(() => r.central!.lines.some((l) => /CP-701 unreachable: gateway GW-T1 silent/.test(l)), { timeoutMs: 10_000, what: 'the unreachable log line' });

    beatStandIn(r, 'GW-T1');
    await waitFor(async () => (await r.cp('CP-701'))?.state === 'ACTIVATED', { timeoutMs: 10_000, intervalMs: 100, what: 'CP-701 back with its gateway' });
    const q2 = await r.request('driver-liv', 'REQUEST', 'CP-701');
    const acc = await r.update('driver-liv', (u) => u.request_id === q2, 'answer');
    expect(acc).toMatchObject({ status: 'ACCEPTED' });
    const start = await waitFor(() => r.of('central.commands', 'CP-701').find((c) => c.command === 'START_SUPPLY' && c.session_id === acc.session_id), { timeoutMs: 10_000, what: 'START_SUPPLY' });
    // The START expires when central stops waiting for its confirmation.
    expect(Number(start.expires_at)).toBeGreaterThan(Number(start.ts));
    await r.request('driver-liv', 'STOP');
  }, 60_000);
});

describe('central: whom it believes', () => {
  it('a session_end for another CP\'s session is refused, logged once, counted; the session runs on and bills its own CP\'s record', async () => {
    const r = rig!;
    const q = await r.request('driver-own', 'REQUEST', 'CP-702');
    const acc = await r.update('driver-own', (u) => u.request_id === q && u.status === 'ACCEPTED', 'ACCEPTED');
    const sid = String(acc.session_id);
    await r.status('CP-702', 'SUPPLYING', 2, { session_id: sid, gw: 'GW-T2' });
    const forged = { v, type: 'session_end', cp_id: 'CP-703', gw: 'GW-T2', session_id: sid, kwh: 9000, eur: 3600, price_eur_kwh: 0.4, started_at: Date.now() - 1000, ended_at: Date.now(), reason: 'full', ts: Date.now() };
    await r.publish('cp.status', 'CP-703', forged);
    await r.publish('cp.status', 'CP-703', forged);
    await waitFor(async () => Number((await counters()).forged_session_ends) >= 2, { timeoutMs: 10_000, what: 'forged session_ends counted' });
    expect((await r.get(`/sessions/${sid}`)).body.status).toBe('ACTIVE');
    await waitFor(() => r.central!.lines.some((l) => /session_end for another CP's session/.test(l)), { timeoutMs: 10_000, what: 'the forged session_end log line' });
    expect(r.central!.lines.filter((l) => /session_end for another CP's session/.test(l))).toHaveLength(1);
    await r.publish('cp.status', 'CP-702', { ...forged, cp_id: 'CP-702', kwh: 1.5, eur: 0.6 });
    const fin = await r.update('driver-own', (u) => u.session_id === sid && u.status === 'COMPLETED', 'COMPLETED');
    expect(fin.ticket).toMatchObject({ kwh: 1.5, eur: 0.6, cp_id: 'CP-702' });
    await r.status('CP-702', 'ACTIVATED', 3, { gw: 'GW-T2' });
  }, 60_000);

  it('a request naming another driver than its sender is refused and nobody is answered', async () => {
    const r = rig!;
    const before = Number((await counters()).forged_requests);
    await r.publish('driver.requests', 'driver-bob', { v, request_id: 'forged-1', driver_id: 'driver-alice', action: 'STOP', ts: Date.now() });
    await waitFor(async () => Number((await counters()).forged_requests) > before, { timeoutMs: 10_000, what: 'forged request counted' });
    expect(r.of('driver.updates').filter((u) => u.request_id === 'forged-1')).toEqual([]);
  }, 30_000);
});

describe('central: requests with deadlines, CANCEL, a late START', () => {
  it('a request past its expires_at starts nothing', async () => {
    const r = rig!;
    const q = await driverRequest('driver-late', { action: 'REQUEST', cp_id: 'CP-703', expires_at: Date.now() - 1 });
    expect(await r.update('driver-late', (u) => u.request_id === q, 'answer')).toMatchObject({ status: 'REJECTED', reason: 'request expired' });
    expect(r.of('central.commands', 'CP-703').filter((c) => c.command === 'START_SUPPLY')).toEqual([]);
  }, 30_000);

  it('CANCEL before the CP confirmed closes the session "cancelled"; a START that reaches the CP after that is stopped there', async () => {
    const r = rig!;
    const q = await driverRequest('driver-gone', { action: 'REQUEST', cp_id: 'CP-703', expires_at: Date.now() + 10_000 });
    const acc = await r.update('driver-gone', (u) => u.request_id === q && u.status === 'ACCEPTED', 'ACCEPTED');
    const sid = String(acc.session_id);
    await driverRequest('driver-gone', { action: 'CANCEL', cancels: q });
    const fin = await r.update('driver-gone', (u) => u.session_id === sid && u.status === 'INTERRUPTED', 'INTERRUPTED');
    expect(fin).toMatchObject({ reason: 'cancelled', ticket: { kwh: 0, eur: 0, reason: 'cancelled' } });
    await waitFor(() => r.of('central.commands', 'CP-703').some((c) => c.command === 'STOP_SUPPLY' && c.session_id === sid), { timeoutMs: 10_000, what: 'STOP_SUPPLY after CANCEL' });
    const stopsBefore = r.of('central.commands', 'CP-703').filter((c) => c.command === 'STOP_SUPPLY' && c.session_id === sid).length;
    // The START arrives at the CP anyway, and it says so.
    await r.status('CP-703', 'SUPPLYING', 5, { session_id: sid, gw: 'GW-T2' });
    await waitFor(() => r.of('central.commands', 'CP-703').filter((c) => c.command === 'STOP_SUPPLY' && c.session_id === sid).length > stopsBefore,
      { timeoutMs: 10_000, what: 'STOP_SUPPLY for the late START' });
    expect(Number((await counters()).late_start_stops)).toBeGreaterThanOrEqual(1);
    expect((await r.get(`/sessions/${sid}`)).body).toMatchObject({ status: 'INTERRUPTED', end_reason: 'cancelled' });
  }, 30_000);
});

describe('central: the gateway (its embedded bus) SIGKILLed', () => {
  it('shows a real engine\'s CP DISCONNECTED within seconds and refuses it; it is back when the gateway is', async () => {
    const r = rig!;
    await r.addEngine('CP-801', 'ac-22kw', 30);
    await r.gateway.kill('SIGKILL');
    // Nobody is left to publish the engine's DISCONNECTED: central knows it cannot hear its bus.
    await waitFor(async () => (await r.cp('CP-801'))?.state === 'DISCONNECTED', { timeoutMs: 10_000, intervalMs: 100, what: 'CP-801 DISCONNECTED with its gateway dead' });
    expect(await r.cp('CP-801')).toMatchObject({ reachable: false, engine_state: 'ACTIVATED' });
    await r.restartGateway();
    await waitFor(async () => (await r.cp('CP-801'))?.state === 'ACTIVATED', { timeoutMs: 60_000, intervalMs: 200, what: 'CP-801 ACTIVATED with its gateway back' });
    expect((await r.cp('CP-801'))!.reachable).toBe(true);
  }, 120_000);
});
