import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import type mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { connect, record, secretOf, startGw, type Gw } from './harness.js';

const run = promisify(execFile);
const cmd = (cp: string, command = 'START_SUPPLY', id = `c-${Math.random()}`) => JSON.stringify({ v: 1, command_id: id, cp_id: cp, command, session_id: 's-1', driver_id: 'driver-bob', ts: Date.now() });
const req = (driver: string, action = 'STOP', id = `r-${Math.random()}`) => JSON.stringify({ v: 1, request_id: id, driver_id: driver, action, cp_id: 'CP-002', ts: Date.now() });

/** Publishes with QoS 1 and reports whether the gateway took it (an ACL refusal closes the connection). */
async function tryPublish(url: string, username: string, clientId: string, topic: string, payload: string, retain = false): Promise<boolean> {
  const c = await connect(url, { username, clientId });
  const closed = new Promise<'closed'>((r) => c.once('close', () => r('closed')));
  const acked = c.publishAsync(topic, payload, { qos: 1, retain }).then(() => 'acked' as const, () => 'closed' as const);
  const r = await Promise.race([acked, closed]);
  c.end(true);
  return r === 'acked';
}

/**
 * Attacks from issue 10's table: "a driver's credentials publish START_SUPPLY to
 * bus/central.commands/CP-002" and "driver-bob publishes to bus/driver.requests/… and retained
 * bus/driver.updates/driver-alice … bob reads all of bus/#". Least privilege per role.
 */
describe('least privilege per role at the gateway', () => {
  let gw: Gw;
  const clients: mqtt.MqttClient[] = [];
  let cp2Cmds: Array<{ topic: string; payload: string }>;
  let centralSeen: Array<{ topic: string; payload: string }>;
  beforeAll(async () => {
    gw = await startGw([
      { id: 'CP-001', role: 'cp' }, { id: 'CP-002', role: 'cp' }, { id: 'central', role: 'central' },
      { id: 'driver-alice', role: 'driver' }, { id: 'driver-bob', role: 'driver' }, { id: 'mon-1', role: 'monitor' }, { id: 'ops', role: 'admin' },
    ]);
    const cp2 = await connect(gw.url, { username: 'CP-002', clientId: 'CP-002' }); clients.push(cp2);
    cp2Cmds = record(cp2);
    await cp2.subscribeAsync('cp/CP-002/cmd', { qos: 1 });
    const central = await connect(gw.url, { username: 'central', clientId: 'central:evcharging-central' }); clients.push(central);
    centralSeen = record(central);
    await central.subscribeAsync('bus/driver.requests/+', { qos: 1 });
  });
  afterAll(async () => { for (const c of clients) c.end(true); await gw?.stop(); });

  it('only central publishes commands: a driver, a CP, a monitor and an admin are refused; central reaches the CP', async () => {
    expect(await tryPublish(gw.url, 'driver-bob', 'driver-bob', 'bus/central.commands/CP-002', cmd('CP-002', 'START_SUPPLY', 'from-bob'))).toBe(false);
    expect(await tryPublish(gw.url, 'CP-001', 'CP-001', 'bus/central.commands/CP-002', cmd('CP-002', 'START_SUPPLY', 'from-cp1'))).toBe(false);
    expect(await tryPublish(gw.url, 'CP-001', 'CP-001', 'cp/CP-002/cmd', cmd('CP-002', 'START_SUPPLY', 'direct'))).toBe(false);
    expect(await tryPublish(gw.url, 'mon-1', 'mon-1', 'bus/central.commands/CP-002', cmd('CP-002', 'STOP_CP', 'from-mon'))).toBe(false);
    expect(await tryPublish(gw.url, 'ops', 'ops', 'bus/central.commands/CP-002', cmd('CP-002', 'STOP_CP', 'from-ops'))).toBe(false);
    // mosquitto_pub with bob's credentials: the gateway drops the connection instead of forwarding.
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-u', 'driver-bob', '-P', secretOf('driver-bob'), '-i', 'driver-bob', '-t', 'bus/central.commands/CP-002', '-q', '1', '-m', cmd('CP-002', 'START_SUPPLY', 'mosq-bob')]).catch(() => undefined);
    expect(await tryPublish(gw.url, 'central', 'central:pub', 'bus/central.commands/CP-002', cmd('CP-002', 'START_SUPPLY', 'from-central'))).toBe(true);
    await waitFor(() => cp2Cmds.some((m) => m.payload.includes('from-central')), { what: 'central\'s command at CP-002' });
    expect(cp2Cmds.map((m) => JSON.parse(m.payload).command_id)).toEqual(['from-central']);
    expect(await gw.metric('gateway_acl_denied_total{action="publish"}')).toBeGreaterThanOrEqual(5);
  }, 90_000);

  it("a driver publishes only its own requests (topic key and payload driver_id) and reads only its own updates; nothing retained on bus/", async () => {
    // Bob stops alice's session: under her key, or under his key with her id inside.
    expect(await tryPublish(gw.url, 'driver-bob', 'driver-bob', 'bus/driver.requests/driver-alice', req('driver-alice', 'STOP', 'bob-as-alice-1'))).toBe(false);
    expect(await tryPublish(gw.url, 'driver-bob', 'driver-bob', 'bus/driver.requests/driver-bob', req('driver-alice', 'STOP', 'bob-as-alice-2'))).toBe(false);
    // A fake retained REJECTED for alice, or any update from a driver.
    expect(await tryPublish(gw.url, 'driver-bob', 'driver-bob', 'bus/driver.updates/driver-alice', JSON.stringify({ v: 1, driver_id: 'driver-alice', status: 'REJECTED', ts: Date.now() }), true)).toBe(false);
    // Even central may not retain on the bus.
    expect(await tryPublish(gw.url, 'central', 'central:pub', 'bus/driver.updates/driver-alice', JSON.stringify({ v: 1, driver_id: 'driver-alice', status: 'REJECTED', ts: Date.now() }), true)).toBe(false);
    // Bob's own request goes through.
    expect(await tryPublish(gw.url, 'driver-bob', 'driver-bob:pub', 'bus/driver.requests/driver-bob', req('driver-bob', 'QUERY', 'bob-own'))).toBe(true);
    await waitFor(() => centralSeen.some((m) => m.payload.includes('bob-own')), { what: 'bob\'s own request at central' });
    expect(centralSeen.filter((m) => m.payload.includes('bob-as-alice'))).toEqual([]);

    // Alice's next subscriber gets no retained fake.
    const alice = await connect(gw.url, { username: 'driver-alice', clientId: 'driver-alice' }); clients.push(alice);
    const aliceGot = record(alice);
    await alice.subscribeAsync('bus/driver.updates/driver-alice', { qos: 1 });
    expect(await tryPublish(gw.url, 'central', 'central:pub', 'bus/driver.updates/driver-alice', JSON.stringify({ v: 1, driver_id: 'driver-alice', status: 'ACCEPTED', ts: Date.now() }))).toBe(true);
    await waitFor(() => aliceGot.length >= 1, { what: 'central\'s update at alice' });
    expect(aliceGot.map((m) => JSON.parse(m.payload).status)).toEqual(['ACCEPTED']);
    expect(aliceGot.some((m) => m.retain)).toBe(false);

    // Bob cannot read the bus: mosquitto_sub on bus/# is cut off; on his own updates it is served.
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-u', 'driver-bob', '-P', secretOf('driver-bob'), '-i', 'driver-bob', '-t', 'bus/#', '-v']);
    let out = ''; let err = '';
    sub.stdout.on('data', (d) => { out += String(d); });
    sub.stderr.on('data', (d) => { err += String(d); });
    await new Promise<void>((r) => sub.on('exit', () => r())); // SUBACK 0x80: mosquitto_sub gives up
    expect(err).toMatch(/denied/i);
    expect(out).toBe('');
    const bob = await connect(gw.url, { username: 'driver-bob', clientId: 'driver-bob' }); clients.push(bob);
    await expect(bob.subscribeAsync('bus/driver.updates/driver-bob', { qos: 1 })).resolves.toBeDefined();
    expect(bob.connected).toBe(true);
    expect(await gw.metric('gateway_acl_denied_total{action="subscribe"}')).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
