import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { get, request, startCentralProc, type CentralProc } from './central-proc.js';

/**
 * Attacks on central's journal. Before: a line with missing fields crashed central with a stack
 * trace and it never started; a garbled middle line was skipped, dropping the `session_ended`
 * after it (ticket lost, CP busy); ENOSPC failed 240 writes while HTTP answered 202 and
 * /health said healthy, then the restart crashed. Now: a bad line stops the start with one
 * line naming the file and line, `central journal check|repair` say and keep what is valid,
 * and a failed write makes central unhealthy (503) and refuse new work.
 */
const dirs: string[] = [];
const mounts: string[] = [];
const procs: CentralProc[] = [];
afterAll(async () => {
  for (const p of procs) await p.proc.kill('SIGKILL');
  for (const m of mounts) { try { execFileSync('umount', ['-l', m]); } catch { /* gone */ } }
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});
const tmp = async () => { const d = await fs.mkdtemp(path.join(os.tmpdir(), 'sec-journal-')); dirs.push(d); return d; };

const seen = (seq: number, id: string) => JSON.stringify({ seq, e: { t: 'cp_seen', cp_id: id, source: 'file', at: 1 } });
const session = { session_id: 'S-1', cp_id: 'CP-001', driver_id: 'driver-a', request_id: 'r1', status: 'ACTIVE', started_at: 1000, ended_at: null, kw: 0, kwh: 0, eur: 0, price_eur_kwh: 0.4, end_reason: null, interrupted: false, ticket: null, confirmed: true, ticket_sent: false, pending_end: null, telemetry_seq: -1 };
const ticket = { session_id: 'S-1', cp_id: 'CP-001', driver_id: 'driver-a', kwh: 10, eur: 4, price_eur_kwh: 0.4, started_at: 1000, ended_at: 61000, duration_s: 60, reason: 'full', interrupted: false };

async function runCentral(dataDir: string) {
  const p = spawnCli(['central', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--bus-mqtt', 'mqtt://127.0.0.1:1'], { env: { CENTRAL_ADMIN_TOKEN: 'sec-admin-token' } });
  return { ...(await p.exited), lines: p.lines };
}

describe('central journal: never loses data silently', () => {
  it('a line with missing fields stops the start: one line naming the file and the line, exit 2, no stack trace', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'journal.jsonl');
    await fs.writeFile(file, `${seen(1, 'CP-001')}\n${JSON.stringify({ seq: 2, e: { t: 'session_ended', session_id: 'S-1' } })}\n${seen(3, 'CP-002')}\n`);
    const r = await runCentral(dir);
    expect(r.code).toBe(2);
    const text = r.lines.filter((l) => l.trim());
    expect(text, text.join('\n')).toHaveLength(1);
    expect(text[0]).toContain(`journal ${file} line 2: event session_ended: ticket`);
    expect(text.join('\n')).not.toMatch(/\n\s+at /);
  });

  it('a garbled middle line stops the start; check lists it; repair keeps every valid event (the session_end after it) and says what it dropped', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'journal.jsonl');
    const original = [seen(1, 'CP-001'), JSON.stringify({ seq: 2, e: { t: 'session_started', session } }), '{"seq":3,"e":{"t":"telem\u0000\u0001garbage', JSON.stringify({ seq: 4, e: { t: 'session_ended', session_id: 'S-1', ticket } })].join('\n') + '\n';
    await fs.writeFile(file, original);
    const r = await runCentral(dir);
    expect(r.code).toBe(2);
    expect(r.lines.join('\n')).toContain(`journal ${file} line 3: not JSON`);
    expect(await fs.readFile(file, 'utf8')).toBe(original); // a refused start changes nothing

    const check = spawnCli(['central', 'journal', 'check', '--data-dir', dir]);
    expect((await check.exited).code).toBe(1);
    expect(check.lines.join('\n')).toMatch(/4 lines, 3 valid events[\s\S]*line 3: not JSON/);

    const repair = spawnCli(['central', 'journal', 'repair', '--data-dir', dir]);
    expect((await repair.exited).code).toBe(0);
    const out = repair.lines.join('\n');
    expect(out).toMatch(/repaired: kept 3 events, dropped 1 line\(s\), saved in (\S+journal\.rejected-\S+\.jsonl); original kept as (\S+)/);
    const rejected = /saved in (\S+);/.exec(out)![1]!;
    expect(JSON.parse((await fs.readFile(rejected, 'utf8')).trim())).toMatchObject({ line: 3, problem: 'not JSON' });
    expect(await fs.readFile(/original kept as (\S+)/.exec(out)![1]!, 'utf8')).toBe(original);

    // Central starts on the repaired journal, and the session is billed (its session_end was kept).
    const c = await startCentralProc({ dataDir: dir, cps: [] });
    procs.push(c);
    const s = (await get(c.url, '/sessions/S-1')).body;
    expect(s).toMatchObject({ status: 'COMPLETED', ticket: { eur: 4, kwh: 10 } });
  }, 60_000);

  it('a full disk (ENOSPC on a small tmpfs): central says it is unhealthy, answers 503 to new work, and restarts cleanly once space is back', async () => {
    const mnt = await tmp();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
    mounts.push(mnt);
    const c = await startCentralProc({ dataDir: path.join(mnt, 'central') });
    procs.push(c);
    const auth = { authorization: `Bearer ${c.token}` };
    expect((await request(c.url, 'POST', '/cp/CP-001/stop', undefined, auth)).status).toBe(200);
    // Fill the file system to the last byte.
    const filler = path.join(mnt, 'filler');
    const h = await fs.open(filler, 'w');
    try { for (;;) await h.write(Buffer.alloc(4096, 1)); } catch (err) { expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC'); }
    try { for (;;) await h.write(Buffer.alloc(1, 1)); } catch { /* full */ }
    await h.close();

    // The journal's last page may still take a few lines: act until the first write fails.
    const acked = new Map<string, boolean>([['CP-001', true]]);
    let refused: { status: number; body: any } | undefined;
    for (let i = 0; i < 2_000 && !refused; i++) {
      const id = i % 2 ? 'CP-001' : 'CP-002';
      const stop = Math.floor(i / 2) % 2 === 0;
      const r = await request(c.url, 'POST', `/cp/${id}/${stop ? 'stop' : 'resume'}`, undefined, auth);
      if (r.status === 200) acked.set(id, stop);
      else refused = r;
    }
    expect(refused?.status).toBe(503);
    expect(refused!.body.error).toMatch(/ENOSPC/);
    const health = await get(c.url, '/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unhealthy', journal_error: expect.stringMatching(/ENOSPC/) });
    const again = await request(c.url, 'POST', '/cp/CP-002/resume', undefined, auth);
    expect(again.status).toBe(503);
    expect(again.body.error).toMatch(/refusing new work/);
    expect((await get(c.url, '/cp')).status).toBe(200); // reads still answer
    expect(c.proc.child.exitCode).toBeNull();

    // Space back, restart: it starts (a torn tail from the failed write is kept aside, not a crash) with what was saved.
    await fs.rm(filler);
    await c.restart();
    // Every action answered 200 is there; nothing refused is.
    const cps = (await get(c.url, '/cp')).body.charging_points as Array<{ cp_id: string; admin_stopped: boolean }>;
    for (const id of ['CP-001', 'CP-002']) expect(cps.find((x) => x.cp_id === id)!.admin_stopped, id).toBe(acked.get(id) ?? false);
    expect((await get(c.url, '/health')).body.status).toBe('healthy');
    await waitFor(async () => (await request(c.url, 'POST', '/cp/CP-002/stop', undefined, auth)).status === 200, { what: 'new work taken again' });
  }, 60_000);
});
