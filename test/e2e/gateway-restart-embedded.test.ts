import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBus } from '../../bus/embedded.js';
import { silentLogger } from '../../lib/log.js';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { TestNetwork } from '../helpers/network.js';
import { finalUpdates } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 9, defect 4 on the embedded bus (real processes). The gateway is the bus; it is
 * SIGKILLed mid-session and restarted, and its broker's sessions are gone with it. Each
 * driver's STOP is published while it is away (through the product's own embedded-bus client,
 * which keeps it and sends it again on reconnect). Central and the engines are held stopped
 * (SIGSTOP) meanwhile, so the STOPs reach the new broker before central has reconnected (its
 * session, restored from the gateway's state dir, queues them), and central's STOP_SUPPLY
 * commands reach it before their CPs subscribe again (held until they do): every session
 * ends as its driver asked.
 */
let net: TestNetwork | undefined;
const CPS = ['CP-001', 'CP-002'];
beforeAll(async () => {
  net = await TestNetwork.start({ speed: 60 });
  // No monitors: a stopped engine would be reported faulty, and that is not this test.
  await Promise.all(CPS.map((id) => net!.addCp({ id, profile: 'ac-22kw', monitor: false })));
  for (const id of CPS) await net.waitCp(id, ['ACTIVATED'], { timeoutMs: 60_000 });
}, 150_000);
afterAll(async () => {
  for (const name of ['central', ...CPS]) net?.component(name).proc.child.kill('SIGCONT');
  await net?.stop();
}, 60_000);

const health = async (n: TestNetwork) => (await (await fetch(`${n.gatewayHttpUrl}/health`)).json()) as { commands_held: number };

describe('driver STOPs sent while the embedded-bus gateway restarts', () => {
  it('are delivered: every session ends as its driver asked, with a ticket', async () => {
    const n = net!;
    for (const [i, cp] of CPS.entries()) await n.addDriver({ id: `driver-${i}`, requests: [cp], maxChargeS: 600, waitS: 1 });
    const sessions = new Map<string, string>();
    for (const cp of CPS) sessions.set(cp, String((await n.waitCp(cp, ['SUPPLYING'], { timeoutMs: 60_000 })).session_id));
    // Metered something before the faults (a START seen a moment before the kill may have supplied nothing yet).
    for (const cp of CPS) await waitFor(() => n.recorder.of('cp.telemetry', cp).some((t) => t.value.session_id === sessions.get(cp) && Number(t.value.kwh) > 0), { timeoutMs: 30_000, what: `${cp} metering` });
    const stopper = new EmbeddedBus({ mqttUrl: n.mqttUrl, clientId: 'stopper' }, silentLogger);
    await stopper.start();

    const pause = (name: string) => n.component(name).proc.child.kill('SIGSTOP');
    const resume = (name: string) => n.component(name).proc.child.kill('SIGCONT');
    await n.kill('gateway');
    pause('central'); for (const cp of CPS) pause(cp);
    const sent = CPS.map((cp, i) => stopper.publish('driver.requests', `driver-${i}`, {
      v: PROTOCOL_VERSION, request_id: `stop-${i}-${Date.now()}`, driver_id: `driver-${i}`, action: 'STOP', cp_id: cp, ts: Date.now(),
    }));
    await n.restart('gateway');
    await n.component('gateway').proc.waitForLine(/embedded bus sessions restored/);
    await Promise.all(sent); // the restarted gateway acknowledged them, with central still away…

    resume('central'); // …central reconnects to its session and gets them; its STOP_SUPPLYs wait for the CPs
    await waitFor(async () => (await health(n)).commands_held >= CPS.length, { timeoutMs: 30_000, what: `STOP_SUPPLY held for the CPs\n${n.tail("central", 8)}\n${n.tail("gateway", 12)}` });
    for (const cp of CPS) resume(cp);

    for (const [i, cp] of CPS.entries()) {
      const sessionId = sessions.get(cp)!;
      const t = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', `driver-${i}`)).find((u) => u.ticket.session_id === sessionId)?.ticket,
        { timeoutMs: 60_000, what: `a ticket for ${sessionId} at ${cp}\n${n.tail(`driver-${i}`, 8)}\n${n.tail('gateway', 8)}\n${n.tail('central', 8)}` });
      expect(t.reason, `${cp}: ${JSON.stringify(t)}`).toBe('driver_stop');
      expect(t.kwh).toBeGreaterThan(0);
    }
    await stopper.close();
    expect(await health(n)).toMatchObject({ commands_held: 0 });
    const metrics = await (await fetch(`${n.gatewayHttpUrl}/metrics`)).text();
    console.log(metrics.split('\n').filter((l) => /^gateway_commands/.test(l)).join('\n'));
  }, 240_000);
});
