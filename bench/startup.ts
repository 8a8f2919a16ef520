/**
 * Start-up benchmark: runs `npm start -- --cps N --drivers M` (default 5 and 2) on free ports
 * as a user would and prints the time from the command to: gateway healthy, central healthy,
 * "network up" (every process started) and the first completed session at central. Then
 * Ctrl-C (SIGINT to the process group) and the time until everything has stopped.
 *   npm run bench:startup -- [cps] [drivers]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const cps = process.argv[2] ?? '5';
const drivers = process.argv[3] ?? '2';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const freePort = () => new Promise<number>((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
const [centralPort, mqttPort, gwHttp, controlPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-startup-'));

const t0 = performance.now();
const child = spawn('npm', ['start', '--', '--cps', cps, '--drivers', drivers], {
  cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, CENTRAL_PORT: String(centralPort), GATEWAY_MQTT_PORT: String(mqttPort), GATEWAY_HTTP_PORT: String(gwHttp), EVCHARGING_CONTROL_PORT: String(controlPort), EVCHARGING_HEALTH_BASE_PORT: '0', EVCHARGING_DATA_DIR: dataDir },
});
const marks: Record<string, number> = {};
const mark = (name: string) => { marks[name] ??= (performance.now() - t0) / 1000; };
let buf = '';
child.stdout!.setEncoding('utf8');
child.stdout!.on('data', (d: string) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (/"component":"gateway".*"msg":"healthy"/.test(line)) mark('gateway healthy');
    if (/"component":"central".*"msg":"healthy"/.test(line)) mark('central healthy');
    if (/network up/.test(line)) mark('network up (every process started)');
  }
});
child.stderr!.resume();
const kill = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } };
process.on('exit', kill);

const deadline = Date.now() + 300_000;
for (;;) {
  if (Date.now() > deadline) { console.error('no completed session within 300 s'); process.exit(1); }
  try {
    const body = await (await fetch(`http://127.0.0.1:${centralPort}/sessions`)).json() as unknown;
    const sessions = (Array.isArray(body) ? body : (body as { sessions?: unknown[] }).sessions ?? []) as Array<{ ended_at?: unknown }>;
    if (sessions.some((s) => s.ended_at !== undefined && s.ended_at !== null)) { mark('first completed session'); break; }
  } catch { /* central not up yet */ }
  await new Promise((r) => setTimeout(r, 100));
}
const stopAt = performance.now();
process.kill(-child.pid!, 'SIGINT');
await new Promise((r) => child.on('exit', r));
const stopS = (performance.now() - stopAt) / 1000;

console.log(`start-up benchmark: npm start -- --cps ${cps} --drivers ${drivers} (${os.cpus().length} cores)`);
for (const [name, s] of Object.entries(marks).sort((a, b) => a[1] - b[1])) console.log(`  ${name.padEnd(38)} ${s.toFixed(2)} s`);
console.log(`  Ctrl-C to every process stopped        ${stopS.toFixed(2)} s`);
console.log(JSON.stringify({ cps: Number(cps), drivers: Number(drivers), ...Object.fromEntries(Object.entries(marks).map(([k, v]) => [k.split(' (')[0]!.replace(/ /g, '_'), v])), stop_s: stopS }));
process.exit(0);
