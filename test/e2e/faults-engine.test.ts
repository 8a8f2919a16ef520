import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERRUPTING_END_REASONS, Ticket, type SessionEndReason } from '../../protocol/index.js';
import { profilePrice, TestNetwork, timeUntil } from '../helpers/network.js';
import { finalUpdates } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * SIGKILL of a charging-point engine in the middle of a session (real processes, embedded
 * bus): the driver gets an interrupted ticket, central shows the CP down at once (the time
 * is measured and printed), the other CP is untouched, and after the engine restarts the CP
 * is available again and completes a new session.
 */
let net: TestNetwork | undefined;
beforeAll(async () => {
  // Speed 60: an ac-22kw session takes minutes of wall time, so it is surely running when killed.
  net = await TestNetwork.start({ speed: 60 });
  await Promise.all([net.addCp({ id: 'CP-001', profile: 'ac-22kw' }), net.addCp({ id: 'CP-002', profile: 'dc-50kw' })]);
  for (const id of ['CP-001', 'CP-002']) await net.waitCp(id, ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
}, 120_000);
afterAll(async () => { await net?.stop(); }, 60_000);

describe('engine SIGKILL mid-session', () => {
  it('interrupts the session with a ticket, shows the CP down, and the CP comes back after a restart', async () => {
    const n = net!;
    const price = await profilePrice('ac-22kw');
    await n.addDriver({ id: 'driver-carol', requests: ['CP-001'], maxChargeS: 600, waitS: 1 });

    // Mid-session: central shows SUPPLYING and the driver has had metered progress.
    const supplying = await n.waitCp('CP-001', ['SUPPLYING'], { timeoutMs: 45_000 });
    const sessionId = String(supplying.session_id);
    expect(supplying.driver_id).toBe('driver-carol');
    const progress = () => n.recorder.of('driver.updates', 'driver-carol').map((r) => r.value).filter((v) => v.status === 'IN_PROGRESS' && v.session_id === sessionId);
    await waitFor(() => progress().some((v) => Number(v.kwh) > 0), { timeoutMs: 30_000, what: 'IN_PROGRESS with energy for driver-carol' });

    const killedAt = Date.now();
    await n.kill('CP-001');
    const down = await timeUntil(killedAt, async () => {
      const cp = await n.peekCp('CP-001');
      return cp && ['FAULTY', 'DISCONNECTED'].includes(String(cp.state)) ? String(cp.state) : undefined;
    }, { timeoutMs: 30_000, what: 'central shows CP-001 FAULTY or DISCONNECTED' });
    console.log(`engine SIGKILL → central ${down.value} in ${down.seconds.toFixed(2)} s`);

    // The driver gets an interrupted ticket for that session, billed at the profile price and
    // for no more energy than the CP ever reported (the CP's own record died with it).
    const final = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-carol')).find((u) => u.session_id === sessionId || u.ticket.session_id === sessionId),
      { timeoutMs: 30_000, what: `a final update for ${sessionId}\n${n.tail('driver-carol', 10)}` });
    expect(final.status).toBe('INTERRUPTED');
    const t = final.ticket;
    expect(t.session_id).toBe(sessionId);
    expect(t.cp_id).toBe('CP-001');
    expect(t.driver_id).toBe('driver-carol');
    expect(t.interrupted).toBe(true);
    expect(INTERRUPTING_END_REASONS.has(t.reason as SessionEndReason), `reason ${t.reason}`).toBe(true);
    expect(t.price_eur_kwh).toBeCloseTo(price, 9);
    expect(Math.abs(t.eur - t.kwh * price)).toBeLessThanOrEqual(0.01);
    const seenKwh = Math.max(...progress().map((v) => Number(v.kwh)));
    const meteredKwh = Math.max(0, ...n.recorder.of('cp.telemetry', 'CP-001').filter((r) => r.value.session_id === sessionId).map((r) => Number(r.value.kwh)));
    expect(t.kwh).toBeGreaterThanOrEqual(seenKwh - 0.001);
    expect(t.kwh).toBeLessThanOrEqual(meteredKwh + 0.001);
    expect(Ticket.safeParse(t).success).toBe(true);

    // Central's record agrees, and the other CP never noticed.
    const row = (await n.sessions()).find((s) => s.session_id === sessionId)!;
    expect(row.status).toBe('INTERRUPTED');
    expect(row.interrupted).toBe(true);
    expect(typeof row.ended_at).toBe('number');
    expect(Math.abs(Number(row.kwh) - t.kwh)).toBeLessThanOrEqual(0.001);
    const cp2 = (await n.cp('CP-002'))!;
    expect(cp2.state).toBe('ACTIVATED');
    expect(cp2.monitor_status).toBe('OK');

    // Restarted, the engine is available again and takes a new session to completion.
    const restartAt = Date.now();
    await n.restart('CP-001');
    const back = await n.waitCp('CP-001', ['ACTIVATED'], { monitor: 'OK', timeoutMs: 45_000 });
    console.log(`engine restart → central ACTIVATED (monitor OK) in ${((Date.now() - restartAt) / 1000).toFixed(2)} s`);
    expect(back.session_id ?? null).toBeNull();
    await n.addDriver({ id: 'driver-dave', requests: ['CP-001'], maxChargeS: 2, waitS: 1 });
    const again = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-dave')).find((u) => u.ticket.cp_id === 'CP-001'),
      { timeoutMs: 45_000, what: `driver-dave's ticket at CP-001\n${n.tail('driver-dave', 10)}` });
    expect(again.status).toBe('COMPLETED');
    expect(again.ticket.session_id).not.toBe(sessionId);
    expect(again.ticket.kwh).toBeGreaterThan(0);
  }, 180_000);
});
