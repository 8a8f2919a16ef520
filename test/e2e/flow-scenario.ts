import { expect } from 'vitest';
import { profilePrice, TestNetwork } from '../helpers/network.js';
import { distinctTickets, finalUpdates, sessionEnds, ticketProblems } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The charging flow both bus adapters must carry: three CPs with different hardware
 * profiles (so prices differ), two drivers going round them, every session billed with
 * what the CP metered. Shared by flow-embedded.test.ts and flow-kafka.test.ts.
 */

export const CPS = [
  { id: 'CP-001', profile: 'ac-22kw' },
  { id: 'CP-002', profile: 'dc-50kw' },
  { id: 'CP-003', profile: 'dc-350kw' },
] as const;
export const DRIVERS = [
  { id: 'driver-alice', requests: ['CP-001', 'CP-002', 'CP-003'] },
  { id: 'driver-bob', requests: ['CP-002', 'CP-003', 'CP-001'] },
] as const;

/**
 * Gateway, central, three engines (CPS) with monitors; resolves when central lists all three as
 * ACTIVATED with a live monitor. Speed 300: five wall seconds meter 25 simulated minutes.
 */
export async function startFlowNetwork(kafkaBootstrap?: string[], speed = 300): Promise<TestNetwork> {
  const net = await TestNetwork.start({ kafkaBootstrap, speed });
  try {
    await Promise.all(CPS.map((cp) => net.addCp(cp)));
    for (const cp of CPS) await net.waitCp(cp.id, ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
  } catch (err) {
    await net.stop();
    throw err;
  }
  return net;
}

/**
 * `rounds`: requests per driver (default all three). With 2 the drivers still cover every CP
 * (alice CP-001, CP-002; bob CP-002, CP-003); the Kafka run uses it because librdkafka's mock
 * cluster does not wake a waiting fetch, so each bus hop costs up to kafkajs' 5 s fetch wait.
 */
export async function runFlow(net: TestNetwork, rounds = 3): Promise<void> {
  const prices = new Map<string, number>(await Promise.all(CPS.map(async (cp) => [cp.id, await profilePrice(cp.profile)] as const)));

  // Central describes each CP by the profile its engine announced.
  for (const cp of CPS) {
    const row = (await net.cp(cp.id))!;
    expect(row.profile, cp.id).toBe(cp.profile);
    expect(Number(row.price_eur_kwh), cp.id).toBeCloseTo(prices.get(cp.id)!, 9);
  }

  for (const d of DRIVERS) await net.addDriver({ id: d.id, requests: d.requests.slice(0, rounds), maxChargeS: 4, waitS: 1 });

  // Both drivers work through their files and end on their own (exit 0, with a summary line).
  for (const d of DRIVERS) {
    const { code } = await waitFor(() => (net.alive(d.id) ? undefined : net.component(d.id).proc.exited), {
      timeoutMs: 90_000, intervalMs: 250, what: `${d.id} done with its requests\n${net.tail(d.id, 10)}`,
    });
    expect(code, net.tail(d.id, 10)).toBe(0);
    expect(net.component(d.id).proc.lines.some((l) => l.includes(`${d.id} summary:`)), `${d.id} summary line`).toBe(true);
  }

  // Every CP completed at least one session and each driver got at least one completed ticket.
  // (Two drivers may meet at a CP; one is then refused and moves on, the other charges there.)
  const completed = () => finalUpdates(net.recorder.records).filter((u) => u.status === 'COMPLETED');
  await waitFor(() => {
    const done = completed();
    return CPS.every((cp) => done.some((u) => u.ticket.cp_id === cp.id)) && DRIVERS.every((d) => done.some((u) => u.driver_id === d.id));
  }, {
    timeoutMs: 75_000, intervalMs: 200,
    what: `completed sessions at every CP for both drivers; final updates so far: ${JSON.stringify(finalUpdates(net.recorder.records).map((u) => [u.driver_id, u.ticket.cp_id, u.status]))}\n${DRIVERS.map((d) => net.tail(d.id, 10)).join('\n')}`,
  });

  const ends = sessionEnds(net.recorder.records);
  const done = completed();
  for (const u of done) {
    const t = u.ticket;
    // The update reaches the driver it bills, keyed by that driver.
    expect(t.driver_id).toBe(u.driver_id);
    expect(t.interrupted).toBe(false);
    expect(['full', 'driver_stop']).toContain(t.reason);
    expect(ticketProblems(t, ends.get(t.session_id), prices.get(t.cp_id)!), `ticket ${JSON.stringify(t)}`).toEqual([]);
    expect(t.kwh, `ticket ${t.session_id} metered energy`).toBeGreaterThan(0);

    // A second witness: the engine logged the same metered kWh when the session ended.
    const logged = net.allLines(t.cp_id).map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } })
      .find((l) => l.msg === 'session ended' && l.session_id === t.session_id);
    expect(logged, `engine ${t.cp_id} log of session ${t.session_id}`).toBeDefined();
    expect(Math.abs(Number(logged!.kwh) - t.kwh)).toBeLessThanOrEqual(0.001);

    // Central commanded the supply for this session and driver; the driver followed it live.
    const start = net.recorder.of('central.commands', t.cp_id).find((r) => r.value.command === 'START_SUPPLY' && r.value.session_id === t.session_id);
    expect(start?.value.driver_id, `START_SUPPLY for ${t.session_id}`).toBe(t.driver_id);
    const updates = net.recorder.of('driver.updates', t.driver_id).map((r) => r.value).filter((v) => v.session_id === t.session_id);
    expect(updates.some((v) => v.status === 'ACCEPTED'), `ACCEPTED for ${t.session_id}`).toBe(true);
    const progress = updates.filter((v) => v.status === 'IN_PROGRESS');
    // A session the driver stopped ran 4 s at least: central reported progress meanwhile. (A
    // vehicle that fills within a bus round trip may finish before its first report.)
    if (t.reason === 'driver_stop') expect(progress.length, `IN_PROGRESS updates for ${t.session_id} (${t.reason})`).toBeGreaterThan(0);
    for (const p of progress) expect(Number(p.kwh)).toBeLessThanOrEqual(t.kwh + 0.001);
  }

  // Exactly one ticket per session, and central's record of each session agrees with it.
  for (const [id, tickets] of distinctTickets(done)) expect(tickets.length, `distinct tickets for ${id}`).toBe(1);
  const sessions = await net.sessions();
  for (const u of done) {
    const rows = sessions.filter((s) => s.session_id === u.ticket.session_id);
    expect(rows.length, `central's records of ${u.ticket.session_id}`).toBe(1);
    const s = rows[0]!;
    expect(s.status).toBe('COMPLETED');
    expect(s.cp_id).toBe(u.ticket.cp_id);
    expect(s.driver_id).toBe(u.ticket.driver_id);
    expect(s.interrupted).toBe(false);
    expect(Math.abs(Number(s.kwh) - u.ticket.kwh)).toBeLessThanOrEqual(0.001);
    expect(Math.abs(Number(s.eur) - u.ticket.eur)).toBeLessThanOrEqual(0.01);
    expect((s.ticket as { session_id?: string } | null)?.session_id).toBe(u.ticket.session_id);
  }

  // Different profiles, different prices: the tickets prove it.
  const billedPrices = new Set(done.map((u) => u.ticket.price_eur_kwh));
  expect(billedPrices.size).toBe(CPS.length);
  console.log(`${net.busKind} bus: ${done.length} completed sessions; ${done.map((u) => `${u.ticket.driver_id}@${u.ticket.cp_id} ${u.ticket.kwh.toFixed(3)} kWh ${u.ticket.eur.toFixed(2)} EUR (${u.ticket.reason})`).join('; ')}`);
}
