import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { profilePrice, TestNetwork } from '../helpers/network.js';
import { finalUpdates, sessionEnds, ticketProblems } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * An operator takes a CP out of service in the middle of a session (real processes, embedded
 * bus): only with the admin token; the session is interrupted and billed as metered; the CP
 * refuses requests while STOPPED and takes them again once resumed.
 */
let net: TestNetwork | undefined;
beforeAll(async () => {
  net = await TestNetwork.start({ speed: 60 });
  await net.addCp({ id: 'CP-001', profile: 'dc-50kw' });
  await net.waitCp('CP-001', ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
}, 120_000);
afterAll(async () => { await net?.stop(); }, 60_000);

describe('admin stop and resume', () => {
  it('needs the token, interrupts the running session with a metered ticket, and refuses requests until resumed', async () => {
    const n = net!;
    await n.addDriver({ id: 'driver-olivia', requests: ['CP-001'], maxChargeS: 600, waitS: 1 });
    const supplying = await n.waitCp('CP-001', ['SUPPLYING'], { timeoutMs: 45_000 });
    const sessionId = String(supplying.session_id);
    await waitFor(() => n.recorder.of('cp.telemetry', 'CP-001').some((r) => r.value.session_id === sessionId && Number(r.value.kwh) > 0), { timeoutMs: 30_000, what: 'metered energy' });

    // Refused without the right token or for an unknown CP; nothing changes.
    expect((await n.post('/cp/CP-001/stop', { token: null })).status).toBe(401);
    expect((await n.post('/cp/CP-001/stop', { token: 'not-the-token' })).status).toBe(401);
    expect((await n.post('/cp/CP-404/stop')).status).toBe(404);
    expect((await n.cp('CP-001'))!.state).toBe('SUPPLYING');

    const stop = await n.post('/cp/CP-001/stop');
    expect(stop.status, JSON.stringify(stop.body)).toBeLessThan(300);
    await n.waitCp('CP-001', ['STOPPED'], { timeoutMs: 30_000 });
    const final = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-olivia')).find((u) => u.ticket.session_id === sessionId),
      { timeoutMs: 30_000, what: `driver-olivia's ticket\n${n.tail('driver-olivia', 10)}` });
    expect(final.status).toBe('INTERRUPTED');
    expect(final.ticket.reason).toBe('cp_stopped');
    expect(final.ticket.interrupted).toBe(true);
    expect(ticketProblems(final.ticket, sessionEnds(n.recorder.records).get(sessionId), await profilePrice('dc-50kw'))).toEqual([]);

    // STOPPED: a request is refused and no supply is commanded.
    const stoppedAt = Date.now();
    await n.addDriver({ id: 'driver-peggy', requests: ['CP-001'], maxChargeS: 2, waitS: 1 });
    const answer = await waitFor(() => n.recorder.of('driver.updates', 'driver-peggy').map((r) => r.value).find((v) => v.status === 'REJECTED' || v.status === 'ACCEPTED'),
      { timeoutMs: 30_000, what: `an answer to driver-peggy\n${n.tail('driver-peggy', 10)}` });
    expect(answer.status).toBe('REJECTED');
    expect(n.recorder.of('central.commands', 'CP-001').filter((r) => r.at >= stoppedAt && r.value.command === 'START_SUPPLY')).toEqual([]);

    expect((await n.post('/cp/CP-001/resume', { token: null })).status).toBe(401);
    const resume = await n.post('/cp/CP-001/resume');
    expect(resume.status, JSON.stringify(resume.body)).toBeLessThan(300);
    await n.waitCp('CP-001', ['ACTIVATED'], { timeoutMs: 30_000 });
    await n.addDriver({ id: 'driver-rupert', requests: ['CP-001'], maxChargeS: 2, waitS: 1 });
    const done = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-rupert')).find((u) => u.ticket.cp_id === 'CP-001'),
      { timeoutMs: 45_000, what: `driver-rupert's ticket\n${n.tail('driver-rupert', 10)}` });
    expect(done.status).toBe('COMPLETED');
  }, 150_000);
});
