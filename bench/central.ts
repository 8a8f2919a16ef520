/**
 * Central benchmark: a real gateway (embedded bus) and a real central process on free ports;
 * N charging points announced on the bus by this script (no engines, so only central is
 * measured), then N drivers each request one CP at once, and every session is ended with a
 * session_end. Prints requests/s, request → ACCEPTED and session_end → ticket latency
 * (p50/p99), and how many fsyncs the journal needed (group commit).
 *   npx tsx bench/central.ts [cps=500]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';

const N = Number(process.argv[2] ?? 500);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'bin', 'evcharging.js');
const freePort = () => new Promise<number>((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
const [mqttPort, gwHttp, centralPort] = [await freePort(), await freePort(), await freePort()];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-central-'));
const children: ChildProcess[] = [];
const run = (args: string[]) => { const c = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'warn' } }); children.push(c); return c; };
const cleanup = () => { for (const c of children) c.kill('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); };
const until = async (what: string, probe: () => Promise<boolean> | boolean, ms = 120_000) => {
  const end = Date.now() + ms;
  while (!(await Promise.resolve().then(probe).catch(() => false))) {
    if (Date.now() > end) { cleanup(); throw new Error(`timed out: ${what}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
};
const json = async (url: string) => (await fetch(url)).json() as Promise<Record<string, unknown>>;
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN; };

run(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp)]);
await until('gateway', async () => (await fetch(`http://127.0.0.1:${gwHttp}/health`)).ok);
run(['central', '--host', '127.0.0.1', '--port', String(centralPort), '--data-dir', path.join(dir, 'central'), '--admin-token', 'bench-token', '--bus-mqtt', `mqtt://127.0.0.1:${mqttPort}`]);
const central = `http://127.0.0.1:${centralPort}`;
await until('central', async () => (await json(`${central}/health`)).bus_consumer === 'connected');

const client = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `bench-central-${process.pid}`, clean: true, protocolVersion: 4 });
await new Promise<void>((r) => client.once('connect', () => r()));
const accepted = new Map<string, number>();
const ticketed = new Map<string, number>();
const sessionOf = new Map<string, string>();
client.on('message', (topic, payload) => {
  const m = JSON.parse(payload.toString()) as { driver_id: string; status: string; session_id?: string };
  if (m.status === 'ACCEPTED' && !accepted.has(m.driver_id)) { accepted.set(m.driver_id, performance.now()); sessionOf.set(m.driver_id, m.session_id!); }
  if (m.status === 'COMPLETED' && !ticketed.has(m.driver_id)) ticketed.set(m.driver_id, performance.now());
});
await client.subscribeAsync('bus/driver.updates/#', { qos: 1 });

const cpId = (i: number) => `CP-B${String(i).padStart(5, '0')}`;
const profile = { name: 'bench', max_kw: 50, price_eur_kwh: 0.4, connector: 'CCS2', phases: 3, hal: 'sim' };
for (let i = 0; i < N; i++) {
  const id = cpId(i);
  await client.publishAsync(`bus/cp.status/${id}`, JSON.stringify({ v: 1, type: 'announce', cp_id: id, profile, fw_version: 'bench', boot_id: 'b1', ts: Date.now() }), { qos: 1 });
  await client.publishAsync(`bus/cp.status/${id}`, JSON.stringify({ v: 1, type: 'status', cp_id: id, state: 'ACTIVATED', faults: [], source: 'engine', seq: 1, ts: Date.now() }), { qos: 1 });
}
await until('CPs registered', async () => ((await json(`${central}/cp`)).charging_points as Array<{ state: string }>).filter((c) => c.state === 'ACTIVATED').length === N);

const sentAt = new Map<string, number>();
const t0 = performance.now();
await Promise.all(Array.from({ length: N }, (_, i) => {
  const d = `drv-${i}`;
  sentAt.set(d, performance.now());
  return client.publishAsync(`bus/driver.requests/${d}`, JSON.stringify({ v: 1, request_id: `req-${i}`, driver_id: d, action: 'REQUEST', cp_id: cpId(i), ts: Date.now() }), { qos: 1 });
}));
await until('all ACCEPTED', () => accepted.size === N);
const acceptSpan = (performance.now() - t0) / 1000;

const endAt = new Map<string, number>();
const t1 = performance.now();
await Promise.all(Array.from({ length: N }, (_, i) => {
  const d = `drv-${i}`;
  endAt.set(d, performance.now());
  const now = Date.now();
  return client.publishAsync(`bus/cp.status/${cpId(i)}`, JSON.stringify({ v: 1, type: 'session_end', cp_id: cpId(i), session_id: sessionOf.get(d), driver_id: d, kwh: 10, eur: 4, price_eur_kwh: 0.4, started_at: now - 60_000, ended_at: now, reason: 'full', ts: now }), { qos: 1 });
}));
await until('all tickets', () => ticketed.size === N);
const ticketSpan = (performance.now() - t1) / 1000;
const health = await json(`${central}/health`);

const acc = [...accepted].map(([d, t]) => t - sentAt.get(d)!);
const tic = [...ticketed].map(([d, t]) => t - endAt.get(d)!);
console.log(`central bench: ${N} CPs, ${N} drivers requesting at once (gateway + central processes, embedded bus, fsync'd journal)`);
console.log(`  requests → ACCEPTED: ${(N / acceptSpan).toFixed(0)} req/s; latency p50 ${pct(acc, 50).toFixed(1)} ms, p99 ${pct(acc, 99).toFixed(1)} ms`);
console.log(`  session_end → ticket: ${(N / ticketSpan).toFixed(0)} sessions/s; latency p50 ${pct(tic, 50).toFixed(1)} ms, p99 ${pct(tic, 99).toFixed(1)} ms`);
console.log(`  journal: ${JSON.stringify(health.journal)}`);
await client.endAsync();
cleanup();
