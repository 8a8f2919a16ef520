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
 * once Kafka answers again central bills exactly what the CP metered (superseding the estimate
 * it may have closed the session with while it could hear nobody).
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

const health = async (n: TestNetwork) => (await (await fetch(`${n.gatewayHttpUrl}/health`)).json()) as { spooled?: number; buffered: number; kafka_up?: boolean };

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
    // Not "serving" yet: its /health says 503 until Kafka answers (a producer that only looks connected would say 200).
    await n.restart('gateway', { serving: false });
    await n.component('gateway').proc.waitForLine(/spool replayed/, 20_000);
    kafka!.resume();

    const onBus = await waitFor(() => sessionEnds(n.recorder.records).get(sessionId),
      { timeoutMs: 90_000, what: `the CP's session_end on the bus\n${n.tail('gateway', 10)}` });
    expect(onBus.kwh).toBeCloseTo(meteredKwh, 6);
    // Central heard the fault from the monitor (HTTP) but no record (Kafka stalled): it may have closed
    // the session from telemetry meanwhile. The CP's record, once it arrives, supersedes that estimate.
    const tickets = () => finalUpdates(n.recorder.of('driver.updates', 'driver-erin')).filter((u) => u.ticket.session_id === sessionId).map((u) => u.ticket);
    const billed = await waitFor(async () => {
      const s = await n.get<{ ticket?: { kwh: number; eur: number; reason: string } | null }>(`/sessions/${sessionId}`);
      return s.ticket && Math.abs(s.ticket.kwh - meteredKwh) <= 0.001 ? s.ticket : undefined;
    }, { timeoutMs: 60_000, what: `central's ticket for ${sessionId} = metered ${meteredKwh} kWh; driver got ${JSON.stringify(tickets().map((t) => [t.kwh, t.reason]))}\n${n.tail('central', 10)}` });
    expect(Math.abs(billed.eur - Number(ended.eur))).toBeLessThanOrEqual(0.01);
    // The driver's last word for the session is that same ticket.
    const ticket = await waitFor(() => { const t = tickets().at(-1); return t && Math.abs(t.kwh - meteredKwh) <= 0.001 ? t : undefined; },
      { timeoutMs: 30_000, what: `the driver's final ticket = metered; got ${JSON.stringify(tickets().map((t) => [t.kwh, t.reason]))}` });
    expect(Math.abs(ticket.eur - Number(ended.eur))).toBeLessThanOrEqual(0.01);
    expect(ticket).toMatchObject({ kwh: billed.kwh, eur: billed.eur, reason: billed.reason });
    // Anything the driver got before it was central's interrupted estimate, never another metered figure.
    for (const t of tickets().slice(0, -1)) if (Math.abs(t.kwh - meteredKwh) > 0.001) expect(t).toMatchObject({ interrupted: true, reason: expect.stringMatching(/^(fault|unreachable|disconnected)$/) });
    // Replayed once delivered: the spool empties.
    await waitFor(async () => (await health(n)).spooled === 0, { timeoutMs: 30_000, what: `spool emptied\n${n.tail('gateway', 10)}` });
    await waitFor(async () => (await health(n)).kafka_up === true, { timeoutMs: 30_000, what: `gateway reports kafka_up\n${n.tail('gateway', 10)}` });
    console.log(`metered ${meteredKwh} kWh, billed ${ticket.kwh} kWh (${ticket.reason}) after gateway SIGKILL with Kafka stalled; driver tickets ${JSON.stringify(tickets().map((t) => [t.kwh, t.reason]))}`);
  }, 240_000);
});
