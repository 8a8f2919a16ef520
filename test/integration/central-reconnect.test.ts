import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ticket } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig, type Json } from '../helpers/central-rig.js';

/**
 * The gateway (the embedded bus) is SIGKILLed and restarted mid-session: central and the
 * engine reconnect on their own, central follows the CP again, and the running session ends
 * with one correct ticket. And a CP that reconnects after its last will (whose seq may be
 * above the engine's own) is followed again, not taken for stale.
 */
let rig: CentralRig | undefined;
beforeAll(async () => {
  rig = await CentralRig.start();
  await rig.addEngine('CP-601', 'ac-22kw', 30);
}, 120_000);
afterAll(async () => { await rig?.stop(); }, 60_000);

describe('central across a gateway restart and lost CP messages', () => {
  it('reconnects, follows the CP and bills the running session once', async () => {
    const r = rig!;
    const q = await r.request('driver-ola', 'REQUEST', 'CP-601');
    const acc = await r.update('driver-ola', (u) => u.request_id === q && u.status === 'ACCEPTED', 'ACCEPTED');
    const sessionId = String(acc.session_id);
    await r.update('driver-ola', (u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId && Number(u.kwh) > 0, 'IN_PROGRESS');

    await r.restartGateway();
    // The test's own recorder lost its broker too: start a fresh record.
    const recorderBack = Date.now();
    await waitFor(async () => ((await r.health()).bus_consumer === 'connected'), { timeoutMs: 60_000, intervalMs: 200, what: 'central reconnected to the bus' });
    // Progress resumes from the same session once everyone is back.
    await waitFor(async () => {
      const s = (await r.get(`/sessions/${sessionId}`)).body;
      return s.status === 'ACTIVE' && (await r.cp('CP-601'))?.state === 'SUPPLYING';
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'CP-601 SUPPLYING the same session after the restart' });
    const kwhBefore = Number((await r.get(`/sessions/${sessionId}`)).body.kwh);
    await waitFor(async () => Number((await r.get(`/sessions/${sessionId}`)).body.kwh) > kwhBefore, { timeoutMs: 60_000, intervalMs: 200, what: 'metering continues after the restart' });

    await waitFor(() => r.records.some((x) => x.at >= recorderBack), { timeoutMs: 60_000, what: 'test recorder receiving again' });
    await r.request('driver-ola', 'STOP');
    const final = await r.update('driver-ola', (u) => u.status === 'COMPLETED' && u.session_id === sessionId, 'COMPLETED', 60_000);
    const end = r.of('cp.status', 'CP-601').find((m) => m.type === 'session_end' && m.session_id === sessionId)!;
    expect((final.ticket as Ticket).kwh).toBeCloseTo(Number(end.kwh), 6);
    await waitFor(async () => (await r.cp('CP-601'))?.state === 'ACTIVATED', { timeoutMs: 30_000, what: 'CP-601 ACTIVATED again' });
    const row = (await r.get(`/sessions/${sessionId}`)).body as Json;
    expect(row).toMatchObject({ status: 'COMPLETED', kwh: (final.ticket as Ticket).kwh });
  }, 180_000);

  it('follows a CP that reconnects with the same boot after a last will with a higher seq', async () => {
    const r = rig!;
    await r.announce('CP-650', 'boot-x');
    await r.status('CP-650', 'ACTIVATED', 1000);
    await waitFor(async () => (await r.cp('CP-650'))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'CP-650 ACTIVATED' });
    await r.status('CP-650', 'DISCONNECTED', Date.now() * 10, { source: 'last_will', reason: 'connection lost' });
    await waitFor(async () => (await r.cp('CP-650'))?.state === 'DISCONNECTED', { timeoutMs: 20_000, what: 'CP-650 DISCONNECTED' });
    await r.announce('CP-650', 'boot-x');
    await r.status('CP-650', 'ACTIVATED', 1001);
    await waitFor(async () => (await r.cp('CP-650'))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'CP-650 ACTIVATED after reconnecting' });
    // An engine status older than the last one applied on this connection is still stale.
    await r.status('CP-650', 'FAULTY', 1000);
    await waitFor(async () => Number(((await r.health()).counters as Json).stale_statuses) >= 1, { timeoutMs: 20_000, what: 'stale status counted' });
    expect((await r.cp('CP-650'))!.state).toBe('ACTIVATED');
  }, 60_000);

  it('a session whose session_end was lost is closed from telemetry once the engine reports it moved on', async () => {
    const r = rig!;
    await r.announce('CP-660', 'boot-y', 0.4);
    await r.status('CP-660', 'ACTIVATED', 1);
    await waitFor(async () => (await r.cp('CP-660'))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'CP-660 ACTIVATED' });
    const q = await r.request('driver-pia', 'REQUEST', 'CP-660');
    const acc = await r.update('driver-pia', (u) => u.request_id === q && u.status === 'ACCEPTED', 'ACCEPTED');
    const sessionId = String(acc.session_id);
    await r.status('CP-660', 'SUPPLYING', 2, { session_id: sessionId });
    await r.publish('cp.telemetry', 'CP-660', { v: 1, type: 'telemetry', cp_id: 'CP-660', session_id: sessionId, kw: 22, kwh: 2.5, eur: 1, seq: 1, ts: Date.now() });
    await waitFor(async () => Number((await r.get(`/sessions/${sessionId}`)).body.kwh) === 2.5, { timeoutMs: 20_000, what: 'telemetry applied' });
    // The engine is ACTIVATED again, but its session_end never arrives.
    const movedOn = Date.now();
    await r.status('CP-660', 'ACTIVATED', 3);
    const final = await r.update('driver-pia', (u) => u.session_id === sessionId && (u.status === 'COMPLETED' || u.status === 'INTERRUPTED'), 'final update', 30_000);
    const billedAt = Date.now();
    expect(final.status).toBe('INTERRUPTED');
    // It ended when the engine moved on, not when central's wait for the CP's own record ran out.
    const endedAt = Number((final.ticket as Json).ended_at);
    expect(endedAt - movedOn).toBeLessThan(billedAt - endedAt);
    expect(final.ticket).toMatchObject({ kwh: 2.5, eur: 1, price_eur_kwh: 0.4, interrupted: true, reason: 'disconnected' });
    await waitFor(async () => (await r.cp('CP-660'))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'CP-660 free again' });
    const q2 = await r.request('driver-pia', 'REQUEST', 'CP-660');
    expect(await r.update('driver-pia', (u) => u.request_id === q2, 'next answer')).toMatchObject({ status: 'ACCEPTED' });
  }, 60_000);
});
