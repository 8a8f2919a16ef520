import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, BUS_TOPICS, embeddedBusTopic, encode, type CentralCommandMsg } from '../../protocol/index.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const procs: CliProcess[] = [];
afterAll(async () => { await Promise.all(procs.map((p) => p.kill('SIGKILL'))); });
const json = async (url: string) => (await fetch(url)).json() as Promise<Record<string, unknown>>;

function ask(port: number, lines: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const want = lines.split('\n').filter(Boolean).length;
    const s = net.connect(port, '127.0.0.1', () => s.write(lines));
    let buf = '';
    s.setTimeout(10_000, () => { s.destroy(); reject(new Error('health port timeout')); });
    s.on('data', (d) => { buf += d.toString(); const got = buf.split('\n').filter(Boolean); if (got.length >= want) { s.destroy(); resolve(got); } });
    s.on('error', reject);
  });
}

describe.each([1, 2])('evcharging fleet --workers %i (real gateway, real MQTT connections and health ports)', (workers) => {
  it('runs many CPs, each connected and serving its own health port, taking commands', async () => {
    const [mqttPort, gwHttp, fleetHttp] = await Promise.all([freePort(), freePort(), freePort()]);
    const gw = spawnCli(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp)]);
    procs.push(gw);
    await gw.waitForLine(/gateway listening/, 30_000);
    const portsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-test-')), 'ports.json');
    const count = 40;
    const prefix = `T${process.pid}-`;
    const fleet = spawnCli(['fleet', '--count', String(count), '--mqtt', `mqtt://127.0.0.1:${mqttPort}`, '--id-prefix', prefix, '--http-port', String(fleetHttp), '--ports-file', portsFile, '--tick-ms', '200', '--workers', String(workers)]);
    procs.push(fleet);

    await waitFor(async () => (await json(`http://127.0.0.1:${fleetHttp}/health`)).connected === count, { timeoutMs: 60_000, what: `${count} CPs connected` });
    await waitFor(async () => Number((await json(`http://127.0.0.1:${gwHttp}/health`)).clients) >= count, { timeoutMs: 30_000, what: 'gateway sees every CP' });
    await waitFor(() => fs.existsSync(portsFile), { timeoutMs: 30_000, what: 'ports file' });
    const ports = JSON.parse(fs.readFileSync(portsFile, 'utf8')) as Record<string, number>;
    expect(Object.keys(ports)).toHaveLength(count);
    expect(new Set(Object.values(ports)).size).toBe(count); // one health port each
    for (const port of Object.values(ports)) expect(await ask(port, 'PING\n')).toEqual(['OK']);

    // A command over the embedded bus reaches one CP through the gateway; its ack and telemetry come back.
    const cpId = `${prefix}0007`;
    const svc = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `fleet-test-${process.pid}` });
    const seen: Array<Record<string, unknown>> = [];
    svc.on('message', (_t, p) => seen.push(JSON.parse(p.toString()) as Record<string, unknown>));
    await svc.subscribeAsync([`bus/${BUS_TOPICS.cpStatus}/${cpId}`, `bus/${BUS_TOPICS.cpTelemetry}/${cpId}`], { qos: 1 });
    const cmd: CentralCommandMsg = { v: PROTOCOL_VERSION, command_id: `c-${process.pid}`, cp_id: cpId, command: 'START_SUPPLY', session_id: `s-${process.pid}`, driver_id: 'driver-test', ts: Date.now() };
    await svc.publishAsync(embeddedBusTopic(BUS_TOPICS.centralCommands, cpId), encode(cmd), { qos: 1 });
    await waitFor(() => seen.find((m) => m.type === 'ack' && m.command_id === cmd.command_id && m.ok === true), { timeoutMs: 20_000, what: 'ack' });
    await waitFor(() => seen.find((m) => m.type === 'telemetry' && m.session_id === cmd.session_id), { timeoutMs: 20_000, what: 'telemetry' });
    const status = JSON.parse((await ask(ports[cpId]!, 'STATUS\n'))[0]!.slice(3)) as { state: string };
    expect(status.state).toBe('SUPPLYING');

    // Garbage on a health port is answered with ERR and counted; the port keeps serving.
    const port = ports[`${prefix}0001`]!;
    expect((await ask(port, 'HELLO\n'))[0]).toMatch(/^ERR /);
    expect(await ask(port, 'PING\n')).toEqual(['OK']);

    // SIGTERM: every CP closes cleanly, the session in progress ends, the gateway sees them go.
    await fleet.kill('SIGTERM');
    expect((await fleet.exited).code).toBe(0);
    await waitFor(() => seen.find((m) => m.type === 'session_end' && m.session_id === cmd.session_id), { timeoutMs: 20_000, what: 'session_end on shutdown' });
    await waitFor(async () => Number((await json(`http://127.0.0.1:${gwHttp}/health`)).clients) <= 1, { timeoutMs: 30_000, what: 'fleet clients gone' });
    await svc.endAsync();
    expect(fleet.logs().filter((l) => Number(l.level) >= 50)).toEqual([]);
    // Several workers: each CP ran in one of them, so the engines were spread over processes.
    if (workers > 1) expect(new Set(fleet.logs().filter((l) => l.msg === 'fleet started' && l.count !== undefined).map((l) => l.pid)).size).toBe(workers);
  });
});
