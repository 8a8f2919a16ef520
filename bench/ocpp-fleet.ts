/**
 * OCPP fleet benchmark: one gateway (embedded bus, dev mode, OCPP port) and
 * `evcharging fleet --count N --ocpp ws://…/ocpp` (default 1000, one worker per core) with
 * automatic sessions on this machine. Waits until every charge point booted at the gateway,
 * lets sessions start, then measures over a window: CPU and memory of the gateway and of the
 * fleet (parent and workers), per charge point, and the messages held: OCPP calls answered per
 * second (fleet side, with the gateway's p50/p99 response time) and messages bridged to the bus
 * per second (gateway side).
 *   npm run bench:ocpp -- [count] [sample seconds] [1.6|2.0.1]
 */
import fs from 'node:fs';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuShare, rssMb } from './proc-stats.js';

const count = Number(process.argv[2] ?? 1000);
const sampleS = Number(process.argv[3] ?? 30);
const version = process.argv[4] === '2.0.1' ? '2.0.1' : '1.6';
const CLI = fileURLToPath(new URL('../bin/evcharging.js', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
}
const children: ChildProcess[] = [];
const run = (args: string[]) => {
  const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
  children.push(c);
  return c;
};
const stopAll = () => { for (const c of children) c.kill('SIGTERM'); };
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));
const json = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(5_000) })).json() as Promise<Record<string, unknown>>;
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try { const v = await probe(); if (v !== undefined) return v; } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
/** The fleet's worker processes (children of its parent process). */
const workersOf = (pid: number): number[] => {
  try { return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
};
const bridged = async (url: string): Promise<number> => {
  const text = await (await fetch(url)).text();
  return [...text.matchAll(/^gateway_bridged_total\{[^}]*\} (\d+(?:\.\d+)?)/gm)].reduce((n, m) => n + Number(m[1]), 0);
};

const [mqttPort, gwHttp, ocppPort, fleetHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
const gateway = run(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp), '--ocpp-port', String(ocppPort)]);
await until('gateway healthy', async () => ((await json(`http://127.0.0.1:${gwHttp}/health`)).status === 'ok' ? true : undefined), 60_000);
const t0 = Date.now();
const fleet = run(['fleet', '--count', String(count), '--ocpp', `ws://127.0.0.1:${ocppPort}/ocpp`, '--ocpp-version', version, '--http-port', String(fleetHttp),
  '--meter-interval-s', '10', '--session-probability', '0.7', '--session-min-s', '30', '--session-max-s', '120', '--pause-min-s', '5', '--pause-max-s', '30', '--stats-s', String(sampleS)]);
await until(`${count} charge points booted at the gateway`, async () => {
  const [f, g] = await Promise.all([json(`http://127.0.0.1:${fleetHttp}/health`), json(`http://127.0.0.1:${gwHttp}/health`)]);
  return f.connected === count && g.ocpp_clients === count ? true : undefined;
}, 300_000);
const connectS = (Date.now() - t0) / 1000;
// Sessions start after their first pause (5–30 s): wait for most of them to be under way.
await until('sessions under way', async () => (Number((await json(`http://127.0.0.1:${fleetHttp}/health`)).sessions) >= count * 0.4 ? true : undefined), 120_000);

const pids = [gateway.pid!, fleet.pid!, ...workersOf(fleet.pid!)];
const bridgedBefore = await bridged(`http://127.0.0.1:${gwHttp}/metrics`);
const tSample = Date.now();
const cpu = await cpuShare(pids, sampleS * 1000);
const busPerS = ((await bridged(`http://127.0.0.1:${gwHttp}/metrics`)) - bridgedBefore) / ((Date.now() - tSample) / 1000);
// The fleet workers log their window every --stats-s; the parent's /health sums the last windows.
const f = await until('a full stats window', async () => {
  const h = await json(`http://127.0.0.1:${fleetHttp}/health`);
  return Number(h.ocpp_calls_per_s) > 0 && h.workers_up === h.workers ? h : undefined;
}, 60_000);
const rss = pids.map(rssMb);
const gwCpu = cpu[0]!;
const fleetCpu = cpu.slice(1).reduce((a, b) => a + b, 0);
const gwRss = rss[0]!;
const fleetRss = rss.slice(1).reduce((a, b) => a + b, 0);
const g = await json(`http://127.0.0.1:${gwHttp}/health`);

const pct = (x: number, d = 1) => `${(x * 100).toFixed(d)}%`;
console.log(`OCPP ${version} fleet benchmark: ${count} charge points (own WebSocket + health port each, ${workersOf(fleet.pid!).length} worker processes) against the project's gateway, ${sampleS}s window`);
console.log(`  all booted at the gateway after      ${connectS.toFixed(1)} s   (gateway OCPP clients ${String(g.ocpp_clients)})`);
console.log(`  sessions started so far               ${String(f.sessions)}   states ${JSON.stringify(f.states)}`);
console.log(`  OCPP calls answered                   ${Number(f.ocpp_calls_per_s).toFixed(1)} /s   gateway response p50 ${String(f.ocpp_p50_ms)} ms, p99 ${String(f.ocpp_p99_ms)} ms (slowest worker)`);
console.log(`  messages bridged to the bus           ${busPerS.toFixed(1)} /s`);
console.log(`  gateway process  CPU ${pct(gwCpu)} of a core   RSS ${gwRss.toFixed(0)} MB`);
console.log(`  fleet processes  CPU ${pct(fleetCpu)} of a core   RSS ${fleetRss.toFixed(0)} MB`);
console.log(`  per charge point: gateway CPU ${pct(gwCpu / count, 4)}, memory ${((gwRss * 1024) / count).toFixed(0)} KB; fleet CPU ${pct(fleetCpu / count, 4)}, memory ${((fleetRss * 1024) / count).toFixed(0)} KB`);
console.log(JSON.stringify({
  count, version, connect_s: connectS, sessions: f.sessions, ocpp_calls_per_s: f.ocpp_calls_per_s, p50_ms: f.ocpp_p50_ms, p99_ms: f.ocpp_p99_ms, bus_msgs_per_s: busPerS,
  gateway: { cpu: gwCpu, rss_mb: gwRss }, fleet: { cpu: fleetCpu, rss_mb: fleetRss },
}));
stopAll();
process.exit(g.ocpp_clients === count ? 0 : 1);
