import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNetwork } from '../helpers/network.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Monitor and driver against the real thing: gateway, central, two engines and their monitors,
 * one driver, each a real `evcharging` process on the embedded bus.
 */
describe('monitor + driver with the real central, gateway and engines', () => {
  let n: TestNetwork | undefined;
  const cp1 = `CP-MD1-${process.pid}`;
  const cp2 = `CP-MD2-${process.pid}`;
  beforeAll(async () => {
    n = await TestNetwork.start({ monitorTimeoutMs: 3000 });
    await Promise.all([n.addCp({ id: cp1 }), n.addCp({ id: cp2 })]);
    await Promise.all([n.waitCp(cp1, ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 }), n.waitCp(cp2, ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 })]);
  }, 150_000);
  afterAll(async () => { await n?.stop(); }, 60_000);

  it('a request file of two CPs: two tickets printed in file order, a summary, exit 0', async () => {
    const net = n!;
    const id = `driver-md-${process.pid}`;
    await net.addDriver({ id, requests: [cp1, cp2], waitS: 1, maxChargeS: 3 });
    const proc = net.component(id).proc;
    const exit = await Promise.race([proc.exited, new Promise((r) => setTimeout(() => r('still running'), 120_000))]);
    expect(exit, net.tail(id, 30)).toEqual({ code: 0, signal: null });
    const out = proc.lines.filter((l) => !l.startsWith('{'));
    expect(out).toContain(`${id} last session: no earlier session`);
    const tickets = out.filter((l) => / COMPLETED \d+\.\d\d kWh \d+\.\d\d € ticket \S+: \d+\.\d\d €\/kWh, \d+ s, reason driver_stop$/.test(l));
    expect(tickets.map((l) => l.split(' ')[1]), out.join('\n')).toEqual([cp1, cp2]);
    expect(out.at(-1)).toMatch(new RegExp(`^${id} summary: 2 sessions \\(2 completed, 0 interrupted\\), \\d+\\.\\d\\d kWh, \\d+\\.\\d\\d €, 0 rejected, 0 timed out, 0 invalid lines$`));
    // What the driver printed is what central billed.
    const sessions = (await net.sessions()).filter((s) => s.driver_id === id);
    expect(sessions.map((s) => [s.cp_id, s.status])).toEqual([[cp1, 'COMPLETED'], [cp2, 'COMPLETED']]);
    for (const s of sessions) {
      expect(tickets.some((l) => l.includes(` ticket ${String(s.session_id)}:`) && l.includes(`${Number(s.kwh).toFixed(2)} kWh ${Number(s.eur).toFixed(2)} €`)), JSON.stringify(s)).toBe(true);
    }
  }, 150_000);

  it('engine SIGKILL: its monitor reports the fault and central shows the CP out of service, monitor KO', async () => {
    const net = n!;
    await net.kill(cp1, 'SIGKILL');
    const row = await net.waitCp(cp1, ['FAULTY', 'DISCONNECTED'], { monitor: 'KO', timeoutMs: 30_000 });
    expect(row.monitor_status).toBe('KO');
    const mon = net.component(`monitor-${cp1}`).proc;
    expect(mon.logs().find((l) => l.msg === 'engine fault detected, reporting to central')).toMatchObject({ bad_polls: 2 });
    // Central shows KO once it took the report; the monitor logs the answer after that.
    await waitFor(() => mon.logs().some((l) => l.msg === 'central accepted the fault report'), { timeoutMs: 15_000, what: 'fault report accepted (monitor log)' });
    // The other CP is untouched.
    expect(await net.cp(cp2)).toMatchObject({ state: 'ACTIVATED', monitor_status: 'OK' });
    // Engine back: the monitor reports recovery and central lists the CP healthy again.
    await net.restart(cp1);
    await net.waitCp(cp1, ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
    await waitFor(() => mon.logs().some((l) => l.msg === 'central accepted the recovered report'), { timeoutMs: 30_000, what: 'recovered report accepted' });
  }, 150_000);
});
