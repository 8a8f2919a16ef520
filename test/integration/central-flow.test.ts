import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ticket } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig, type Json } from '../helpers/central-rig.js';

/**
 * The charging flow through a real central process: a real gateway (embedded bus), a real
 * engine process, and driver requests put on the bus by the test. The ticket must bill what
 * the engine metered (its session_end) at the profile price.
 */
let rig: CentralRig | undefined;
beforeAll(async () => {
  rig = await CentralRig.start();
  await rig.addEngine('CP-101', 'dc-50kw', 300);
}, 120_000);
afterAll(async () => { await rig?.stop(); }, 60_000);

describe('central: request → supply → stop → ticket', () => {
  it('accepts, starts the engine, streams progress, and bills the session_end exactly', async () => {
    const r = rig!;
    const price = Number((await r.cp('CP-101'))!.price_eur_kwh);
    expect(price).toBe(0.49); // dc-50kw profile, as the engine announced it

    const requestId = await r.request('driver-ann', 'REQUEST', 'CP-101');
    const accepted = await r.update('driver-ann', (u) => u.request_id === requestId && u.status === 'ACCEPTED', 'ACCEPTED');
    const sessionId = String(accepted.session_id);
    expect(accepted.cp_id).toBe('CP-101');

    // START_SUPPLY with the session and the driver went to the CP, and the engine took it.
    const start = r.of('central.commands', 'CP-101').find((c) => c.command === 'START_SUPPLY');
    expect(start).toMatchObject({ session_id: sessionId, driver_id: 'driver-ann', cp_id: 'CP-101' });
    await waitFor(() => r.of('cp.status', 'CP-101').some((m) => m.type === 'status' && m.state === 'SUPPLYING' && m.session_id === sessionId),
      { timeoutMs: 30_000, what: 'engine SUPPLYING the session' });
    await waitFor(async () => (await r.cp('CP-101'))?.state === 'SUPPLYING', { timeoutMs: 10_000, what: 'central shows SUPPLYING' });

    // IN_PROGRESS roughly each second with growing energy.
    const progress = () => r.of('driver.updates', 'driver-ann').filter((u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId);
    await waitFor(() => progress().length >= 2, { timeoutMs: 30_000, what: 'two IN_PROGRESS updates' });
    const p = progress();
    expect(Number(p[1]!.kwh)).toBeGreaterThan(Number(p[0]!.kwh));
    expect(Number(p[1]!.kw)).toBeGreaterThan(0);
    const live = (await r.cp('CP-101'))!;
    expect(live).toMatchObject({ session_id: sessionId, driver_id: 'driver-ann' });
    expect(Number(live.kwh)).toBeGreaterThan(0);
    expect((await r.health()).active_requests).toBe(1);

    // The driver stops: STOP_SUPPLY for that session, the engine's session_end, a COMPLETED ticket.
    await r.request('driver-ann', 'STOP');
    const final = await r.update('driver-ann', (u) => u.status === 'COMPLETED' && u.session_id === sessionId, 'COMPLETED');
    expect(r.of('central.commands', 'CP-101').find((c) => c.command === 'STOP_SUPPLY')).toMatchObject({ session_id: sessionId, driver_id: 'driver-ann' });
    const end = r.of('cp.status', 'CP-101').find((m) => m.type === 'session_end' && m.session_id === sessionId)!;
    expect(end).toBeDefined();
    const t = final.ticket as Ticket;
    expect(Ticket.safeParse(t).success).toBe(true);
    expect(t).toMatchObject({ session_id: sessionId, cp_id: 'CP-101', driver_id: 'driver-ann', reason: 'driver_stop', interrupted: false, price_eur_kwh: price });
    expect(Math.abs(t.kwh - Number(end.kwh))).toBeLessThanOrEqual(0.000001);
    expect(t.eur).toBe(Math.round(Number(end.kwh) * price * 100) / 100);
    expect(t.kwh).toBeGreaterThan(0);
    expect(t.duration_s).toBeGreaterThan(0);
    for (const u of progress()) expect(Number(u.kwh)).toBeLessThanOrEqual(t.kwh);

    // Central's records agree, and the CP is free again.
    const s = (await r.get(`/sessions/${sessionId}`)).body;
    expect(s).toMatchObject({ session_id: sessionId, status: 'COMPLETED', cp_id: 'CP-101', driver_id: 'driver-ann', request_id: requestId, kwh: t.kwh, eur: t.eur, interrupted: false, end_reason: 'driver_stop' });
    expect((s.ticket as Json).session_id).toBe(sessionId);
    expect(typeof s.ended_at).toBe('number');
    await waitFor(async () => (await r.cp('CP-101'))?.state === 'ACTIVATED', { timeoutMs: 10_000, what: 'CP-101 ACTIVATED again' });
    expect(((await r.get('/tickets')).body.tickets as Json[]).map((x) => x.session_id)).toContain(sessionId);

    // A driver that restarts asks how its last session ended: the ticket, answering its QUERY.
    const q = await r.request('driver-ann', 'QUERY');
    const answer = await r.update('driver-ann', (u) => u.request_id === q, 'QUERY answer');
    expect(answer).toMatchObject({ status: 'COMPLETED', session_id: sessionId });
    expect((answer.ticket as Ticket).eur).toBe(t.eur);
    const q2 = await r.request('driver-nobody', 'QUERY');
    expect(await r.update('driver-nobody', (u) => u.request_id === q2, 'QUERY answer for a driver with no session')).toMatchObject({ status: 'REJECTED', reason: 'no session' });
  }, 120_000);

  it('a session that runs until the vehicle is full completes on its own', async () => {
    const r = rig!;
    const requestId = await r.request('driver-ben', 'REQUEST', 'CP-101');
    const accepted = await r.update('driver-ben', (u) => u.request_id === requestId && u.status === 'ACCEPTED', 'ACCEPTED');
    // Speed 300: a full battery in well under a minute of wall time.
    const final = await r.update('driver-ben', (u) => u.session_id === accepted.session_id && (u.status === 'COMPLETED' || u.status === 'INTERRUPTED'), 'final update', 90_000);
    expect(final.status).toBe('COMPLETED');
    expect((final.ticket as Ticket).reason).toBe('full');
    const end = r.of('cp.status', 'CP-101').find((m) => m.type === 'session_end' && m.session_id === accepted.session_id)!;
    expect((final.ticket as Ticket).kwh).toBeCloseTo(Number(end.kwh), 6);
  }, 120_000);
});
