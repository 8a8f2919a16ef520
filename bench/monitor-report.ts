/**
 * What a monitor's report costs the monitor: the same POSTs to a receiver in another process,
 * through fetch (undici) and through node:http with a keep-alive agent (lib/http-post.ts, what
 * the monitor uses), alternated in one run. Prints CPU µs per report and the ratio. Figures only.
 *   npm run bench:monitor-report -- [--reports 20000] [--concurrency 50] [--rounds 3]
 */
import { spawn } from 'node:child_process';
import { postJson } from '../lib/http-post.js';
import { PROTOCOL_VERSION } from '../protocol/index.js';

const arg = (name: string, dflt: string) => { const i = process.argv.indexOf(`--${name}`); return Number(i >= 0 ? process.argv[i + 1] : dflt); };
const reports = arg('reports', '20000');
const concurrency = arg('concurrency', '50');
const rounds = arg('rounds', '3');

const receiver = spawn(process.execPath, ['-e', `
  const s = require('node:http').createServer((q, r) => { q.resume(); q.on('end', () => { r.setHeader('content-type', 'application/json'); r.end('{"ok":true}'); }); });
  s.keepAliveTimeout = 5000;
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));`], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => receiver.kill('SIGKILL'));
const port = await new Promise<number>((r) => receiver.stdout!.once('data', (d: Buffer) => r(Number(d.toString().trim()))));
const url = `http://127.0.0.1:${port}/monitor/report`;
const body = () => ({ v: PROTOCOL_VERSION, cp_id: 'CP-001', monitor_id: 'mon-1', kind: 'heartbeat', engine_ok: true, ts: Date.now() });

const ways: Record<string, () => Promise<unknown>> = {
  fetch: async () => { const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body()), signal: AbortSignal.timeout(5_000) }); await r.text(); },
  'node:http keep-alive': () => postJson(url, body(), { timeoutMs: 5_000 }),
};

async function measure(send: () => Promise<unknown>): Promise<{ usPer: number; perS: number }> {
  let left = reports;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => { while (left-- > 0) await send(); }));
  const c = process.cpuUsage(c0); const s = (performance.now() - t0) / 1000;
  return { usPer: (c.user + c.system) / reports, perS: reports / s };
}

for (const w of Object.values(ways)) await measure(w); // warm-up
const results: Record<string, number[]> = {};
for (let i = 0; i < rounds; i++) for (const [name, w] of Object.entries(ways)) (results[name] ??= []).push((await measure(w)).usPer);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(results.fetch!);
console.log(`${reports} reports × ${rounds} rounds, ${concurrency} in flight, receiver in its own process`);
console.log('| client | CPU µs per report (median) | rounds | ratio to fetch |');
console.log('| --- | ---: | --- | ---: |');
for (const [name, xs] of Object.entries(results)) console.log(`| ${name} | ${median(xs).toFixed(1)} | ${xs.map((x) => x.toFixed(1)).join(', ')} | ${(median(xs) / base).toFixed(2)} |`);
process.exit(0);
