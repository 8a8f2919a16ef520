import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthRequest } from '../../firmware/health-client.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { TestNetwork } from '../helpers/network.js';
import { finalUpdates, sessionEnds } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Nothing acknowledged is lost (issue 9, defect 4), real processes on Kafka (the kcat mock):
 * Kafka hangs (SIGSTOP), a session ends at the CP, the gateway acknowledges the session_end
 * only once its spool on disk has it, and is then SIGKILLed. Restarted, it replays the spool;
 * once Kafka answers again central bills exactly what the CP metered.
 */
let kafka: KafkaMock | undefined;
let net: TestNetwork | undefined;
beforeAll(async () => {
  kafka = await startKafkaMock();
  net = await TestNetwork.start({ kafkaBootstrap: kafka.bootstrap, speed: 60 });
  await net.addCp({ id: 'CP-001', profile: 'ac-22kw' });
  await net.waitCp('CP-001', ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
}, 150_000);
afterAll(async () => {
  kafka?.resume();
  await net?.stop();
  await kafka?.stop();
}, 60_000);

const health = async (n: TestNetwork) => (await (await fetch(`${n.gatewayHttpUrl}/health`)).json()) as { spooled?: number; buffered: number };

describe('gateway SIGKILL while Kafka is stalled', () => {
  it('loses no session_end: the ticket bills what the CP metered', async () => {
    const n = net!;
    await n.addDriver({ id: 'driver-erin', requests: ['CP-001'], maxChargeS: 600, waitS: 1 });
    const supplying = await n.waitCp('CP-001', ['SUPPLYING'], { timeoutMs: 60_000 });
    const sessionId = String(supplying.session_id);
    await waitFor(() => n.recorder.of('cp.telemetry', 'CP-001').some((r) => r.value.session_id === sessionId && Number(r.value.kwh) > 0),
      { timeoutMs: 30_000, what: 'metered telemetry' });

    kafka!.pause();
    // The session ends at the CP (a hardware fault) while nothing reaches Kafka.
    expect(await healthRequest('127.0.0.1', n.healthPort('CP-001'), 'FAULT ground_fault')).toMatch(/^OK/);
    const ended = await waitFor(() => n.component('CP-001').proc.logs().find((l) => l.msg === 'session ended' && l.session_id === sessionId),
      { timeoutMs: 20_000, what: 'the engine ends the session' });
    const meteredKwh = Number(ended.kwh);
    expect(meteredKwh).toBeGreaterThan(0);
    // Acknowledged to the CP means on disk: the gateway holds it in its spool.
    await waitFor(async () => ((await health(n)).spooled ?? 0) >= 1, { timeoutMs: 15_000, what: `session_end spooled\n${n.tail('gateway', 10)}` });

    await n.kill('gateway');
    await n.restart('gateway');
    await n.component('gateway').proc.waitForLine(/spool replayed/, 20_000);
    kafka!.resume();

    const ticket = await waitFor(() => finalUpdates(n.recorder.of('driver.updates', 'driver-erin')).find((u) => u.ticket.session_id === sessionId)?.ticket,
      { timeoutMs: 90_000, what: `a ticket for ${sessionId}\n${n.tail('central', 10)}\n${n.tail('gateway', 10)}` });
    const onBus = sessionEnds(n.recorder.records).get(sessionId);
    expect(onBus?.kwh).toBeCloseTo(meteredKwh, 6);
    expect(Math.abs(ticket.kwh - meteredKwh)).toBeLessThanOrEqual(0.001);
    expect(Math.abs(ticket.eur - Number(ended.eur))).toBeLessThanOrEqual(0.01);
    // Replayed once delivered: the spool empties.
    await waitFor(async () => (await health(n)).spooled === 0, { timeoutMs: 30_000, what: 'spool emptied' });
    console.log(`metered ${meteredKwh} kWh, billed ${ticket.kwh} kWh (${ticket.reason}) after gateway SIGKILL with Kafka stalled`);
  }, 240_000);
});
