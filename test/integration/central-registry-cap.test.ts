import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { CentralRig } from '../helpers/central-rig.js';

/**
 * Monitor reports arrive over plain HTTP, so a report may name any CP id. Unknown ids register
 * a CP only while the registry is below --max-cps; beyond it they are refused (429) and
 * counted, and reports for known CPs still count.
 */
let rig: CentralRig | undefined;
beforeAll(async () => { rig = await CentralRig.start({ centralArgs: ['--max-cps', '2'] }); }, 120_000);
afterAll(async () => { await rig?.stop(); }, 60_000);

const report = (cpId: string) => ({ v: PROTOCOL_VERSION, cp_id: cpId, monitor_id: `monitor-${cpId}`, kind: 'heartbeat', engine_ok: true, ts: Date.now() });

describe('central registry cap', () => {
  it('refuses reports that would add CPs beyond --max-cps, counts them, and keeps serving the known ones', async () => {
    const r = rig!;
    expect((await r.post('/monitor/report', { token: null, body: report('CP-401') })).status).toBe(202);
    expect((await r.post('/monitor/report', { token: null, body: report('CP-402') })).status).toBe(202);
    for (let i = 0; i < 20; i++) {
      const res = await r.post('/monitor/report', { token: null, body: report(`CP-5${String(i).padStart(2, '0')}`) });
      expect(res.status).toBe(429);
      expect(String(res.body.error)).toMatch(/registry is full/);
    }
    expect((await r.post('/monitor/report', { token: null, body: report('CP-401') })).status).toBe(202);
    const list = (await r.get('/cp')).body.charging_points as Array<{ cp_id: string }>;
    expect(list.map((c) => c.cp_id).sort()).toEqual(['CP-401', 'CP-402']);
    const h = await r.health();
    expect((h.counters as Record<string, number>).monitor_reports_refused).toBe(20);
    expect(h.status).toBe('healthy');
  });
});
