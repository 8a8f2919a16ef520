import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpAnnounceMsg, CpStatusMsg, CpTelemetryMsg, encode, mqttTopics } from '../../protocol/index.js';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, spawnCli, type CliProcess } from '../helpers/processes.js';
import { startPtyPair, type PtyPair } from '../helpers/ptys.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

/** ELF e_machine of a native module: what CPU it was built for. */
async function elfMachine(file: string): Promise<number> {
  const fh = await fs.open(file);
  try {
    const b = Buffer.alloc(20);
    await fh.read(b, 0, 20, 0);
    expect(b.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    return b.readUInt16LE(18);
  } finally { await fh.close(); }
}

/**
 * `npm run bundle:firmware`, unpacked into an empty folder outside the repository and started
 * with plain `node` (no tsx, no repository node_modules), against a gateway process and the
 * board emulator over socat ptys.
 */
describe('firmware bundle', () => {
  let work: string;
  let unpacked: string;
  const procs: CliProcess[] = [];
  let fw: ChildProcess | undefined;
  const fwLines: string[] = [];
  let relayPty: PtyPair;
  let meterPty: PtyPair;
  let client: MqttClient | undefined;

  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'fw-bundle-'));
    const out = path.join(work, 'out');
    const { stdout } = await run('npm', ['run', '--silent', 'bundle:firmware', '--', '--out', out], { cwd: REPO_ROOT, timeout: 180_000 });
    expect(stdout).toMatch(/bundle-firmware: .*\.tar\.gz/);
    const tarballs = (await fs.readdir(out)).filter((f) => f.endsWith('.tar.gz'));
    expect(tarballs).toEqual(['evcharging-firmware-0.1.0-serial-lcus-sdm120.tar.gz']);
    unpacked = path.join(work, 'pi');
    await fs.mkdir(unpacked);
    expect(await fs.readdir(unpacked)).toEqual([]);
    await run('tar', ['-xzf', path.join(out, tarballs[0]!), '-C', unpacked]);
    unpacked = path.join(unpacked, 'evcharging-firmware');
  }, 240_000);

  afterAll(async () => {
    if (fw && fw.exitCode === null && fw.signalCode === null) { const gone = new Promise((r) => fw!.once('exit', r)); fw.kill('SIGKILL'); await gone; }
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await client?.endAsync(true);
    await relayPty?.stop();
    await meterPty?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('holds the bundled JavaScript, the profile, a restarting systemd unit, the install script and only the Linux serial bindings', async () => {
    const files = await fs.readdir(unpacked);
    expect(files).toEqual(expect.arrayContaining(['main.js', 'serial.js', 'profile.json', 'package.json', 'install.sh', 'evcharging-firmware.service', 'firmware.env', 'MANIFEST.json', 'README.md', 'node_modules']));
    expect(JSON.parse(await fs.readFile(path.join(unpacked, 'profile.json'), 'utf8'))).toMatchObject({ name: 'serial-lcus-sdm120', hal: { driver: 'serial' } });
    const unit = await fs.readFile(path.join(unpacked, 'evcharging-firmware.service'), 'utf8');
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^ExecStart=.*main\.js cp$/m);
    expect(unit).toMatch(/^SupplementaryGroups=dialout$/m);
    const install = path.join(unpacked, 'install.sh');
    expect((await fs.stat(install)).mode & 0o111).toBeTruthy();
    await run('sh', ['-n', install]); // parses as POSIX sh
    const prebuilds = path.join(unpacked, 'node_modules/@serialport/bindings-cpp/prebuilds');
    expect((await fs.readdir(prebuilds)).sort()).toEqual(['linux-arm', 'linux-arm64', 'linux-x64']);
    // The binaries really are for the Pi's CPUs: EM_AARCH64 183, EM_ARM 40, EM_X86_64 62.
    expect(await elfMachine(path.join(prebuilds, 'linux-arm64/@serialport+bindings-cpp.armv8.glibc.node'))).toBe(183);
    expect(await elfMachine(path.join(prebuilds, 'linux-arm/@serialport+bindings-cpp.armv7.glibc.node'))).toBe(40);
    expect(await elfMachine(path.join(prebuilds, 'linux-arm/@serialport+bindings-cpp.armv6.glibc.node'))).toBe(40);
    expect(await elfMachine(path.join(prebuilds, 'linux-x64/@serialport+bindings-cpp.glibc.node'))).toBe(62);
    // Nothing of the network side came along.
    const js = (await Promise.all(files.filter((f) => f.endsWith('.js')).map((f) => fs.readFile(path.join(unpacked, f), 'utf8')))).join('\n');
    expect(js).not.toMatch(/kafkajs|fastify/i);
  });

  it('starts with plain node from the unpacked folder, drives the serial hardware and its status arrives at a gateway', async () => {
    relayPty = await startPtyPair(work, 'relay');
    meterPty = await startPtyPair(work, 'meter');
    const emu = spawnCli(['board-emulator', '--relay-port', relayPty.b, '--meter-port', meterPty.b, '--speed', '60']);
    procs.push(emu);
    const control = JSON.parse(await emu.waitForLine(/board emulator ready/, 30_000)).control_url as string;
    const mqttPort = await freePort();
    const gw = spawnCli(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', '0']);
    procs.push(gw);
    await gw.waitForLine(/gateway listening/, 30_000);
    const url = `mqtt://127.0.0.1:${mqttPort}`;

    const cpId = `CP-PI-${process.pid}`;
    const seen: Array<{ topic: string; msg: Record<string, unknown> }> = [];
    client = await mqtt.connectAsync(url, { clientId: `watch-${cpId}`, reconnectPeriod: 500 });
    client.on('message', (topic, payload) => { try { seen.push({ topic, msg: JSON.parse(payload.toString()) }); } catch { /* not JSON */ } });
    await client.subscribeAsync(`cp/${cpId}/#`, { qos: 1 });

    // The bundled profile names the Pi's USB adapters; here they are the pty ends.
    const profile = JSON.parse(await fs.readFile(path.join(unpacked, 'profile.json'), 'utf8'));
    profile.hal.relay.path = relayPty.a;
    profile.hal.meter.path = meterPty.a;
    Object.assign(profile.hal, { poll_ms: 100, timeout_ms: 500, retries: 3 });
    await fs.writeFile(path.join(unpacked, 'profile.json'), JSON.stringify(profile));

    const healthPort = await freePort();
    // Plain node, a bare environment: nothing from the repository (no tsx loader, no NODE_PATH).
    fw = spawn(process.execPath, ['main.js', 'cp', '--health-host', '127.0.0.1'], {
      cwd: unpacked,
      env: { PATH: process.env.PATH, CP_ENGINE_ID: cpId, CP_ENGINE_MQTT_URL: url, CP_ENGINE_HEALTH_PORT: String(healthPort), CP_ENGINE_PROFILE: './profile.json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const s of [fw.stdout!, fw.stderr!]) { s.setEncoding('utf8'); s.on('data', (d: string) => fwLines.push(...d.split('\n').filter(Boolean))); }
    const exited = new Promise<number | null>((r) => fw!.once('exit', (code) => r(code)));

    const status = await waitFor(() => seen.find((s) => s.topic === mqttTopics.status(cpId) && s.msg.state === 'ACTIVATED'), { timeoutMs: 30_000, what: () => `ACTIVATED status; firmware output:\n${fwLines.slice(-10).join('\n')}` });
    expect(CpStatusMsg.parse(status.msg)).toMatchObject({ cp_id: cpId, source: 'engine', faults: [] });
    const announce = CpAnnounceMsg.parse(await waitFor(() => seen.find((s) => s.topic === mqttTopics.announce(cpId))?.msg, { timeoutMs: 15_000, what: 'announce' }));
    expect(announce.profile).toMatchObject({ name: 'serial-lcus-sdm120', hal: 'serial' });

    // The serial binding loaded from the package: a session closes the relay at the board and meters power.
    const cmd = { v: 1, command_id: `cmd-${cpId}`, cp_id: cpId, command: 'START_SUPPLY', session_id: `S-${cpId}`, driver_id: 'driver-pi', ts: Date.now() };
    await client.publishAsync(mqttTopics.command(cpId), encode(cmd), { qos: 1 });
    await waitFor(async () => ((await (await fetch(`${control}/state`)).json()) as { relays: boolean[] }).relays[0], { timeoutMs: 15_000, what: 'relay closed at the board' });
    const tel = await waitFor(() => seen.filter((s) => s.topic === mqttTopics.telemetry(cpId)).map((s) => CpTelemetryMsg.parse(s.msg)).find((t) => t.kw > 7 && t.kwh > 0), { timeoutMs: 20_000, what: 'metered telemetry' });
    expect(tel.session_id).toBe(`S-${cpId}`);

    fw.kill('SIGTERM');
    expect(await exited).toBe(0);
    await waitFor(async () => !((await (await fetch(`${control}/state`)).json()) as { relays: boolean[] }).relays[0], { timeoutMs: 10_000, what: 'relay left open after shutdown' });
  }, 180_000);
});
