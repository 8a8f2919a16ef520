/**
 * Fleet benchmark: one gateway (embedded bus, dev mode) and `evcharging fleet --count N`
 * (default 1000) on this machine. Waits until every CP is connected to the gateway, checks
 * that every health port answers PING, then measures CPU and memory of both processes at
 * rest and while every CP supplies a session (telemetry once a second each), per CP.
 *   npm run bench:fleet -- [count] [sample seconds]
 */
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { PROTOCOL_VERSION, embeddedBusTopic, encode, BUS_TOPICS, type CentralCommandMsg } from '../protocol/index.js';
import { cpuShare, rssMb } from './proc-stats.js';
/** Every simulated CP connects from one address: lift the gateway's pending and per-address limits (a real site keeps them, docs/security-gateway.md). */
const ONE_ADDRESS_LIMITS = ['--max-pending', '100000', '--max-pending-per-address', '100000', '--connect-rate-per-address', '100000'];

const count = Number(process.argv[2] ?? 1000);
const sampleS = Number(process.argv[3] ?? 20);
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
const stopAll = () => { for (const c of children) c.kill('SIGKILL'); };
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));
const json = async (url: string) => (await fetch(url)).json() as Promise<Record<string, unknown>>;
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try { const v = await probe(); if (v !== undefined) return v; } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('PING\n'));
    s.setTimeout(5_000, () => { s.destroy(); resolve(false); });
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('OK')); });
    s.on('error', () => resolve(false));
  });
}

const [mqttPort, gwHttp, fleetHttp] = [await freePort(), await freePort(), await freePort()];
const gateway = run(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp), ...ONE_ADDRESS_LIMITS]);
await until('gateway healthy', async () => ((await json(`http://127.0.0.1:${gwHttp}/health`)).status === 'ok' ? true : undefined), 60_000);
const t0 = Date.now();
const fleet = run(['fleet', '--count', String(count), '--mqtt', `mqtt://127.0.0.1:${mqttPort}`, '--http-port', String(fleetHttp), '--stats-s', '3600']);
await until(`${count} CPs connected`, async () => {
  const [f, g] = await Promise.all([json(`http://127.0.0.1:${fleetHttp}/health`), json(`http://127.0.0.1:${gwHttp}/health`)]);
  return f.connected === count && Number(g.clients) >= count && (f.states as Record<string, number>).ACTIVATED === count ? true : undefined;
}, 300_000);
const connectS = (Date.now() - t0) / 1000;
const cps = (await (await fetch(`http://127.0.0.1:${fleetHttp}/cps`)).json()) as Array<{ cp_id: string; health_port: number }>;
let healthy = 0;
for (let i = 0; i < cps.length; i += 100) healthy += (await Promise.all(cps.slice(i, i + 100).map((c) => ping(c.health_port)))).filter(Boolean).length;

const [fleetCpu, gwCpu] = await cpuShare([fleet.pid!, gateway.pid!], sampleS * 1000);
const [fleetRss, gwRss] = [rssMb(fleet.pid!), rssMb(gateway.pid!)];
const gw = await json(`http://127.0.0.1:${gwHttp}/health`);

// Load: start a session at every CP, as central would (a command on the embedded bus).
const svc = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `bench-${process.pid}` });
for (const [i, c] of cps.entries()) {
  const cmd: CentralCommandMsg = { v: PROTOCOL_VERSION, command_id: `bench-${i}`, cp_id: c.cp_id, command: 'START_SUPPLY', session_id: `bench-s-${i}`, driver_id: 'driver-bench', ts: Date.now() };
  await svc.publishAsync(embeddedBusTopic(BUS_TOPICS.centralCommands, c.cp_id), encode(cmd), { qos: 1 });
}
await until('every CP SUPPLYING', async () => ((await json(`http://127.0.0.1:${fleetHttp}/health`)).states as Record<string, number>).SUPPLYING === count ? true : undefined, 120_000);
let telemetry = 0;
await svc.subscribeAsync(`bus/${BUS_TOPICS.cpTelemetry}/#`);
svc.on('message', () => { telemetry++; });
const [fleetCpuLoad, gwCpuLoad] = await cpuShare([fleet.pid!, gateway.pid!], sampleS * 1000);
const telemetryPerS = telemetry / sampleS;
const [fleetRssLoad, gwRssLoad] = [rssMb(fleet.pid!), rssMb(gateway.pid!)];
await svc.endAsync();

const pct = (x: number, d = 1) => `${(x * 100).toFixed(d)}%`;
console.log(`fleet benchmark: ${count} CPs (own MQTT connection + health port each) against one gateway, ${sampleS}s at rest`);
console.log(`  all connected and ACTIVATED after  ${connectS.toFixed(1)} s`);
console.log(`  health ports answering PING        ${healthy} / ${count}`);
console.log(`  gateway clients                    ${String(gw.clients)}`);
console.log(`  fleet process   CPU ${pct(fleetCpu!)} of a core   RSS ${fleetRss.toFixed(0)} MB`);
console.log(`  gateway process CPU ${pct(gwCpu!)} of a core   RSS ${gwRss.toFixed(0)} MB`);
console.log(`  per CP: fleet CPU ${pct(fleetCpu! / count, 4)} of a core, fleet memory ${((fleetRss * 1024) / count).toFixed(0)} KB, gateway memory ${((gwRss * 1024) / count).toFixed(0)} KB`);
console.log(`while all ${count} CPs supply a session (telemetry bridged to the bus: ${telemetryPerS.toFixed(0)} msg/s):`);
console.log(`  fleet process   CPU ${pct(fleetCpuLoad!)} of a core   RSS ${fleetRssLoad.toFixed(0)} MB`);
console.log(`  gateway process CPU ${pct(gwCpuLoad!)} of a core   RSS ${gwRssLoad.toFixed(0)} MB`);
console.log(`  per CP: fleet CPU ${pct(fleetCpuLoad! / count, 4)} of a core, gateway CPU ${pct(gwCpuLoad! / count, 4)} of a core`);
console.log(JSON.stringify({
  count, connect_s: connectS, healthy, idle: { fleet_cpu: fleetCpu, gateway_cpu: gwCpu, fleet_rss_mb: fleetRss, gateway_rss_mb: gwRss },
  supplying: { fleet_cpu: fleetCpuLoad, gateway_cpu: gwCpuLoad, fleet_rss_mb: fleetRssLoad, gateway_rss_mb: gwRssLoad, telemetry_per_s: telemetryPerS },
}));
stopAll();
process.exit(healthy === count ? 0 : 1);
