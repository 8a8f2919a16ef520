import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSerialHal, type SerialHal } from '../../firmware/hal/serial.js';
import { HwProfileSchema, type SerialHalSettings } from '../../hw-profiles/profile.js';
import { silentLogger } from '../../lib/log.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { startPtyPair, type PtyPair } from '../helpers/ptys.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The serial HAL against the board emulator process over real socat pty pairs: relay board on
 * one pair, Modbus meter bus (meter + fault input module) on the other.
 */
describe('serial HAL against the board emulator over ptys', () => {
  let dir: string;
  let relayPty: PtyPair;
  let meterPty: PtyPair;
  let emu: CliProcess;
  let control: string;
  let hal: SerialHal;

  const ctl = async (what: string, method = 'POST') => {
    const res = await fetch(`${control}${what}`, { method });
    expect(res.status).toBe(200);
    return (await res.json()) as { relays: boolean[]; energy_kwh: number; power_kw: number; vehicle_full: boolean; counters: Record<string, number> };
  };
  const stat = (k: string) => hal.stats()[k] as number;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serial-hal-'));
    relayPty = await startPtyPair(dir, 'relay');
    meterPty = await startPtyPair(dir, 'meter');
    // 1 kWh to fill at 7.4 kW, 120x faster: full in about 4 s of wall time.
    emu = spawnCli(['board-emulator', '--relay-port', relayPty.b, '--meter-port', meterPty.b, '--speed', '120', '--battery-kwh', '1', '--soc-start', '0', '--soc-target', '1']);
    const ready = await emu.waitForLine(/board emulator ready/, 30_000);
    control = JSON.parse(ready).control_url as string;
    const profile = HwProfileSchema.parse({
      name: 'serial-test', max_kw: 7.4, price_eur_kwh: 0.3, connector: 'Type2', current: 'AC', phases: 1,
      hal: {
        driver: 'serial', relay: { path: relayPty.a }, meter: { path: meterPty.a, model: 'sdm120' },
        fault_input: { unit_id: 2, kind: 'ground_fault' }, timeout_ms: 500, retries: 3, poll_ms: 100, full_after_ms: 600,
      },
    });
    hal = createSerialHal(profile.hal as SerialHalSettings, { profile, log: silentLogger });
    await hal.start();
    await waitFor(() => stat('meter_replies') > 2 && hal.read(0).faults.length === 0, { timeoutMs: 15_000, what: 'HAL polling a healthy board' });
  }, 60_000);

  afterAll(async () => {
    await hal?.close();
    await emu?.kill('SIGKILL');
    await relayPty?.stop();
    await meterPty?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('closes the relay, meters the energy the vehicle draws, sees it full, opens the relay', async () => {
    expect(hal.read(0)).toMatchObject({ relayClosed: false, powerKw: 0, vehicleFull: false, faults: [] });
    const startKwh = hal.read(0).meterKwh;
    hal.sessionStarted();
    hal.setRelay(true);
    await waitFor(() => hal.read(0).relayClosed && hal.read(0).powerKw > 7, { timeoutMs: 10_000, what: 'relay closed and 7.4 kW metered' });
    expect((await ctl('/state', 'GET')).relays[0]).toBe(true);
    await waitFor(() => hal.read(0).vehicleFull, { timeoutMs: 30_000, what: 'vehicle full' });
    const board = await ctl('/state', 'GET');
    expect(board.vehicle_full).toBe(true);
    const inputs = hal.read(0);
    expect(inputs.powerKw).toBe(0);
    // The battery held 1 kWh: the meter register says so (float32 precision).
    expect(inputs.meterKwh - startKwh).toBeCloseTo(1, 3);
    expect(inputs.meterKwh).toBeCloseTo(board.energy_kwh, 4);
    hal.setRelay(false);
    hal.sessionEnded();
    await waitFor(async () => !hal.read(0).relayClosed && !(await ctl('/state', 'GET')).relays[0], { timeoutMs: 10_000, what: 'relay open on both sides' });
    expect(hal.read(0).vehicleFull).toBe(false);
  }, 60_000);

  it('rejects meter replies with a bad CRC and retries: no fault for a few, meter_failure when they persist', async () => {
    const crc0 = stat('meter_crc_errors');
    const retries0 = stat('meter_retries');
    const replies0 = stat('meter_replies');
    await ctl('/bad-crc?count=2');
    await waitFor(() => stat('meter_crc_errors') >= crc0 + 2 && stat('meter_replies') > replies0 + 2, { timeoutMs: 15_000, what: 'two bad CRCs rejected, good replies after' });
    expect(stat('meter_retries')).toBeGreaterThanOrEqual(retries0 + 2);
    expect(hal.read(0).faults).toEqual([]);

    await ctl('/bad-crc?count=1000');
    await waitFor(() => hal.read(0).faults.includes('meter_failure'), { timeoutMs: 15_000, what: 'meter_failure' });
    await ctl('/bad-crc?count=0');
    await waitFor(() => hal.read(0).faults.length === 0, { timeoutMs: 15_000, what: 'meter_failure cleared' });
  }, 60_000);

  it('resynchronises after random noise bytes before replies and between them', async () => {
    const noise0 = stat('meter_noise_bytes') + stat('stale_bytes');
    const replies0 = stat('meter_replies');
    await ctl('/noise?bytes=40&count=20');
    await ctl('/noise-now?bytes=200&line=meter');
    await ctl('/noise-now?bytes=64&line=relay');
    await waitFor(async () => (await ctl('/state', 'GET')).counters.noise_sent! >= 800, { timeoutMs: 15_000, what: 'noise sent before 20 replies' });
    await waitFor(() => stat('meter_replies') >= replies0 + 20, { timeoutMs: 15_000, what: '20 good replies through the noise' });
    expect(stat('meter_noise_bytes') + stat('stale_bytes')).toBeGreaterThan(noise0);
    expect(hal.read(0).faults).toEqual([]);
    expect(stat('meter_implausible')).toBe(0);
  }, 60_000);

  it('meter silence is link_lost; the fault input is ground_fault; a stuck relay is relay_failure; each clears', async () => {
    await ctl('/meter-silence?on=1');
    await waitFor(() => hal.read(0).faults.includes('link_lost'), { timeoutMs: 15_000, what: 'link_lost on meter silence' });
    await ctl('/meter-silence?on=0');
    await waitFor(() => hal.read(0).faults.length === 0, { timeoutMs: 15_000, what: 'meter back' });

    await ctl('/fault-input?on=1');
    await waitFor(() => hal.read(0).faults.includes('ground_fault'), { timeoutMs: 15_000, what: 'ground_fault from the input module' });
    await ctl('/fault-input?on=0');
    await waitFor(() => hal.read(0).faults.length === 0, { timeoutMs: 15_000, what: 'fault input open again' });

    await ctl('/relay-stuck?on=1');
    hal.setRelay(true);
    await waitFor(() => hal.read(0).faults.includes('relay_failure'), { timeoutMs: 15_000, what: 'relay_failure' });
    expect(hal.read(0).relayClosed).toBe(false);
    await ctl('/relay-stuck?on=0');
    await waitFor(() => hal.read(0).faults.length === 0 && hal.read(0).relayClosed, { timeoutMs: 15_000, what: 'relay follows again' });
    hal.setRelay(false);
    await waitFor(() => !hal.read(0).relayClosed, { timeoutMs: 10_000, what: 'relay open' });
  }, 60_000);

  it('a pty pair torn down is link_lost; brought back, both sides reopen and the fault clears', async () => {
    const reopens0 = stat('reopens');
    await meterPty.stop();
    await waitFor(() => hal.read(0).faults.includes('link_lost') && hal.stats().meter_open === false, { timeoutMs: 15_000, what: 'link_lost after the meter pty went' });
    await relayPty.stop();
    await waitFor(() => hal.stats().relay_open === false, { timeoutMs: 15_000, what: 'relay port closed' });
    await meterPty.start();
    await relayPty.start();
    await waitFor(() => hal.read(0).faults.length === 0 && hal.stats().meter_open && hal.stats().relay_open, { timeoutMs: 30_000, what: 'both lines back, no fault' });
    expect(stat('reopens')).toBeGreaterThanOrEqual(reopens0 + 2);
    const replies = stat('meter_replies');
    await waitFor(() => stat('meter_replies') > replies + 3, { timeoutMs: 15_000, what: 'meter polled again' });
  }, 90_000);
});
