import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { profilePrice, TestNetwork } from '../helpers/network.js';
import { distinctTickets, finalUpdates, sessionEnds, ticketProblems } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * SIGKILL of a driver in the middle of its session (real processes, embedded bus): the
 * session goes on without it and ends at the CP (vehicle full); the restarted driver asks
 * central (QUERY) how its session ended and prints the ticket.
 */
let net: TestNetwork | undefined;
beforeAll(async () => {
  // dc-350kw at speed 100: a session fills the vehicle in roughly ten wall seconds.
  net = await TestNetwork.start({ speed: 100 });
  await net.addCp({ id: 'CP-001', profile: 'dc-350kw' });
  await net.waitCp('CP-001', ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
}, 120_000);
afterAll(async () => { await net?.stop(); }, 60_000);

describe('driver SIGKILL mid-session', () => {
  it('the session ends without the driver, and the restarted driver learns its ticket through QUERY and prints it', async () => {
    const n = net!;
    await n.addDriver({ id: 'driver-kate', requests: ['CP-001'], maxChargeS: 600, waitS: 1 });
    const supplying = await n.waitCp('CP-001', ['SUPPLYING'], { timeoutMs: 45_000 });
    const sessionId = String(supplying.session_id);
    expect(supplying.driver_id).toBe('driver-kate');
    await waitFor(() => n.recorder.of('driver.updates', 'driver-kate').some((r) => r.value.status === 'IN_PROGRESS' && r.value.session_id === sessionId),
      { timeoutMs: 30_000, what: 'driver-kate follows its session' });

    await n.kill('driver-kate');
    // The vehicle fills up with nobody listening; central closes the session with the CP's metered record.
    const row = await waitFor(async () => (await n.sessions()).find((s) => s.session_id === sessionId && s.status !== 'ACTIVE'),
      { timeoutMs: 60_000, intervalMs: 250, what: `session ${sessionId} ends at central` });
    expect(row.status).toBe('COMPLETED');
    expect(row.end_reason).toBe('full');
    expect(n.alive('driver-kate')).toBe(false);

    const queriedFrom = n.recorder.of('driver.requests', 'driver-kate').length;
    await n.restart('driver-kate');
    // It asks, central answers with the ended session's ticket, and the driver prints it.
    const query = await waitFor(() => n.recorder.of('driver.requests', 'driver-kate').slice(queriedFrom).find((r) => r.value.action === 'QUERY'),
      { timeoutMs: 30_000, what: `a QUERY from the restarted driver\n${n.tail('driver-kate', 10)}` });
    // (The answer may carry the query's request id or the session's; it is the update after the QUERY.)
    const answer = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-kate').filter((r) => r.at >= query.at))
      .find((u) => u.ticket.session_id === sessionId),
    { timeoutMs: 30_000, what: `central's answer to ${String(query.value.request_id)}` });
    expect(answer.status).toBe('COMPLETED');
    expect(ticketProblems(answer.ticket, sessionEnds(n.recorder.records).get(sessionId), await profilePrice('dc-350kw'))).toEqual([]);
    // It prints the answer as its last session, naming the session and COMPLETED.
    const proc = n.component('driver-kate').proc;
    await proc.waitForLine((l) => l.includes('last session') && l.includes(sessionId) && l.includes('COMPLETED'), 30_000);
    // The ticket (billed energy) is printed exactly once: in that line, or in the stored update
    // that reached the restarted driver before the answer (then the line points to it).
    const ticketLines = proc.lines.filter((l) => l.includes(`ticket ${sessionId}:`));
    expect(ticketLines, proc.lines.slice(-15).join('\n')).toHaveLength(1);
    expect([2, 3].some((d) => ticketLines[0]!.includes(answer.ticket.kwh.toFixed(d))), `printed ${ticketLines[0]}, ticket ${answer.ticket.kwh} kWh`).toBe(true);

    // The replayed answer is the same ticket, not a second bill.
    for (const [id, tickets] of distinctTickets(finalUpdates(n.recorder.of('driver.updates', 'driver-kate')))) expect(tickets.length, id).toBe(1);
    expect((await n.sessions()).filter((s) => s.session_id === sessionId)).toHaveLength(1);
  }, 150_000);
});
