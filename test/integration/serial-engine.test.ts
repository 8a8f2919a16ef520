import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthRequest } from '../../firmware/health-client.js';
import { CommandAckMsg, CpStatusMsg, CpTelemetryMsg, SessionEndMsg, encode, mqttTopics } from '../../protocol/index.js';
import { startAedes, type TestBroker } from '../helpers/brokers.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { startPtyPair, type PtyPair } from '../helpers/ptys.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The real engine process (`evcharging cp`) with a serial profile, against the board emulator
 * process over socat pty pairs, talking MQTT to a real broker.
 */
describe('engine with the serial HAL against the board emulator', () => {
  const cpId = `CP-SER-${process.pid}`;
  let dir: string;
  let broker: TestBroker;
  let relayPty: PtyPair;
  let meterPty: PtyPair;
  let emu: CliProcess;
  let engine: CliProcess;
  let control: string;
  let healthPort: number;
  let client: MqttClient;
  const seen: Array<{ topic: string; msg: Record<string, unknown> }> = [];
  const on = (ch: string) => seen.filter((s) => s.topic === `cp/${cpId}/${ch}`).map((s) => s.msg);
  const lastStatus = () => on('status').at(-1);
  const ctl = async (what: string, method = 'POST') => {
    const res = await fetch(`${control}${what}`, { method });
    expect(res.status).toBe(200);
    return (await res.json()) as { relays: boolean[]; energy_kwh: number; vehicle_full: boolean };
  };
  const ping = () => healthRequest('127.0.0.1', healthPort, 'PING');
  const status = async () => JSON.parse((await healthRequest('127.0.0.1', healthPort, 'STATUS')).slice(3)) as { state: string; hal: Record<string, number | boolean> };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serial-engine-'));
    broker = await startAedes();
    relayPty = await startPtyPair(dir, 'relay');
    meterPty = await startPtyPair(dir, 'meter');
    emu = spawnCli(['board-emulator', '--relay-port', relayPty.b, '--meter-port', meterPty.b, '--speed', '120', '--battery-kwh', '1', '--soc-start', '0', '--soc-target', '1']);
    control = JSON.parse(await emu.waitForLine(/board emulator ready/, 30_000)).control_url as string;
    const profile = path.join(dir, 'serial-test.json');
    await fs.writeFile(profile, JSON.stringify({
      name: 'serial-test', max_kw: 7.4, price_eur_kwh: 0.3, connector: 'Type2', current: 'AC', phases: 1,
      hal: { driver: 'serial', relay: { path: relayPty.a }, meter: { path: meterPty.a }, timeout_ms: 500, retries: 3, poll_ms: 100, full_after_ms: 600 },
    }));
    client = await mqtt.connectAsync(broker.url, { clientId: `watch-${cpId}`, reconnectPeriod: 500 });
    client.on('message', (topic, payload) => { try { seen.push({ topic, msg: JSON.parse(payload.toString()) }); } catch { /* not JSON */ } });
    await client.subscribeAsync(`cp/${cpId}/#`, { qos: 1 });
    healthPort = await freePort();
    engine = spawnCli(['cp', '--id', cpId, '--health-port', String(healthPort), '--health-host', '127.0.0.1', '--mqtt', broker.url, '--profile', profile]);
    await engine.waitForLine(/"engine ready"/, 30_000);
  }, 90_000);

  afterAll(async () => {
    await engine?.kill('SIGKILL');
    await emu?.kill('SIGKILL');
    await client?.endAsync(true);
    await broker?.stop();
    await relayPty?.stop();
    await meterPty?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('runs a full charging session with metered energy through bad CRCs and noise, ended by the full vehicle', async () => {
    await waitFor(() => lastStatus()?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'ACTIVATED status' });
    expect(await ping()).toBe('OK');
    const sessionId = `S-${cpId}`;
    const cmd = { v: 1, command_id: `cmd-${cpId}-1`, cp_id: cpId, command: 'START_SUPPLY', session_id: sessionId, driver_id: 'driver-serial', ts: Date.now() };
    await client.publishAsync(mqttTopics.command(cpId), encode(cmd), { qos: 1 });
    const ack = CommandAckMsg.parse(await waitFor(() => on('ack')[0], { timeoutMs: 15_000, what: 'ack' }));
    expect(ack).toMatchObject({ ok: true, command: 'START_SUPPLY', state: 'SUPPLYING' });
    await waitFor(async () => (await ctl('/state', 'GET')).relays[0], { timeoutMs: 10_000, what: 'relay closed at the board' });
    // Line trouble in the middle of the session: rejected and retried, no fault.
    await ctl('/bad-crc?count=2');
    await ctl('/noise?bytes=24&count=5');
    const tel = await waitFor(() => on('telemetry').map((m) => CpTelemetryMsg.parse(m)).find((t) => t.kw > 7), { timeoutMs: 15_000, what: 'telemetry at 7.4 kW' });
    expect(tel).toMatchObject({ session_id: sessionId, kw: 7.4 });
    const end = SessionEndMsg.parse(await waitFor(() => on('session')[0], { timeoutMs: 60_000, what: 'session end' }));
    expect(end).toMatchObject({ session_id: sessionId, driver_id: 'driver-serial', reason: 'full', price_eur_kwh: 0.3 });
    // The vehicle's battery held 1 kWh; all of it went through the meter into the session.
    expect(end.kwh).toBeCloseTo(1, 2);
    expect(end.eur).toBeCloseTo(0.3, 3);
    const board = await ctl('/state', 'GET');
    expect(board.vehicle_full).toBe(true);
    await waitFor(async () => !(await ctl('/state', 'GET')).relays[0], { timeoutMs: 10_000, what: 'relay opened at the board' });
    expect(on('status').map((m) => CpStatusMsg.parse(m).state)).not.toContain('FAULTY');
    const st = await status();
    expect(st.hal.meter_crc_errors).toBeGreaterThanOrEqual(2);
    expect(st.hal.meter_retries).toBeGreaterThanOrEqual(2);
    // 5 replies came after 24 random bytes each: skipped by the scanner, the replies still taken.
    expect(st.hal.meter_noise_bytes).toBeGreaterThan(0);
  }, 120_000);

  it('a pulled serial cable is KO on the health port and FAULTY (link_lost); plugged back it recovers', async () => {
    await waitFor(() => lastStatus()?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'ACTIVATED before the pull' });
    await meterPty.stop();
    const faulty = await waitFor(() => (lastStatus()?.state === 'FAULTY' ? CpStatusMsg.parse(lastStatus()) : undefined), { timeoutMs: 20_000, what: 'FAULTY status' });
    expect(faulty.faults).toContain('link_lost');
    const reply = await waitFor(async () => { const r = await ping(); return r.startsWith('KO') ? r : undefined; }, { timeoutMs: 10_000, what: 'KO on PING' });
    expect(reply).toMatch(/link_lost/);
    expect(engine.child.exitCode).toBeNull();
    await meterPty.start();
    await waitFor(() => lastStatus()?.state === 'ACTIVATED', { timeoutMs: 30_000, what: 'ACTIVATED again' });
    await waitFor(async () => (await ping()) === 'OK', { timeoutMs: 10_000, what: 'OK on PING' });
    expect(engine.lines.some((l) => l.includes('serial meter port lost') || l.includes('serial hardware fault link_lost'))).toBe(true);
  }, 120_000);
});
