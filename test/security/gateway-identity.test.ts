import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { connect, isDisconnected, record, secretOf, startGw, statusMsg, willOf, type Gw } from './harness.js';

const run = promisify(execFile);

/**
 * Attacks from issue 10's table: "CP-001's credentials with client id CP-002, or any credential
 * with client id evcharging-central" and "any extra connection with a CP's credentials closes
 * (or, in dev mode, any client that once published under cp/<id>/) → central marks that CP
 * DISCONNECTED". A real gateway process; the attackers are mqtt.js and mosquitto_pub.
 */
describe('identity is bound at the edge (credentials mode)', () => {
  let gw: Gw;
  const clients: mqtt.MqttClient[] = [];
  const keep = <T extends mqtt.MqttClient>(c: T) => { clients.push(c); return c; };
  beforeAll(async () => {
    gw = await startGw([
      { id: 'CP-001', role: 'cp' }, { id: 'CP-002', role: 'cp' }, { id: 'central', role: 'central' },
      { id: 'driver-alice', role: 'driver' }, { id: 'driver-bob', role: 'driver' },
    ]);
  });
  afterAll(async () => { for (const c of clients) c.end(true); await gw?.stop(); });

  it("refuses CP-001's credentials under client id CP-002, and CP-002 stays connected with no DISCONNECTED", async () => {
    const central = keep(await connect(gw.url, { username: 'central', clientId: 'central:observer' }));
    const bus = record(central);
    await central.subscribeAsync('bus/cp.status/+', { qos: 1 });
    const cp2 = keep(await connect(gw.url, { username: 'CP-002', clientId: 'CP-002' }));
    let cp2Closed = 0;
    cp2.on('close', () => cp2Closed++);
    await cp2.publishAsync('cp/CP-002/status', statusMsg('CP-002', 1), { qos: 1 });
    await waitFor(() => bus.some((m) => m.topic === 'bus/cp.status/CP-002'), { what: 'CP-002 status on the bus' });

    for (let i = 0; i < 5; i++) {
      await expect(connect(gw.url, { username: 'CP-001', clientId: 'CP-002' })).rejects.toThrow(/identifier rejected|Identifier rejected/i);
    }
    // mosquitto_pub as the attacker too: CONNACK refused, non-zero exit.
    await expect(run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-u', 'CP-001', '-P', secretOf('CP-001'), '-i', 'CP-002', '-t', 'cp/CP-001/status', '-m', statusMsg('CP-001', 1)])).rejects.toThrow();

    // CP-002 still works: a new status is bridged, and no DISCONNECTED was ever said for it.
    await cp2.publishAsync('cp/CP-002/status', statusMsg('CP-002', 2), { qos: 1 });
    await waitFor(() => bus.some((m) => m.topic === 'bus/cp.status/CP-002' && m.payload.includes('"seq":2')), { what: 'second CP-002 status' });
    expect(cp2Closed).toBe(0);
    expect(bus.filter(isDisconnected('CP-002'))).toEqual([]);
    expect(await gw.metric('gateway_refused_connections_total{reason="client_id"}')).toBeGreaterThanOrEqual(6);
  }, 90_000);

  it("refuses another credential under central's client id; central's session keeps its queued requests", async () => {
    // Central's bus consumer: persistent session, fixed client id derived from its username.
    const central = keep(await connect(gw.url, { username: 'central', clientId: 'central:evcharging-central', clean: false }));
    const got = record(central);
    await central.subscribeAsync('bus/driver.requests/+', { qos: 1 });
    let centralClosed = 0;
    central.on('close', () => centralClosed++);
    for (const clientId of ['central:evcharging-central', 'evcharging-central', 'central']) {
      await expect(connect(gw.url, { username: 'driver-bob', clientId, clean: false })).rejects.toThrow(/identifier rejected/i);
    }
    const alice = keep(await connect(gw.url, { username: 'driver-alice', clientId: 'driver-alice:pub' }));
    for (let i = 0; i < 30; i++) {
      await alice.publishAsync('bus/driver.requests/driver-alice', JSON.stringify({ v: 1, request_id: `r-${i}`, driver_id: 'driver-alice', action: 'QUERY', ts: Date.now() }), { qos: 1 });
    }
    await waitFor(() => got.length >= 30, { what: '30 requests at central' });
    expect(got.filter((m) => m.topic === 'bus/driver.requests/driver-alice')).toHaveLength(30);
    expect(centralClosed).toBe(0);
  }, 90_000);

  it('a second connection of the same CP replaces the first; only the authoritative one closing (or its will) says DISCONNECTED', async () => {
    const central = keep(await connect(gw.url, { username: 'central', clientId: 'central:observer2' }));
    const bus = record(central);
    await central.subscribeAsync('bus/cp.status/+', { qos: 1 });
    // Like an engine, the first connection leaves a will. Replaced without a DISCONNECT, aedes
    // publishes it, possibly after the new connection's first statuses: forwarded, it would
    // mark a connected CP DISCONNECTED until its next status change (seen after a reconnect storm).
    const first = keep(await connect(gw.url, { username: 'CP-001', clientId: 'CP-001', will: willOf('CP-001') }));
    await first.publishAsync('cp/CP-001/status', statusMsg('CP-001', 1), { qos: 1 });
    const firstClosed = new Promise<void>((r) => first.once('close', () => r()));
    const second = keep(await connect(gw.url, { username: 'CP-001', clientId: 'CP-001' }));
    await firstClosed; // replaced (MQTT take-over)
    await second.publishAsync('cp/CP-001/status', statusMsg('CP-001', 2), { qos: 1 });
    await waitFor(() => bus.some((m) => m.topic === 'bus/cp.status/CP-001' && m.payload.includes('"seq":2')), { what: 'status of the new connection' });
    // The replaced connection's close said nothing about the CP, nor did its will.
    await waitFor(async () => await gw.metric('gateway_stale_wills_total') === 1, { what: 'the replaced connection\'s will dropped' });
    expect(bus.filter(isDisconnected('CP-001'))).toEqual([]);
    // The authoritative one going away does (its will and the gateway's own word).
    second.stream.destroy();
    await waitFor(() => bus.filter(isDisconnected('CP-001')).length >= 1, { what: 'DISCONNECTED for CP-001' });
  }, 90_000);
});

describe('dev mode: a stray client closing does not mark a CP disconnected', () => {
  let gw: Gw;
  const clients: mqtt.MqttClient[] = [];
  beforeAll(async () => { gw = await startGw('dev'); });
  afterAll(async () => { for (const c of clients) c.end(true); await gw?.stop(); });

  it('only the connection named like the CP decides its DISCONNECTED', async () => {
    const observer = await connect(gw.url, { clientId: 'observer' }); clients.push(observer);
    const bus = record(observer);
    await observer.subscribeAsync('bus/cp.status/+', { qos: 1 });
    const cp = await connect(gw.url, { clientId: 'CP-009' }); clients.push(cp);
    await cp.publishAsync('cp/CP-009/status', statusMsg('CP-009', 1), { qos: 1 });
    // A tool (another client id) publishes under the CP's topics once, then goes away.
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-i', 'some-tool', '-t', 'cp/CP-009/status', '-q', '1', '-m', statusMsg('CP-009', 2)]);
    const stray = await connect(gw.url, { clientId: 'stray' });
    await stray.publishAsync('cp/CP-009/telemetry', JSON.stringify({ v: 1, type: 'telemetry', cp_id: 'CP-009', session_id: 's', kw: 1, kwh: 0, eur: 0, seq: 1, ts: Date.now() }), { qos: 1 });
    stray.end(true);
    await waitFor(() => bus.some((m) => m.topic === 'bus/cp.status/CP-009' && m.payload.includes('"seq":2')), { what: 'the tool\'s status' });
    await cp.publishAsync('cp/CP-009/status', statusMsg('CP-009', 3), { qos: 1 });
    await waitFor(() => bus.some((m) => m.payload.includes('"seq":3')), { what: 'a later status' });
    expect(bus.filter(isDisconnected('CP-009'))).toEqual([]);
    cp.end(true);
    await waitFor(() => bus.filter(isDisconnected('CP-009')).length === 1, { what: 'DISCONNECTED when the CP itself goes' });
  }, 90_000);

  it("a reconnecting CP's replaced connection says nothing, its will neither", async () => {
    const observer = await connect(gw.url, { clientId: 'observer2' }); clients.push(observer);
    const bus = record(observer);
    await observer.subscribeAsync('bus/cp.status/+', { qos: 1 });
    const first = await connect(gw.url, { clientId: 'CP-010', will: willOf('CP-010') }); clients.push(first);
    await first.publishAsync('cp/CP-010/status', statusMsg('CP-010', 1), { qos: 1 });
    await waitFor(() => bus.some((m) => m.topic === 'bus/cp.status/CP-010'), { what: 'first status' });
    const firstClosed = new Promise<void>((r) => first.once('close', () => r()));
    const second = await connect(gw.url, { clientId: 'CP-010', will: willOf('CP-010') }); clients.push(second);
    await firstClosed;
    await second.publishAsync('cp/CP-010/status', statusMsg('CP-010', 2), { qos: 1 });
    await waitFor(async () => await gw.metric('gateway_stale_wills_total') === 1, { what: 'the replaced connection\'s will dropped' });
    await second.publishAsync('cp/CP-010/status', statusMsg('CP-010', 3), { qos: 1 });
    await waitFor(() => bus.some((m) => m.payload.includes('"seq":3')), { what: 'a later status' });
    expect(bus.filter(isDisconnected('CP-010'))).toEqual([]);
    second.stream.destroy();
    await waitFor(() => bus.filter(isDisconnected('CP-010')).length >= 1, { what: 'DISCONNECTED when the CP itself goes' });
    expect(bus.filter((m) => isDisconnected('CP-010')(m) && m.payload.includes('last_will')).length).toBeLessThanOrEqual(1);
  }, 90_000);
});
