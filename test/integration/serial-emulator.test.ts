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

describe('evcharging board-emulator process', () => {
  let dir: string;
  let relayPty: PtyPair;
  let meterPty: PtyPair;
  const procs: CliProcess[] = [];
  let hal: SerialHal | undefined;

  const emulator = async () => {
    const p = spawnCli(['board-emulator', '--relay-port', relayPty.b, '--meter-port', meterPty.b, '--speed', '3600', '--battery-kwh', '0.5']);
    procs.push(p);
    return { p, control: JSON.parse(await p.waitForLine(/board emulator ready/, 30_000)).control_url as string };
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serial-emu-'));
    relayPty = await startPtyPair(dir, 'relay');
    meterPty = await startPtyPair(dir, 'meter');
  }, 30_000);
  afterAll(async () => {
    await hal?.close();
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await relayPty?.stop();
    await meterPty?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it.each([
    [['board-emulator', '--meter-port', 'x'], /--relay-port/],
    [['board-emulator', '--relay-port', 'x', '--meter-port', 'y', '--soc-start', '0.9', '--soc-target', '0.5'], /--soc-start/],
    [['board-emulator', '--relay-port', 'x', '--meter-port', 'y', '--vehicle-kw', 'lots'], /--vehicle-kw/],
    [['board-emulator', '--relay-port', 'x', '--meter-port', 'y', '--meter-unit', '2'], /--meter-unit/],
  ])('bad config %j -> one line naming the option, exit 2', async (args, re) => {
    const p = spawnCli(args);
    procs.push(p);
    const { code } = await p.exited;
    expect(code).toBe(2);
    const out = p.lines.filter((l) => l.trim());
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(re);
  }, 30_000);

  it('control port: bad values are 400, unknown controls 404, the process keeps serving', async () => {
    const { control } = await emulator();
    expect((await fetch(`${control}/bad-crc?count=abc`, { method: 'POST' })).status).toBe(400);
    expect((await fetch(`${control}/noise?bytes=999999`, { method: 'POST' })).status).toBe(400);
    expect((await fetch(`${control}/meter-silence?on=maybe`, { method: 'POST' })).status).toBe(400);
    expect((await fetch(`${control}/nope`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${control}/state`, { method: 'DELETE' })).status).toBe(404);
    const st = await (await fetch(`${control}/state`)).json() as { relay_port_open: boolean; meter_port_open: boolean };
    expect(st).toMatchObject({ relay_port_open: true, meter_port_open: true });
  }, 60_000);

  it('the emulator side killed (SIGKILL) is link_lost at the HAL; a new emulator on the same ptys clears it', async () => {
    const profile = HwProfileSchema.parse({
      name: 'serial-test', max_kw: 7.4, price_eur_kwh: 0.3, connector: 'Type2', current: 'AC', phases: 1,
      hal: { driver: 'serial', relay: { path: relayPty.a }, meter: { path: meterPty.a }, timeout_ms: 500, retries: 1, poll_ms: 100 },
    });
    hal = createSerialHal(profile.hal as SerialHalSettings, { profile, log: silentLogger });
    await hal.start();
    await waitFor(() => hal!.read(0).faults.length === 0 && (hal!.stats().meter_replies as number) > 0, { timeoutMs: 15_000, what: 'healthy HAL' });
    // Some energy on the register, so that the new emulator's register starts lower.
    hal.setRelay(true);
    await waitFor(() => hal!.read(0).meterKwh > 0.1, { timeoutMs: 15_000, what: 'energy metered' });
    hal.setRelay(false);
    for (const p of procs.splice(0)) await p.kill('SIGKILL');
    await waitFor(() => hal!.read(0).faults.includes('link_lost'), { timeoutMs: 15_000, what: 'link_lost with nobody on the far side' });
    await emulator();
    // A replaced meter (register back at 0) is taken as the new baseline, not a fault forever.
    await waitFor(() => hal!.read(0).faults.length === 0 && hal!.read(0).meterKwh === 0, { timeoutMs: 20_000, what: 'recovered with the new meter' });
    expect(hal.stats().meter_implausible).toBeGreaterThan(0);
    await hal.close();
    hal = undefined;
  }, 90_000);

  it('a relay board without the status query (feedback none): the command is trusted, a missing port is link_lost', async () => {
    for (const p of procs.splice(0)) await p.kill('SIGKILL'); // one board on the lines at a time
    const { control } = await emulator();
    const profile = HwProfileSchema.parse({
      name: 'serial-test', max_kw: 7.4, price_eur_kwh: 0.3, connector: 'Type2', current: 'AC', phases: 1,
      hal: { driver: 'serial', relay: { path: relayPty.a, feedback: 'none' }, meter: { path: meterPty.a }, timeout_ms: 500, retries: 1, poll_ms: 100 },
    });
    hal = createSerialHal(profile.hal as SerialHalSettings, { profile, log: silentLogger });
    await hal.start();
    await waitFor(() => hal!.read(0).faults.length === 0 && (hal!.stats().meter_replies as number) > 0, { timeoutMs: 15_000, what: 'healthy HAL' });
    hal.setRelay(true);
    await waitFor(async () => ((await (await fetch(`${control}/state`)).json()) as { relays: boolean[] }).relays[0] && hal!.read(0).relayClosed, { timeoutMs: 10_000, what: 'relay closed on command' });
    expect(hal.stats().relay_queries).toBe(0);
    await relayPty.stop();
    await waitFor(() => hal!.read(0).faults.includes('link_lost'), { timeoutMs: 15_000, what: 'link_lost without the relay port' });
    await relayPty.start();
    await waitFor(() => hal!.read(0).faults.length === 0, { timeoutMs: 20_000, what: 'relay port back' });
  }, 90_000);
});
