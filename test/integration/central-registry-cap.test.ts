import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig } from '../helpers/central-rig.js';

/**
 * Monitor reports arrive over HTTP, so a report may name any CP id. They never add a CP to
 * the registry (a CP joins when its engine speaks through the gateway, or from --cp-file):
 * a report for an unknown CP is refused (404) and counted, and reports for known CPs count.
 */
let rig: CentralRig | undefined;
beforeAll(async () => { rig = await CentralRig.start({ centralArgs: ['--max-cps', '2'] }); }, 120_000);
afterAll(async () => { await rig?.stop(); }, 60_000);

const report = (cpId: string) => ({ v: PROTOCOL_VERSION, cp_id: cpId, monitor_id: `monitor-${cpId}`, kind: 'heartbeat', engine_ok: true, ts: Date.now() });

describe('central registry and monitor reports', () => {
  it('refuses reports for CPs it does not know, counts them, and keeps serving the known ones', async () => {
    const r = rig!;
    await r.announce('CP-401');
    await waitFor(() => r.cp('CP-401'), { what: 'CP-401 registered by its announce' });
    expect((await r.post('/monitor/report', { token: null, body: report('CP-401') })).status).toBe(202);
    for (let i = 0; i < 20; i++) {
      const res = await r.post('/monitor/report', { token: null, body: report(`CP-5${String(i).padStart(2, '0')}`) });
      expect(res.status).toBe(404);
      expect(String(res.body.error)).toMatch(/do not register CPs/);
    }
    expect((await r.post('/monitor/report', { token: null, body: report('CP-401') })).status).toBe(202);
    const list = (await r.get('/cp')).body.charging_points as Array<{ cp_id: string }>;
    expect(list.map((c) => c.cp_id)).toEqual(['CP-401']);
    const h = await r.health();
    expect((h.monitor_reports_refused_by_reason as Record<string, number>).unknown_cp).toBe(20);
    expect(h.status).toBe('healthy');
  });
});
