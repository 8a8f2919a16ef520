import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ticket } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig, type Json } from '../helpers/central-rig.js';

/**
 * Central killed with SIGKILL mid-session and restarted on the same data dir: the session is
 * still there, the driver's STOP sent while central was down is handled once it is back, and
 * the engine's session_end, delivered again and again (the bus is at-least-once), bills the
 * session exactly once, across a second crash too.
 */
let rig: CentralRig | undefined;
beforeAll(async () => {
  rig = await CentralRig.start();
  // Slow enough that the vehicle does not fill up during the test.
  await rig.addEngine('CP-301', 'ac-22kw', 30);
}, 120_000);
afterAll(async () => { await rig?.stop(); }, 60_000);

const finals = (r: CentralRig, sessionId: string) => r.of('driver.updates', 'driver-kim')
  .filter((u) => (u.status === 'COMPLETED' || u.status === 'INTERRUPTED') && u.session_id === sessionId);
const distinct = (updates: Json[]) => new Set(updates.map((u) => JSON.stringify(u.ticket)));

describe('central SIGKILL and restart', () => {
  it('keeps the session, handles what queued meanwhile, and bills it once however often session_end arrives', async () => {
    const r = rig!;
    const requestId = await r.request('driver-kim', 'REQUEST', 'CP-301');
    const acc = await r.update('driver-kim', (u) => u.request_id === requestId && u.status === 'ACCEPTED', 'ACCEPTED');
    const sessionId = String(acc.session_id);
    await r.update('driver-kim', (u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId && Number(u.kwh) > 0, 'IN_PROGRESS with energy');

    await r.killCentral();
    expect(r.central!.child.signalCode).toBe('SIGKILL');
    const journal = await fs.readFile(path.join(r.dir, 'central', 'journal.jsonl'), 'utf8');
    expect(journal).toContain(sessionId);

    // While central is down the driver stops; the request waits in the broker for central's session.
    const stopId = await r.request('driver-kim', 'STOP');
    await waitFor(() => r.records.some((x) => x.topic === 'driver.requests' && x.value.request_id === stopId), { timeoutMs: 10_000, what: 'STOP on the bus' });

    await r.startCentral();
    const afterRestart = (await r.sessions()).filter((s) => s.session_id === sessionId);
    expect(afterRestart).toHaveLength(1);
    expect(afterRestart[0]).toMatchObject({ cp_id: 'CP-301', driver_id: 'driver-kim', request_id: requestId });

    // The queued STOP is handled: STOP_SUPPLY, the engine's session_end, one COMPLETED ticket.
    const final = await r.update('driver-kim', (u) => u.status === 'COMPLETED' && u.session_id === sessionId, 'COMPLETED after restart', 45_000);
    const end = r.records.find((x) => x.topic === 'cp.status' && x.value.type === 'session_end' && x.value.session_id === sessionId)!;
    expect(end).toBeDefined();
    const t = final.ticket as Ticket;
    expect(t.kwh).toBeCloseTo(Number(end.value.kwh), 6);
    expect(t.eur).toBe(Math.round(Number(end.value.kwh) * Number(end.value.price_eur_kwh) * 100) / 100);
    expect(t.reason).toBe('driver_stop');
    const billed = (await r.get(`/sessions/${sessionId}`)).body;
    expect(billed).toMatchObject({ status: 'COMPLETED', kwh: t.kwh, eur: t.eur });

    // The same session_end again, twice: ignored (counted), still one ticket.
    await r.publish('cp.status', 'CP-301', end.raw);
    await r.publish('cp.status', 'CP-301', end.raw);
    await waitFor(async () => Number(((await r.health()).counters as Json).duplicate_session_ends) >= 2, { timeoutMs: 20_000, what: 'two repeated session_ends counted' });
    expect((await r.get(`/sessions/${sessionId}`)).body).toEqual(billed);

    // A second crash, a restart, and the session_end once more: still billed once, with the same ticket.
    await r.killCentral();
    await r.startCentral();
    expect((await r.get(`/sessions/${sessionId}`)).body).toEqual(billed);
    await r.publish('cp.status', 'CP-301', end.raw);
    await waitFor(async () => Number(((await r.health()).counters as Json).duplicate_session_ends) >= 1, { timeoutMs: 20_000, what: 'repeated session_end counted after the restart' });
    expect((await r.get(`/sessions/${sessionId}`)).body).toEqual(billed);
    expect((await r.sessions()).filter((s) => s.session_id === sessionId)).toHaveLength(1);
    expect(distinct(finals(r, sessionId)).size).toBe(1);

    // And the CP takes the next session.
    const next = await r.request('driver-kim', 'REQUEST', 'CP-301');
    expect(await r.update('driver-kim', (u) => u.request_id === next, 'answer to the next request')).toMatchObject({ status: 'ACCEPTED' });
  }, 150_000);

  it('a session running through the crash keeps metering and is billed from the CP record when it ends', async () => {
    const r = rig!;
    const active = (await r.sessions()).find((s) => s.status === 'ACTIVE' && s.cp_id === 'CP-301')!;
    expect(active).toBeDefined();
    const sessionId = String(active.session_id);
    await r.update('driver-kim', (u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId && Number(u.kwh) > 0, 'IN_PROGRESS');
    await r.killCentral();
    await r.startCentral();
    // Progress goes on after the restart, from the same session.
    const seenAt = Date.now();
    await waitFor(() => r.records.some((x) => x.topic === 'driver.updates' && x.at > seenAt && x.value.status === 'IN_PROGRESS' && x.value.session_id === sessionId),
      { timeoutMs: 30_000, what: 'IN_PROGRESS after the restart' });
    await r.request('driver-kim', 'STOP');
    const final = await r.update('driver-kim', (u) => u.status === 'COMPLETED' && u.session_id === sessionId, 'COMPLETED');
    const end = r.records.find((x) => x.topic === 'cp.status' && x.value.type === 'session_end' && x.value.session_id === sessionId)!;
    expect((final.ticket as Ticket).kwh).toBeCloseTo(Number(end.value.kwh), 6);
    expect(distinct(finals(r, sessionId)).size).toBe(1);
  }, 120_000);
});
