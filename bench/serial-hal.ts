/**
 * Serial HAL benchmark: the serial HAL polling as fast as it can (poll_ms 1) against the board
 * emulator process over socat pty pairs, for a few seconds per phase, and the Modbus read rate
 * and mean round trip it gets: clean lines, then 32 random bytes before every reply, then a bad
 * CRC every 500 ms (each costs a retry after the timeout). Needs socat.
 *   npm run bench:serial -- [seconds-per-phase]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSerialHal } from '../firmware/hal/serial.js';
import { HwProfileSchema, type SerialHalSettings } from '../hw-profiles/profile.js';
import { silentLogger } from '../lib/log.js';

const seconds = Number(process.argv[2] ?? 5);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serial-'));
const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, ok: () => boolean) => {
  for (const end = Date.now() + 20_000; !ok(); await sleep(20)) if (Date.now() > end) throw new Error(`timed out: ${what}`);
};

function socat(name: string) {
  const c = spawn('socat', [`pty,raw,echo=0,link=${dir}/${name}A`, `pty,raw,echo=0,link=${dir}/${name}B`], { stdio: 'ignore' });
  children.push(c);
  return until(`pty pair ${name}`, () => fs.existsSync(`${dir}/${name}A`) && fs.existsSync(`${dir}/${name}B`));
}

try {
  await Promise.all([socat('relay'), socat('meter')]);
  const emu = spawn(process.execPath, [path.join(ROOT, 'bin/evcharging.js'), 'board-emulator', '--relay-port', `${dir}/relayB`, '--meter-port', `${dir}/meterB`], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'info' } });
  children.push(emu);
  let out = '';
  emu.stdout!.setEncoding('utf8');
  emu.stdout!.on('data', (d: string) => { out += d; });
  await until('emulator ready', () => /board emulator ready/.test(out));
  const control = (JSON.parse(out.split('\n').find((l) => l.includes('board emulator ready'))!) as { control_url: string }).control_url;
  const ctl = (q: string) => fetch(`${control}${q}`, { method: 'POST' });

  const profile = HwProfileSchema.parse({
    name: 'bench', max_kw: 7.4, price_eur_kwh: 0.3, connector: 'Type2', current: 'AC', phases: 1,
    hal: { driver: 'serial', relay: { path: `${dir}/relayA` }, meter: { path: `${dir}/meterA` }, timeout_ms: 100, retries: 3, poll_ms: 1 },
  });
  const hal = createSerialHal(profile.hal as SerialHalSettings, { profile, log: silentLogger });
  await hal.start();
  const stat = (k: string) => hal.stats()[k] as number;
  await until('first replies', () => stat('meter_replies') > 10);

  const phase = async (name: string) => {
    const r0 = stat('meter_replies'), e0 = stat('meter_crc_errors'), n0 = stat('meter_noise_bytes'), t0 = performance.now();
    await sleep(seconds * 1000);
    const dt = (performance.now() - t0) / 1000, replies = stat('meter_replies') - r0;
    console.log(`${name.padEnd(34)} ${(replies / dt).toFixed(0).padStart(6)} reads/s  ${((dt * 1000) / replies).toFixed(2).padStart(6)} ms/read  crc errors ${stat('meter_crc_errors') - e0}  noise bytes ${stat('meter_noise_bytes') - n0}  faults [${hal.read(0).faults.join(',')}]`);
  };
  console.log(`serial HAL vs board emulator over socat ptys, ${seconds} s per phase (one relay query + two meter reads per poll)`);
  await phase('clean lines');
  await ctl('/noise?bytes=32&count=1000000');
  await phase('32 noise bytes before every reply');
  await ctl('/noise?bytes=0&count=0');
  // One bad CRC every 500 ms: each costs a retry after the 100 ms timeout.
  const arm = setInterval(() => { void ctl('/bad-crc?count=1'); }, 500);
  await phase('a bad CRC every 500 ms');
  clearInterval(arm);
  await hal.close();
} finally {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
}
