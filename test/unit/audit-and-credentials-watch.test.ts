import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, readAudit } from '../../lib/audit.js';
import { hashSecret, writeCredentials } from '../../registry/credentials.js';
import { followCredentials, watchCredentials } from '../../registry/credentials-watch.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-')); dirs.push(d); return d; };
afterEach(() => { for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true }); });

describe('audit log', () => {
  it('appends durably, keeps earlier runs, rate-limits refusals per source and says how many it suppressed', () => {
    const file = path.join(tmp(), 'audit.jsonl');
    let now = 1_000_000;
    const a = new AuditLog({ file, burst: 3, now: () => now });
    a.record({ identity: 'admin', source: '10.0.0.1', action: 'cp.stop', outcome: 'ok', params: { cp_id: 'CP-001' } });
    for (let i = 0; i < 10; i++) a.record({ identity: 'anonymous', source: '10.0.0.9', action: 'monitor.report', outcome: 'refused' });
    a.record({ identity: 'anonymous', source: '10.0.0.8', action: 'monitor.report', outcome: 'refused' }); // another source: its own budget
    expect(a.counters).toMatchObject({ written: 5, suppressed: 7 });
    now += 60_000;
    a.record({ identity: 'anonymous', source: '10.0.0.9', action: 'monitor.report', outcome: 'refused' });
    a.close();
    const lines = readAudit(file);
    expect(lines).toHaveLength(6);
    expect(lines.at(-1)).toMatchObject({ source: '10.0.0.9', suppressed: 7 });
    expect(lines[0]).toMatchObject({ identity: 'admin', action: 'cp.stop', params: { cp_id: 'CP-001' }, at: new Date(1_000_000).toISOString() });
    // A torn last line (crash mid-write) is skipped; a new run shows what earlier ones wrote.
    fs.appendFileSync(file, '{"at":"x","act');
    const b = new AuditLog({ file });
    expect(b.list({ action: 'cp.' })).toHaveLength(1);
    expect(b.list()).toHaveLength(6);
    b.close();
  });
});

describe('credentials watch', () => {
  it('sees a registration and a revocation in the file, keeps the last good set on a broken file, and kicks the revoked identity', async () => {
    const file = path.join(tmp(), 'credentials.json');
    const cp1 = hashSecret('CP-001', 'cp', 's1');
    writeCredentials(file, [cp1]);
    const map = new Map([[cp1.id, cp1]]);
    const kicked: string[] = [];
    const clients = [{ id: 'CP-001', close: () => kicked.push('CP-001') }, { id: 'CP-002', close: () => kicked.push('CP-002') }];
    const errors: string[] = [];
    const w = followCredentials(file, map, { clients: () => clients, identityOf: (c) => c.id, onError: (e) => errors.push(e.message), pollMs: 100 });
    try {
      const cp2 = hashSecret('CP-002', 'cp', 's2');
      writeCredentials(file, [cp1, cp2]);
      await waitFor(() => map.has('CP-002'), { what: 'registration seen' });
      fs.writeFileSync(file, '{ not json');
      await waitFor(() => errors.length > 0, { what: 'broken file reported' });
      expect(map.has('CP-002')).toBe(true); // last good set kept
      writeCredentials(file, [{ ...cp1, revoked_at: 1 }, cp2]);
      await waitFor(() => kicked.includes('CP-001'), { what: 'revoked CP kicked' });
      expect(kicked).toEqual(['CP-001']);
      expect(map.get('CP-001')!.revoked_at).toBe(1);
      expect(errors).toHaveLength(1); // said once
    } finally { w.close(); }
    const w2 = watchCredentials(file);
    expect(w2.get('CP-002')?.role).toBe('cp');
    w2.close();
  });
});
