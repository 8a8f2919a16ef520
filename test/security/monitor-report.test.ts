import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { hashSecret } from '../../registry/credentials.js';
import { get, request, startCentralProc, type CentralProc } from './central-proc.js';

/**
 * Attacks: one unauthenticated POST /monitor/report `kind: fault` turned any CP FAULTY; 9,997
 * fake CP ids registered 9,997 CPs. Now, with --credentials, a report needs its monitor's
 * credentials (401), a monitor reports only for its own CP (403), and no report registers a CP
 * (404); each refusal is counted and in the audit log with its source address.
 */
let central: CentralProc | undefined;
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sec-monitor-'));
  const creds = path.join(dir, 'credentials.json');
  await fs.writeFile(creds, JSON.stringify({ clients: [hashSecret('monitor-CP-001', 'monitor', 'good-secret-1'), { ...hashSecret('mon-b', 'monitor', 'good-secret-2'), cp_id: 'CP-002' }, hashSecret('CP-001', 'cp', 'cp-secret-1')] }));
  central = await startCentralProc({ args: ['--credentials', creds] });
}, 60_000);
afterAll(async () => { await central?.stop(); await fs.rm(dir, { recursive: true, force: true }); });

const report = (cpId: string, kind: 'fault' | 'heartbeat' = 'fault') => ({ v: PROTOCOL_VERSION, cp_id: cpId, monitor_id: 'whoever', kind, engine_ok: kind !== 'fault', reason: 'forged', ts: Date.now() });
const post = (body: unknown, token?: string) => request(central!.url, 'POST', '/monitor/report', body, token ? { authorization: `Bearer ${token}` } : {});
const cp = async (id: string) => (await get(central!.url, `/cp/${id}`)).body;

describe('monitor reports need their monitor\'s credentials', () => {
  it('refuses a report without credentials, with a wrong secret, with a CP\'s credentials, or for another CP', async () => {
    const before = await cp('CP-001');
    expect((await post(report('CP-001'))).status).toBe(401);
    expect((await post(report('CP-001'), 'monitor-CP-001:wrong-secret')).status).toBe(401);
    expect((await post(report('CP-001'), 'CP-001:cp-secret-1')).status).toBe(401); // right secret, wrong role
    expect((await post(report('CP-001'), 'garbage')).status).toBe(401);
    const other = await post(report('CP-001'), 'mon-b:good-secret-2');
    expect(other.status).toBe(403);
    expect(other.body.error).toMatch(/may report only for CP-002/);
    // Nothing changed: CP-001's monitor status is as it was (never KO).
    expect((await cp('CP-001')).monitor_status).toBe(before.monitor_status);
    expect((await cp('CP-001')).monitor_status).not.toBe('KO');
  });

  it('takes a report from the CP\'s own monitor, and stamps it with the authenticated id', async () => {
    const ok = await post(report('CP-002', 'heartbeat'), 'mon-b:good-secret-2');
    expect(ok.status).toBe(202);
    expect((await cp('CP-002')).monitor_status).toBe('OK');
    const fault = await post(report('CP-001'), 'monitor-CP-001:good-secret-1');
    expect(fault.status).toBe(202);
    expect((await cp('CP-001')).monitor_status).toBe('KO');
  });

  it('10,000 reports for fake CP ids register nothing and leave the journal as it was', async () => {
    const journal = path.join(central!.dataDir, 'journal.jsonl');
    const size = (await fs.stat(journal)).size;
    const cpsBefore = (await get(central!.url, '/cp')).body.charging_points.length;
    // Unauthenticated, and as a real monitor naming CPs it does not own: both refused.
    const statuses = new Map<number, number>();
    const ids = Array.from({ length: 10_000 }, (_, i) => `FAKE-${i}`);
    for (let i = 0; i < ids.length; i += 50) {
      // A fresh connection each, as curl in a loop would.
      const send = (id: string, j: number) => post(report(id, 'heartbeat'), j % 2 ? 'mon-b:good-secret-2' : undefined).then((r) => r.status);
      const batch = await Promise.all(ids.slice(i, i + 50).map((id, j) => send(id, j)));
      for (const s of batch) statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 5_000, 403: 5_000 });
    expect((await get(central!.url, '/cp')).body.charging_points.length).toBe(cpsBefore);
    expect((await fs.stat(journal)).size).toBe(size);
    // With a valid credential for a CP central does not know: refused too, nothing registered.
    const h = (await get(central!.url, '/health')).body;
    expect(h.monitor_reports_refused_by_reason).toMatchObject({ unauthenticated: expect.any(Number), other_cp: expect.any(Number) });
    expect(h.status).toBe('healthy');
  }, 120_000);

  it('every refusal is in the audit log (rate-limited per source), readable with the admin token only', async () => {
    expect((await get(central!.url, '/audit')).status).toBe(401);
    const a = await get(central!.url, '/audit?action=monitor.report&limit=1000', { authorization: `Bearer ${central!.token}` });
    expect(a.status).toBe(200);
    const refused = a.body.entries.filter((e: any) => e.outcome === 'refused');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]).toMatchObject({ action: 'monitor.report', source: '127.0.0.1', params: { cp_id: 'CP-001', kind: 'fault' } });
    expect(a.body.counters.suppressed).toBeGreaterThan(9_000); // an attacker cannot fill the disk through the audit log
    // Durable: the file holds them too.
    const text = await fs.readFile(path.join(central!.dataDir, 'audit.jsonl'), 'utf8');
    expect(text.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(refused.length);
  });
});
