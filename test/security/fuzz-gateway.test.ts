import type net from 'node:net';
import type mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUS_SCHEMAS, CP_CHANNEL_TABLE, CentralCommandMsg, GatewayBeatMsg, decode, type CpChannel } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';
import { FUZZ_SEED, Rng, mqttInput, mutateJson } from './fuzz.js';
import { connect, isDisconnected, rawSocket, record, startGw, statusMsg, type Gw } from './harness.js';

const N = 10_000;
/** The gateway under test beats on cp.status keyed by this id: its own output, not a fuzz input reaching the bus. */
const GW_ID = 'gw-fuzz';
const isOwnBeat = (m: { topic: string; payload: string }): boolean => {
  if (m.topic !== `bus/cp.status/${GW_ID}`) return false;
  const r = decode(GatewayBeatMsg, Buffer.from(m.payload));
  return r.ok && r.value.gateway_id === GW_ID;
};
/** Commands without a deadline older than this (by ts) are stale: dropped by the gateway on either bus (docs/gateway.md, "Commands and restarts"). */
const COMMAND_MAX_AGE_MS = 120_000;

/** Sends one raw input on its own connection from `addr`, half-closes, and waits for the gateway to close (bounded). */
async function throwAt(port: number, addr: string, input: Buffer): Promise<void> {
  let s: net.Socket;
  try { s = await rawSocket(port, addr); } catch { return; }
  s.on('error', () => undefined);
  s.on('data', () => undefined);
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => { s.destroy(); resolve(); }, 3_000);
    s.once('close', () => { clearTimeout(t); resolve(); });
    s.end(input);
  });
}

describe(`fuzz: ${N} raw MQTT packets, ${N} CP payloads (seed ${FUZZ_SEED})`, () => {
  let gw: Gw;
  const clients: mqtt.MqttClient[] = [];
  let bus: Array<{ topic: string; payload: string }>;
  beforeAll(async () => {
    gw = await startGw([{ id: 'CP-F1', role: 'cp' }, { id: 'central-f', role: 'central' }], ['--gateway-id', GW_ID]);
    const central = await connect(gw.url, { username: 'central-f', clientId: 'central-f:recorder' }); clients.push(central);
    bus = record(central);
    await central.subscribeAsync('bus/#', { qos: 1 });
  });
  afterAll(async () => { for (const c of clients) c.end(true); await gw?.stop(); });

  it('raw packets: the gateway keeps serving, memory stays bounded, nothing reaches the bus', async () => {
    const rng = new Rng(FUZZ_SEED);
    const rss0 = gw.rssMb();
    const inputs = Array.from({ length: N }, () => mqttInput(rng));
    // 50 source addresses, 50 connections at a time: the fuzz is not a connection flood, the per-address limits stay out of it.
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async (_, w) => {
      while (next < inputs.length) { const i = next++; await throwAt(gw.mqttPort, `127.0.2.${(w % 50) + 1}`, inputs[i]!); }
    }));
    expect((await gw.health()).status).toBe('ok');
    expect(gw.rssMb() - rss0).toBeLessThan(150);
    // No fuzz input had credentials: nothing was bridged or published. The gateway's own heartbeat is all there may be.
    await waitFor(() => bus.some(isOwnBeat), { what: "the gateway's heartbeat (the recorder does see the bus)" });
    expect(bus.filter((m) => !isOwnBeat(m))).toEqual([]);
    const cp = await connect(gw.url, { username: 'CP-F1', clientId: 'CP-F1' }); clients.push(cp);
    await cp.publishAsync('cp/CP-F1/status', statusMsg('CP-F1', 1), { qos: 1 });
    await waitFor(() => bus.some((m) => m.topic === 'bus/cp.status/CP-F1'), { what: 'a valid status after the fuzz' });
    await waitFor(async () => ((await gw.health()).edge as { pending: number }).pending === 0, { timeoutMs: 20_000, what: 'no connection left pending' });
    cp.end(true);
    // Its DISCONNECTED is this test's output: wait for it here, or it lands among the next test's bridged payloads.
    await waitFor(() => bus.some(isDisconnected('CP-F1')), { what: 'the DISCONNECTED of the CP that left' });
  }, 180_000);

  it('CP payloads: exactly the valid ones are bridged, each valid on the bus; the CP stays connected', async () => {
    const rng = new Rng(FUZZ_SEED + 1);
    const base = Date.now() - N;
    const cp = await connect(gw.url, { username: 'CP-F1', clientId: 'CP-F1' }); clients.push(cp);
    bus.length = 0;
    const valid = new Set<number>();
    const channels = Object.keys(CP_CHANNEL_TABLE) as CpChannel[];
    const rss0 = gw.rssMb();
    for (let i = 0; i < N; i++) {
      const ch = rng.pick(channels);
      const ts = base + i;
      const good: Record<CpChannel, Record<string, unknown>> = {
        status: { v: 1, type: 'status', cp_id: 'CP-F1', state: 'ACTIVATED', seq: i, ts },
        telemetry: { v: 1, type: 'telemetry', cp_id: 'CP-F1', session_id: 's-1', kw: 7.4, kwh: 1.25, eur: 0.5, seq: i, ts },
        announce: { v: 1, type: 'announce', cp_id: 'CP-F1', profile: { name: 'ac', max_kw: 22, price_eur_kwh: 0.3, connector: 'type2', phases: 3, hal: 'sim' }, fw_version: '1', boot_id: 'b', ts },
        ack: { v: 1, type: 'ack', cp_id: 'CP-F1', command_id: 'c', command: 'STOP_CP', ok: true, state: 'STOPPED', ts },
        session: { v: 1, type: 'session_end', cp_id: 'CP-F1', session_id: 's', kwh: 1, eur: 0.3, price_eur_kwh: 0.3, started_at: 1, ended_at: 2, reason: 'full', ts },
      };
      const payload = mutateJson(rng, rng.chance(0.05) ? { ...good[ch], cp_id: 'CP-OTHER' } : good[ch]);
      const r = decode(CP_CHANNEL_TABLE[ch].schema, Buffer.from(payload, 'latin1'));
      if (r.ok && (r.value as { cp_id: string }).cp_id === 'CP-F1') valid.add((r.value as { ts: number }).ts);
      cp.publish(`cp/CP-F1/${ch}`, Buffer.from(payload, 'latin1'), { qos: 0 });
    }
    await cp.publishAsync('cp/CP-F1/status', statusMsg('CP-F1', N + 1), { qos: 1 }); // a marker: all before it were handled
    await waitFor(() => bus.some((m) => m.payload.includes(`"seq":${N + 1}`)), { timeoutMs: 60_000, what: 'the marker status' });
    const bridged = bus.filter((m) => !m.payload.includes(`"seq":${N + 1}`) && !isOwnBeat(m));
    for (const m of bridged) {
      const topic = m.topic.split('/')[1] as 'cp.status' | 'cp.telemetry';
      const r = decode(BUS_SCHEMAS[topic], Buffer.from(m.payload));
      expect(r.ok, m.payload).toBe(true);
      expect(m.topic.endsWith('/CP-F1')).toBe(true);
    }
    const bridgedTs = new Set(bridged.map((m) => (JSON.parse(m.payload) as { ts: number }).ts));
    expect(valid.size).toBeGreaterThan(N / 10); // the generator does produce valid input
    expect([...bridgedTs].sort()).toEqual([...valid].sort());
    expect(cp.connected).toBe(true);
    expect(bus.some((m) => m.payload.includes('"DISCONNECTED"'))).toBe(false);
    expect(gw.rssMb() - rss0).toBeLessThan(150);
    expect((await gw.health()).status).toBe('ok');
  }, 180_000);
});

describe(`fuzz: ${N} bus commands through the bridge (dev mode, seed ${FUZZ_SEED})`, () => {
  let gw: Gw;
  const clients: mqtt.MqttClient[] = [];
  beforeAll(async () => { gw = await startGw('dev', ['--gateway-id', GW_ID, '--command-max-age-ms', String(COMMAND_MAX_AGE_MS)]); });
  afterAll(async () => { for (const c of clients) c.end(true); await gw?.stop(); });

  it('only valid commands for that CP reach it; the gateway keeps serving', async () => {
    const rng = new Rng(FUZZ_SEED + 2);
    const cp = await connect(gw.url, { clientId: 'CP-F2' }); clients.push(cp);
    const got = record(cp);
    await cp.subscribeAsync('cp/CP-F2/cmd', { qos: 1 });
    const central = await connect(gw.url, { clientId: 'central-fuzz' }); clients.push(central);
    /** Valid commands for CP-F2 with what decides their fate: the deadline (`expires_at`) or, without one, the age of `ts`. */
    const valid: Array<{ id: string; sentAt: number; expiresAt?: number; ts: number }> = [];
    const rss0 = gw.rssMb();
    for (let i = 0; i < N; i++) {
      const key = rng.chance(0.9) ? 'CP-F2' : rng.pick(['CP-F3', 'CP-F2 ', '']);
      const now = Date.now();
      // Every 10th carries a deadline, half of them long passed: the bridge must honour expires_at too.
      const deadline = i % 10 === 0 ? { expires_at: now - 300_000 } : i % 10 === 5 ? { expires_at: now + 600_000 } : {};
      const good = { v: 1, command_id: `c-${i}`, cp_id: 'CP-F2', command: rng.pick(['START_SUPPLY', 'STOP_SUPPLY', 'STOP_CP', 'RESUME_CP']), session_id: 's', driver_id: 'd', ts: now, ...deadline };
      const payload = mutateJson(rng, good);
      const r = decode(CentralCommandMsg, Buffer.from(payload, 'latin1'));
      if (key === 'CP-F2' && r.ok && r.value.cp_id === 'CP-F2') valid.push({ id: r.value.command_id, sentAt: now, ts: r.value.ts, ...(r.value.expires_at !== undefined ? { expiresAt: r.value.expires_at } : {}) });
      if (key) central.publish(`bus/central.commands/${key}`, Buffer.from(payload, 'latin1'), { qos: 0 });
    }
    const marker = { v: 1, command_id: 'marker', cp_id: 'CP-F2', command: 'STOP_CP', ts: Date.now() };
    await central.publishAsync('bus/central.commands/CP-F2', JSON.stringify(marker), { qos: 1 });
    await waitFor(() => got.some((m) => m.payload.includes('"marker"')), { timeoutMs: 60_000, what: 'the marker command' });
    const doneAt = Date.now();
    const delivered = got.map((m) => JSON.parse(m.payload) as { command_id: string; cp_id: string }).filter((c) => c.command_id !== 'marker');
    for (const c of delivered) expect(CentralCommandMsg.safeParse(c).success && c.cp_id === 'CP-F2').toBe(true);
    // The rule (docs/gateway.md, "Commands and restarts"), stated here rather than taken from the product's code: a
    // command past its expires_at is dropped as expired; one without a deadline older than --command-max-age-ms by
    // its ts (a mutated ts of 0 is 56 years old) as stale; every other valid one reaches the CP. The gateway reads
    // its clock somewhere between sending and the marker's arrival: a command whose fate changes within that
    // window (a garbled digit can land a ts there) may go either way, and only those.
    const deliveredIds = new Set(delivered.map((c) => c.command_id));
    const expected: string[] = [];
    const dropped = { stale: { sure: 0, maybe: 0 }, expired: { sure: 0, maybe: 0 } };
    for (const c of valid) {
      const [reason, sendsAt] = c.expiresAt !== undefined
        ? ['expired' as const, (t: number) => t <= c.expiresAt!]
        : ['stale' as const, (t: number) => t - c.ts <= COMMAND_MAX_AGE_MS];
      if (sendsAt(doneAt)) expected.push(c.id); // fresh even at the latest moment the gateway decided
      else if (!sendsAt(c.sentAt)) dropped[reason].sure++; // too old even at the earliest
      else if (deliveredIds.has(c.id)) expected.push(c.id);
      else dropped[reason].maybe++;
    }
    expect(expected.length).toBeGreaterThan(N / 10);
    expect(delivered.map((c) => c.command_id).sort()).toEqual([...expected].sort());
    expect(dropped.stale.sure).toBeGreaterThan(0); // the generator does produce stale and expired commands
    expect(dropped.expired.sure).toBeGreaterThan(0);
    // Not silently lost: each one dropped for its age is counted with its reason.
    for (const reason of ['stale', 'expired'] as const) {
      expect(await gw.metric(`gateway_commands_dropped_total{reason="${reason}"}`), reason).toBe(dropped[reason].sure + dropped[reason].maybe);
    }
    expect(gw.rssMb() - rss0).toBeLessThan(150);
    expect((await gw.health()).status).toBe('ok');
  }, 180_000);
});
