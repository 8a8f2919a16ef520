/**
 * Central's live feed under clients that never read: a real central process with N preloaded
 * CPs (a large snapshot), K raw sockets (Python, 4 KB receive buffers) that open GET /events
 * and never read a byte, then C admin stop/resume changes each seen by one well-behaved reader.
 * Prints central's RSS before and after, the snapshot size and the feed's counters
 * (skipped_behind, dropped_slow). Before the bounded feed, RSS grew by gigabytes here.
 *   npx tsx bench/sse-slow-clients.ts [cps=1000] [clients=200] [changes=30]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [N, K, C] = [Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 200), Number(process.argv[4] ?? 30)];
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const freePort = () => new Promise<number>((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sse-'));
const children: ChildProcess[] = [];
const cleanup = () => { for (const c of children) c.kill('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); };
const until = async (what: string, probe: () => Promise<boolean> | boolean, ms = 120_000) => {
  const end = Date.now() + ms;
  while (!(await Promise.resolve().then(probe).catch(() => false))) {
    if (Date.now() > end) { cleanup(); throw new Error(`timed out: ${what}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
};
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const port = await freePort();
fs.writeFileSync(path.join(dir, 'cps.json'), JSON.stringify(Array.from({ length: N }, (_, i) => `CP-${String(i + 1).padStart(5, '0')}`)));
const central = spawn(process.execPath, [path.join(ROOT, 'bin', 'evcharging.js'), 'central', '--host', '127.0.0.1', '--port', String(port), '--data-dir', path.join(dir, 'data'),
  '--cp-file', path.join(dir, 'cps.json'), '--bus-mqtt', `mqtt://127.0.0.1:${await freePort()}`, '--sse-max-stall-ms', '5000'],
{ stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'warn', CENTRAL_ADMIN_TOKEN: 'bench-sse-token' } });
children.push(central);
const base = `http://127.0.0.1:${port}`;
const health = async () => (await (await fetch(`${base}/health`)).json()) as { sse_clients: number; sse: Record<string, number> };
await until('central', async () => (await fetch(`${base}/health`)).ok);
const snapshotBytes = (await (await fetch(`${base}/cp`)).text()).length;
const py = spawn('python3', [path.join(ROOT, 'test', 'security', 'fixtures', 'sse-nonreaders.py'), '127.0.0.1', String(port), String(K)], { stdio: 'ignore' });
children.push(py);
await until('non-readers connected', async () => (await health()).sse_clients >= K);
// Changes until the non-readers are backed up (the kernel's socket buffers take the first snapshots).
let warm = 0;
await until('non-readers backed up', async () => {
  await fetch(`${base}/cp/CP-00002/${warm++ % 2 ? 'resume' : 'stop'}`, { method: 'POST', headers: { authorization: 'Bearer bench-sse-token' } });
  return ((await health()).sse.skipped_behind ?? 0) > 0;
});
const before = rss(central.pid!);
let last: { charging_points?: Array<{ cp_id: string; admin_stopped: boolean }> } = {};
let buf = '';
http.get(`${base}/events`, { agent: false }, (res) => {
  res.setEncoding('utf8');
  res.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) { const ev = buf.slice(0, i); buf = buf.slice(i + 2); const l = ev.split('\n').find((x) => x.startsWith('data: ')); if (l) last = JSON.parse(l.slice(6)); }
  });
}).on('error', () => undefined);
let peak = before;
const t0 = Date.now();
for (let i = 0; i < C; i++) {
  const stop = i % 2 === 0;
  await fetch(`${base}/cp/CP-00001/${stop ? 'stop' : 'resume'}`, { method: 'POST', headers: { authorization: 'Bearer bench-sse-token' } });
  await until(`change ${i}`, () => last.charging_points?.find((c) => c.cp_id === 'CP-00001')?.admin_stopped === stop);
  peak = Math.max(peak, rss(central.pid!));
}
const ms = Date.now() - t0;
const after = rss(central.pid!);
const h = await health();
console.log(`(${warm} warm-up changes)`);
console.log(`cps ${N}, snapshot ${(snapshotBytes / 1024).toFixed(0)} KB, ${K} non-reading clients, ${C} changes in ${ms} ms (${(C / (ms / 1000)).toFixed(1)}/s)`);
console.log(`central RSS ${before.toFixed(0)} MB → ${after.toFixed(0)} MB (peak ${peak.toFixed(0)} MB)`);
console.log(`feed: ${JSON.stringify(h.sse)}, clients now ${h.sse_clients}`);
cleanup();
process.exit(0);
