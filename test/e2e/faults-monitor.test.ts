import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { monitorName, profilePrice, TestNetwork, timeUntil } from '../helpers/network.js';
import { spawnCli } from '../helpers/processes.js';
import { finalUpdates, sessionEnds, ticketProblems } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The monitor's part (real processes, embedded bus): a hardware fault the monitor reports
 * makes the CP FAULTY at central and interrupts its session (billed as metered) until it is
 * repaired; a monitor killed with SIGKILL goes silent, central marks it DOWN and refuses
 * requests for that CP until the monitor is back.
 */
const MONITOR_TIMEOUT_MS = 2000;
let net: TestNetwork | undefined;
beforeAll(async () => {
  net = await TestNetwork.start({ speed: 60, monitorTimeoutMs: MONITOR_TIMEOUT_MS });
  await Promise.all([net.addCp({ id: 'CP-001', profile: 'ac-22kw' }), net.addCp({ id: 'CP-002', profile: 'dc-50kw' })]);
  for (const id of ['CP-001', 'CP-002']) await net.waitCp(id, ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
}, 120_000);
afterAll(async () => { await net?.stop(); }, 60_000);

const requestIdsFor = (n: TestNetwork, driverId: string, cpId: string) =>
  n.recorder.of('driver.requests', driverId).map((r) => r.value).filter((v) => v.action === 'REQUEST' && v.cp_id === cpId).map((v) => String(v.request_id));

describe('monitor', () => {
  it('a reported hardware fault makes the CP FAULTY and interrupts its session until repaired', async () => {
    const n = net!;
    await n.addDriver({ id: 'driver-grace', requests: ['CP-001'], maxChargeS: 600, waitS: 1 });
    const supplying = await n.waitCp('CP-001', ['SUPPLYING'], { timeoutMs: 45_000 });
    const sessionId = String(supplying.session_id);
    await waitFor(() => n.recorder.of('cp.telemetry', 'CP-001').some((r) => r.value.session_id === sessionId && Number(r.value.kwh) > 0), { timeoutMs: 30_000, what: 'metered energy' });

    const engine = `127.0.0.1:${n.healthPort('CP-001')}`;
    const inject = spawnCli(['fault', '--engine', engine, '--kind', 'ground_fault']);
    expect((await inject.exited).code).toBe(0);
    const faulty = await n.waitCp('CP-001', ['FAULTY'], { monitor: 'KO', timeoutMs: 30_000 });
    expect(faulty.session_id ?? null).toBeNull();

    const final = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-grace')).find((u) => u.ticket.session_id === sessionId),
      { timeoutMs: 30_000, what: `driver-grace's ticket\n${n.tail('driver-grace', 10)}` });
    expect(final.status).toBe('INTERRUPTED');
    expect(final.ticket.interrupted).toBe(true);
    expect(final.ticket.reason).toBe('fault');
    // The CP metered the session up to the fault; the ticket bills exactly that.
    expect(ticketProblems(final.ticket, sessionEnds(n.recorder.records).get(sessionId), await profilePrice('ac-22kw'))).toEqual([]);

    // While FAULTY it takes no session.
    await n.addDriver({ id: 'driver-heidi', requests: ['CP-001'], maxChargeS: 2, waitS: 1 });
    const refused = await waitFor(() => {
      const ids = requestIdsFor(n, 'driver-heidi', 'CP-001');
      return n.recorder.of('driver.updates', 'driver-heidi').map((r) => r.value).find((v) => ids.includes(String(v.request_id)) && ['REJECTED', 'ACCEPTED'].includes(String(v.status)));
    }, { timeoutMs: 30_000, what: `an answer to driver-heidi\n${n.tail('driver-heidi', 10)}` });
    expect(refused.status).toBe('REJECTED');
    expect(String(refused.reason ?? '')).not.toBe('');

    const repair = spawnCli(['fault', '--engine', engine, '--repair']);
    expect((await repair.exited).code).toBe(0);
    await n.waitCp('CP-001', ['ACTIVATED'], { monitor: 'OK', timeoutMs: 30_000 });
  }, 150_000);

  it('a killed monitor is DOWN at central and its CP refuses requests until the monitor is back', async () => {
    const n = net!;
    const killedAt = Date.now();
    await n.kill(monitorName('CP-001'));
    const down = await timeUntil(killedAt, async () => {
      const cp = await n.peekCp('CP-001');
      return cp?.monitor_status === 'DOWN' ? cp : undefined;
    }, { timeoutMs: 30_000, what: 'central marks the monitor of CP-001 DOWN' });
    console.log(`monitor SIGKILL → central monitor_status DOWN in ${down.seconds.toFixed(2)} s (monitor timeout ${MONITOR_TIMEOUT_MS} ms), CP state ${String(down.value.state)}`);

    // A request for CP-001 is refused; the driver moves on to CP-002, which is unaffected.
    await n.addDriver({ id: 'driver-ivan', requests: ['CP-001', 'CP-002'], maxChargeS: 2, waitS: 1 });
    await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-ivan')).some((u) => u.ticket.cp_id === 'CP-002' && u.status === 'COMPLETED'),
      { timeoutMs: 45_000, what: `driver-ivan completes at CP-002\n${n.tail('driver-ivan', 10)}` });
    const ids = requestIdsFor(n, 'driver-ivan', 'CP-001');
    expect(ids.length).toBeGreaterThan(0);
    const answers = n.recorder.of('driver.updates', 'driver-ivan').map((r) => r.value).filter((v) => ids.includes(String(v.request_id)));
    expect(answers.map((v) => v.status)).toContain('REJECTED');
    expect(answers.map((v) => v.status)).not.toContain('ACCEPTED');
    expect(n.recorder.of('central.commands', 'CP-001').filter((r) => r.at >= killedAt && r.value.command === 'START_SUPPLY')).toEqual([]);
    expect((await n.cp('CP-001'))!.monitor_status).toBe('DOWN');

    // The monitor returns: OK again, and the CP takes a session.
    await n.restart(monitorName('CP-001'));
    await n.waitCp('CP-001', ['ACTIVATED'], { monitor: 'OK', timeoutMs: 30_000 });
    await n.addDriver({ id: 'driver-judy', requests: ['CP-001'], maxChargeS: 2, waitS: 1 });
    const done = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-judy')).find((u) => u.ticket.cp_id === 'CP-001'),
      { timeoutMs: 45_000, what: `driver-judy's ticket at CP-001\n${n.tail('driver-judy', 10)}` });
    expect(done.status).toBe('COMPLETED');
  }, 150_000);
});
