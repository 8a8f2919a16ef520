import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { get, request, rssMb, startCentralProc, type CentralProc } from './central-proc.js';

/**
 * Attack: 200 live-feed clients that never read (raw Python sockets, 4 KB receive buffers)
 * while the picture changes several times a second. Before: res.write ignored backpressure and
 * central's RSS grew by gigabytes in seconds. Now a client that is backed up is written nothing
 * more (only the newest snapshot is kept for it), and dropped once stalled too long; a client
 * that reads gets in although the non-readers hold every slot (the longest stalled makes room)
 * and keeps getting every change.
 */
const NONREADERS = fileURLToPath(new URL('./fixtures/sse-nonreaders.py', import.meta.url));
let central: CentralProc | undefined;
let attacker: ReturnType<typeof spawn> | undefined;
afterAll(async () => { attacker?.kill('SIGKILL'); await central?.stop(); });

/** A well-behaved feed reader: the last snapshot it parsed. */
function reader(url: string) {
  let lastSnapshot: any;
  let buf = '';
  const req = http.get(`${url}/events`, { agent: false }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = ev.split('\n').find((l) => l.startsWith('data: '));
        if (data) lastSnapshot = JSON.parse(data.slice(6));
      }
    });
  });
  req.on('error', () => undefined);
  return { get last() { return lastSnapshot; }, close: () => req.destroy() };
}

describe('slow SSE clients', () => {
  it('200 clients that never read, with frequent changes: RSS stays bounded, readers keep up, stalled clients are dropped and counted', async () => {
    const cps = Array.from({ length: 1000 }, (_, i) => `CP-${String(i + 1).padStart(4, '0')}`);
    central = await startCentralProc({ cps, args: ['--sse-max-stall-ms', '4000'] });
    const c = central;
    attacker = spawn('python3', [NONREADERS, '127.0.0.1', String(c.port), '200'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let connected = false;
    attacker.stdout!.on('data', (d: Buffer) => { if (/connected 200/.test(d.toString())) connected = true; });
    await waitFor(() => connected, { timeoutMs: 30_000, what: 'non-reading clients connected' });
    await waitFor(async () => (await get(c.url, '/health')).body.sse_clients >= 200, { what: '200 feed clients' });
    const auth = { authorization: `Bearer ${c.token}` };
    // Changes until the non-readers' sockets are backed up (the kernel takes the first snapshots).
    let stop = true;
    await waitFor(async () => {
      await request(c.url, 'POST', `/cp/CP-0002/${stop ? 'stop' : 'resume'}`, undefined, auth);
      stop = !stop;
      return (await get(c.url, '/health')).body.sse.skipped_behind > 0;
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'non-readers backed up' });
    // Every slot is taken by a non-reader: a reader still gets in, in the place of the one stalled longest.
    expect((await get(c.url, '/health')).body.sse_clients).toBe(200);
    const good = reader(c.url);
    try {
      await waitFor(() => good.last, { what: 'first snapshot for the reader' });
      const before = await rssMb(c.proc.child.pid!);
      // 30 changes, each waited for by the reader (so they are spread over pushes, not coalesced into one).
      for (let i = 0; i < 30; i++) {
        const stop = i % 2 === 0;
        expect((await request(c.url, 'POST', `/cp/CP-0001/${stop ? 'stop' : 'resume'}`, undefined, auth)).status).toBe(200);
        await waitFor(() => good.last?.charging_points?.find((p: any) => p.cp_id === 'CP-0001')?.admin_stopped === stop, { what: `reader sees change ${i}` });
      }
      const after = await rssMb(c.proc.child.pid!);
      expect(after - before, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MB`).toBeLessThan(120);
      // Backed-up clients were skipped, not written to; after the stall limit they are dropped.
      const h1 = (await get(c.url, '/health')).body;
      expect(h1.sse.skipped_behind).toBeGreaterThan(0);
      await waitFor(async () => (await get(c.url, '/health')).body.sse.dropped_slow >= 200, { timeoutMs: 30_000, what: 'stalled clients dropped' });
      const h2 = (await get(c.url, '/health')).body;
      expect(h2.sse_clients).toBe(1); // the reader is still there
      expect(h2.sse.refused_full).toBe(0);
    } finally { good.close(); }
  }, 120_000);
});
