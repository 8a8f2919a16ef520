import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { connect, record, rssMbOf, secretOf, startGw, type Gw } from './harness.js';

/**
 * Attacks from issue 10's table against central, through a real gateway in credentials mode
 * (no --dev), a real central on it with its bus credential, and real CP engines:
 * - "CP-001's credentials send session_end / ack for another CP's session (session ids are
 *   public at GET /sessions)";
 * - "30,000 bogus REQUESTs from one driver in 2.1 s";
 * - "a kwh of 1e303 in a valid session_end".
 * The attacker is the `mqtt` package with the stolen (or its own) credentials.
 */
type Json = Record<string, any>;
const v = 1;
const ids = [
  { id: 'CP-001', role: 'cp' }, { id: 'CP-002', role: 'cp' }, { id: 'CP-003', role: 'cp' }, { id: 'central', role: 'central' },
  { id: 'driver-alice', role: 'driver' }, { id: 'driver-carol', role: 'driver' }, { id: 'driver-bob', role: 'driver' }, { id: 'driver-spam', role: 'driver' },
] as const;

let gw: Gw;
let central: CliProcess;
let centralUrl = '';
let dataDir = '';
const engines: CliProcess[] = [];
const clients: mqtt.MqttClient[] = [];
const driverSeen = new Map<string, Array<{ topic: string; payload: string }>>();
const drivers = new Map<string, mqtt.MqttClient>();

const get = async (p: string): Promise<Json> => (await fetch(`${centralUrl}${p}`, { signal: AbortSignal.timeout(10_000) })).json() as Promise<Json>;
const counters = async (): Promise<Json> => ((await get('/health')).counters ?? {}) as Json;
const session = async (sid: string): Promise<Json> => get(`/sessions/${sid}`);
const updates = (driver: string): Json[] => (driverSeen.get(driver) ?? []).map((m) => JSON.parse(m.payload) as Json);
const dirBytes = (dir: string): number => fs.readdirSync(dir, { withFileTypes: true })
  .reduce((n, e) => n + (e.isDirectory() ? dirBytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);

async function driver(id: string): Promise<mqtt.MqttClient> {
  const c = await connect(gw.url, { username: id, clientId: id });
  clients.push(c);
  driverSeen.set(id, record(c));
  drivers.set(id, c);
  await c.subscribeAsync(`bus/driver.updates/${id}`, { qos: 1 });
  return c;
}
const requestMsg = (driverId: string, action: string, cp?: string, rid = `${driverId}-${Math.random().toString(36).slice(2, 10)}`) =>
  ({ v, request_id: rid, driver_id: driverId, action, ...(cp ? { cp_id: cp } : {}), ts: Date.now() });

async function startEngine(id: string): Promise<void> {
  const healthPort = await freePort();
  const p = spawnCli(['cp', '--id', id, '--health-port', String(healthPort), '--health-host', '127.0.0.1', '--mqtt', gw.url, '--profile', 'ac-22kw', '--speed', '60'],
    { env: { CP_ENGINE_SECRET: secretOf(id) } });
  engines.push(p);
  await waitFor(async () => {
    if (p.child.exitCode !== null) throw new Error(`engine ${id} exited:\n${p.lines.join('\n')}`);
    return ((await get('/cp')).charging_points as Json[] | undefined)?.find((c) => c.cp_id === id)?.state === 'ACTIVATED';
  }, { timeoutMs: 40_000, intervalMs: 200, what: `central lists ${id} ACTIVATED` });
}

/** A driver's REQUEST at a real engine, until central has it SUPPLYING and metering. */
async function runningSession(d: mqtt.MqttClient, driverId: string, cp: string): Promise<string> {
  const m = requestMsg(driverId, 'REQUEST', cp);
  await d.publishAsync(`bus/driver.requests/${driverId}`, JSON.stringify(m), { qos: 1 });
  const acc = await waitFor(() => updates(driverId).find((u) => u.request_id === m.request_id && u.status !== 'IN_PROGRESS'), { timeoutMs: 20_000, what: `${driverId}'s answer` });
  expect(acc).toMatchObject({ status: 'ACCEPTED' });
  const sid = String(acc.session_id);
  await waitFor(async () => Number((await session(sid)).kwh) > 0, { timeoutMs: 30_000, intervalMs: 200, what: `${cp} metering session ${sid}` });
  return sid;
}

beforeAll(async () => {
  gw = await startGw([...ids]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sec-forgery-'));
  dataDir = path.join(dir, 'data');
  const port = await freePort();
  centralUrl = `http://127.0.0.1:${port}`;
  central = spawnCli(['central', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--bus-mqtt', gw.url, '--bus-username', 'central'],
    { env: { GATEWAY_BUS_PASSWORD: secretOf('central'), CENTRAL_ADMIN_TOKEN: `forgery-${Math.random().toString(36).slice(2)}` } });
  await waitFor(async () => {
    if (central.child.exitCode !== null) throw new Error(`central exited:\n${central.lines.join('\n')}`);
    return (await get('/health').catch(() => ({} as Json))).bus_consumer === 'connected';
  }, { timeoutMs: 40_000, intervalMs: 200, what: 'central on the gateway with its bus credential' });
  await Promise.all([startEngine('CP-002'), startEngine('CP-003')]);
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.end(true);
  for (const e of engines) await e.kill('SIGKILL');
  await central?.kill('SIGKILL');
  await gw?.stop();
  if (dataDir) fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
}, 30_000);

describe("CP-001's credentials against another CP's session", () => {
  it('a forged ack (START refused) and a forged session_end naming CP-002/CP-003 sessions are refused and counted; both sessions run on, CP-002 bills its own meter', async () => {
    const alice = await driver('driver-alice');
    const carol = await driver('driver-carol');
    const sidAck = await runningSession(carol, 'driver-carol', 'CP-003');
    const sidEnd = await runningSession(alice, 'driver-alice', 'CP-002');
    // The session ids are public.
    const listed = ((await get('/sessions')).sessions as Json[]).map((s) => s.session_id);
    expect(listed).toEqual(expect.arrayContaining([sidAck, sidEnd]));

    const attacker = await connect(gw.url, { username: 'CP-001', clientId: 'CP-001' });
    clients.push(attacker);
    const before = await counters();
    const now = Date.now();
    await attacker.publishAsync('cp/CP-001/ack', JSON.stringify({ v, type: 'ack', cp_id: 'CP-001', command_id: `start:${sidAck}`, command: 'START_SUPPLY', ok: false, reason: 'fault', state: 'FAULTY', ts: now }), { qos: 1 });
    const forgedEnd = { v, type: 'session_end', cp_id: 'CP-001', session_id: sidEnd, driver_id: 'driver-alice', kwh: 9_999, eur: 49_500, price_eur_kwh: 4.95, started_at: now - 60_000, ended_at: now, reason: 'full', ts: now };
    await attacker.publishAsync('cp/CP-001/session', JSON.stringify(forgedEnd), { qos: 1 });
    await attacker.publishAsync('cp/CP-001/session', JSON.stringify(forgedEnd), { qos: 1 });

    // Central has dealt with both: refused (counted) or, on a central that believes them, closed the sessions.
    await waitFor(async () => {
      const c = await counters();
      const ackDone = Number(c.forged_acks ?? 0) > Number(before.forged_acks ?? 0) || (await session(sidAck)).status !== 'ACTIVE';
      const endDone = Number(c.forged_session_ends ?? 0) >= Number(before.forged_session_ends ?? 0) + 2 || (await session(sidEnd)).status !== 'ACTIVE';
      return ackDone && endDone;
    }, { timeoutMs: 20_000, intervalMs: 100, what: 'the forged ack and session_end handled by central' });
    const ackS = await session(sidAck); const endS = await session(sidEnd);
    expect.soft({ status: ackS.status, end_reason: ackS.end_reason }, 'CP-003 session after the forged ack').toMatchObject({ status: 'ACTIVE' });
    expect.soft({ status: endS.status, ticket: endS.ticket }, 'CP-002 session after the forged session_end').toMatchObject({ status: 'ACTIVE' });
    const after = await counters();
    expect.soft(Number(after.forged_acks ?? 0) - Number(before.forged_acks ?? 0), 'forged acks counted').toBeGreaterThanOrEqual(1);
    expect.soft(Number(after.forged_session_ends ?? 0) - Number(before.forged_session_ends ?? 0), 'forged session_ends counted').toBeGreaterThanOrEqual(2);
    expect(updates('driver-alice').filter((u) => Number(u.ticket?.eur ?? 0) > 1_000), 'a forged ticket at alice').toEqual([]);

    // Both CPs keep supplying: their metered energy still grows.
    const kwh0 = { ack: Number(ackS.kwh), end: Number(endS.kwh) };
    await waitFor(async () => Number((await session(sidAck)).kwh) > kwh0.ack && Number((await session(sidEnd)).kwh) > kwh0.end,
      { timeoutMs: 20_000, intervalMs: 200, what: 'both sessions still metering' });
    const cps = (await get('/cp')).charging_points as Json[];
    expect(cps.filter((c) => c.cp_id === 'CP-002' || c.cp_id === 'CP-003').map((c) => c.state)).toEqual(['SUPPLYING', 'SUPPLYING']);
    // One refusal logged per source, not one per message.
    expect(central.lines.filter((l) => /session_end for another CP's session/.test(l)).length).toBeLessThanOrEqual(1);

    // The owners end their sessions: tickets from their own meters.
    for (const [d, id, sid] of [[alice, 'driver-alice', sidEnd], [carol, 'driver-carol', sidAck]] as const) {
      await d.publishAsync(`bus/driver.requests/${id}`, JSON.stringify(requestMsg(id, 'STOP')), { qos: 1 });
      const fin = await waitFor(() => updates(id).find((u) => u.session_id === sid && (u.status === 'COMPLETED' || u.status === 'INTERRUPTED')), { timeoutMs: 20_000, what: `${id}'s ticket` });
      expect(fin.ticket.eur).toBeLessThan(100);
      expect(fin.ticket.cp_id).toBe(sid === sidEnd ? 'CP-002' : 'CP-003');
    }
    expect(((await get('/sessions')).sessions as Json[]).filter((s) => Number(s.eur) > 1_000)).toEqual([]);
  }, 90_000);
});

describe('30,000 bogus REQUESTs from one driver', () => {
  it('are rate-limited and counted; data dir and RSS stay bounded; another driver is served; central stays healthy', async () => {
    const N = 30_000;
    const spam = await driver('driver-spam');
    const bob = await driver('driver-bob');
    const pid = central.child.pid!;
    const rss0 = rssMbOf(pid); const disk0 = dirBytes(dataDir);
    const c0 = await counters();
    const handled = (c: Json) => Number(c.requests ?? 0) + Number(c.rate_limited ?? 0) - Number(c0.requests ?? 0) - Number(c0.rate_limited ?? 0);
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      spam.publish('bus/driver.requests/driver-spam', JSON.stringify(requestMsg('driver-spam', 'REQUEST', `CP-9${String(i % 1000).padStart(3, '0')}`, `spam-${i}`)), { qos: 0 });
    }
    // The last one with QoS 1: once acknowledged, the gateway has every one before it.
    await spam.publishAsync('bus/driver.requests/driver-spam', JSON.stringify(requestMsg('driver-spam', 'REQUEST', 'CP-9999', 'spam-last')), { qos: 1 });
    const sendMs = Date.now() - t0;
    // Another driver during the storm: a real supply at CP-002.
    const q = requestMsg('driver-bob', 'REQUEST', 'CP-002');
    await bob.publishAsync('bus/driver.requests/driver-bob', JSON.stringify(q), { qos: 1 });
    let rssPeak = rss0;
    await waitFor(async () => { rssPeak = Math.max(rssPeak, rssMbOf(pid)); return handled(await counters()) >= N * 0.99; },
      { timeoutMs: 45_000, intervalMs: 200, what: 'central through the storm' });
    const doneMs = Date.now() - t0;
    const bobAnswer = await waitFor(() => updates('driver-bob').find((u) => u.request_id === q.request_id), { timeoutMs: 15_000, what: "bob's answer" });
    const c1 = await counters();
    const rss1 = rssMbOf(pid); const disk1 = dirBytes(dataDir);
    const spamUpdates = updates('driver-spam').length;
    const h = await fetch(`${centralUrl}/health`, { signal: AbortSignal.timeout(10_000) });
    const figures = {
      sent: N + 1, send_ms: sendMs, handled_ms: doneMs, rate_limited: Number(c1.rate_limited ?? 0) - Number(c0.rate_limited ?? 0),
      requests: Number(c1.requests ?? 0) - Number(c0.requests ?? 0), spam_updates: spamUpdates,
      data_dir_kb: [Math.round(disk0 / 1024), Math.round(disk1 / 1024)], rss_mb: [Math.round(rss0), Math.round(rssPeak), Math.round(rss1)], health: h.status,
    };
    console.log('driver storm', JSON.stringify(figures));
    expect.soft(figures.rate_limited, 'requests refused by the rate limit').toBeGreaterThanOrEqual(N - 1_000);
    expect.soft(spamUpdates, 'answers to the spammer (at most once a second past its burst)').toBeLessThan(200);
    expect.soft(disk1 - disk0, 'data dir growth, bytes').toBeLessThan(256 * 1024);
    expect.soft(rss1 - rss0, 'central RSS growth, MB').toBeLessThan(80);
    expect(bobAnswer, 'bob during the storm').toMatchObject({ status: 'ACCEPTED', cp_id: 'CP-002' });
    await bob.publishAsync('bus/driver.requests/driver-bob', JSON.stringify(requestMsg('driver-bob', 'STOP')), { qos: 1 });
    await waitFor(() => updates('driver-bob').find((u) => u.session_id === bobAnswer.session_id && (u.status === 'COMPLETED' || u.status === 'INTERRUPTED')), { timeoutMs: 20_000, what: "bob's ticket" });
    expect(h.status).toBe(200);
    expect(((await h.json()) as Json).status).toBe('healthy');
    expect(central.child.exitCode).toBeNull();
  }, 90_000);
});

describe('a kwh of 1e303 in a valid session_end', () => {
  it('is refused at the gateway (counted) and never reaches central; the CP\'s own valid record bills a finite ticket', async () => {
    // CP-001 is a CP of its own now (its own credentials, a hand-written firmware).
    const cp = await connect(gw.url, { username: 'CP-001', clientId: 'CP-001' });
    clients.push(cp);
    const cmds = record(cp);
    await cp.subscribeAsync('cp/CP-001/cmd', { qos: 1 });
    await cp.publishAsync('cp/CP-001/announce', JSON.stringify({ v, type: 'announce', cp_id: 'CP-001', boot_id: `b-${Date.now()}`, fw_version: 'evil-1', ts: Date.now(),
      profile: { name: 'ac-22kw', max_kw: 22, price_eur_kwh: 0.35, connector: 'Type2', phases: 3, hal: 'sim' } }), { qos: 1 });
    await cp.publishAsync('cp/CP-001/status', JSON.stringify({ v, type: 'status', cp_id: 'CP-001', state: 'ACTIVATED', faults: [], source: 'engine', seq: 1, ts: Date.now() }), { qos: 1, retain: true });
    await waitFor(async () => ((await get('/cp')).charging_points as Json[]).find((c) => c.cp_id === 'CP-001')?.state === 'ACTIVATED', { timeoutMs: 15_000, what: 'CP-001 ACTIVATED' });
    const bob = drivers.get('driver-bob') ?? await driver('driver-bob');
    const m = requestMsg('driver-bob', 'REQUEST', 'CP-001');
    await bob.publishAsync('bus/driver.requests/driver-bob', JSON.stringify(m), { qos: 1 });
    const acc = await waitFor(() => updates('driver-bob').find((u) => u.request_id === m.request_id), { timeoutMs: 15_000, what: "bob's answer" });
    expect(acc.status).toBe('ACCEPTED');
    const sid = String(acc.session_id);
    const start = await waitFor(() => cmds.map((c) => JSON.parse(c.payload) as Json).find((c) => c.command === 'START_SUPPLY' && c.session_id === sid), { timeoutMs: 15_000, what: 'START_SUPPLY at CP-001' });
    await cp.publishAsync('cp/CP-001/ack', JSON.stringify({ v, type: 'ack', cp_id: 'CP-001', command_id: start.command_id, command: 'START_SUPPLY', ok: true, state: 'SUPPLYING', ts: Date.now() }), { qos: 1 });
    await cp.publishAsync('cp/CP-001/status', JSON.stringify({ v, type: 'status', cp_id: 'CP-001', state: 'SUPPLYING', faults: [], source: 'engine', session_id: sid, seq: 2, ts: Date.now() }), { qos: 1, retain: true });
    await waitFor(async () => ((await get('/cp')).charging_points as Json[]).find((c) => c.cp_id === 'CP-001')?.state === 'SUPPLYING', { timeoutMs: 15_000, what: 'CP-001 SUPPLYING' });

    const rejected0 = await gw.metric('gateway_rejected_total{reason="schema"}');
    const c0 = await counters();
    const now = Date.now();
    const end = { v, type: 'session_end', cp_id: 'CP-001', session_id: sid, driver_id: 'driver-bob', price_eur_kwh: 0.35, started_at: now - 10_000, ended_at: now, reason: 'driver_stop', ts: now };
    // 1e303 is a finite double: only its ticket (x price, x 1000 in rounding) overflows.
    const huge = JSON.stringify({ ...end, kwh: 1e303, eur: 3.5e302 });
    const acked = await cp.publishAsync('cp/CP-001/session', huge, { qos: 1 }).then(() => true, () => false);
    await waitFor(async () => (await gw.metric('gateway_rejected_total{reason="schema"}')) > rejected0 || (await session(sid)).status !== 'ACTIVE' || !cp.connected,
      { timeoutMs: 15_000, intervalMs: 100, what: 'the 1e303 session_end handled' });
    const rejected1 = await gw.metric('gateway_rejected_total{reason="schema"}');
    const s1 = await session(sid);
    console.log('kwh 1e303', JSON.stringify({ puback: acked, gateway_rejected_schema: [rejected0, rejected1], session: { status: s1.status, ticket: s1.ticket }, session_ends_at_central: Number((await counters()).session_ends ?? 0) - Number(c0.session_ends ?? 0) }));
    expect.soft(rejected1 - rejected0, 'gateway schema refusals').toBeGreaterThanOrEqual(1);
    expect.soft(s1.status, 'session after the 1e303 record').toBe('ACTIVE');
    expect.soft(Number((await counters()).session_ends ?? 0) - Number(c0.session_ends ?? 0), 'session_ends that reached central').toBe(0);

    // The CP's own valid record is billed, finite.
    if (!cp.connected) throw new Error('the gateway dropped CP-001 for one bad record');
    await cp.publishAsync('cp/CP-001/session', JSON.stringify({ ...end, kwh: 1.25, eur: 0.44 }), { qos: 1 });
    const fin = await waitFor(() => updates('driver-bob').find((u) => u.session_id === sid && (u.status === 'COMPLETED' || u.status === 'INTERRUPTED')), { timeoutMs: 15_000, what: "bob's ticket" });
    expect(fin.ticket).toMatchObject({ kwh: 1.25, cp_id: 'CP-001' });
    expect(Number.isFinite(fin.ticket.eur)).toBe(true);
    // Nothing non-finite in the journal (JSON writes an infinite number as null).
    const journal = fs.readdirSync(dataDir).filter((f) => f.startsWith('journal')).map((f) => fs.readFileSync(path.join(dataDir, f), 'utf8')).join('\n');
    expect(journal).not.toMatch(/"(kwh|eur)":null/);
    expect(journal).not.toContain('e+303');
  }, 60_000);
});
