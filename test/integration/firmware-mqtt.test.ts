import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommandAckMsg, CpStatusMsg, CpTelemetryMsg, SessionEndMsg, encode } from '../../protocol/index.js';
import { startAedes, startMosquitto, type TestBroker } from '../helpers/brokers.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);

interface Seen { topic: string; msg: Record<string, unknown>; retain: boolean }

/** A plain MQTT client that records everything under cp/<id>/. */
async function watch(url: string, cpId: string, name = 'watch') {
  const seen: Seen[] = [];
  const client: MqttClient = await mqtt.connectAsync(url, { clientId: `${name}-${cpId}`, reconnectPeriod: 500 });
  client.on('message', (topic, payload, packet) => {
    try { seen.push({ topic, msg: JSON.parse(payload.toString()), retain: packet.retain }); } catch { /* not JSON: ignore */ }
  });
  await client.subscribeAsync(`cp/${cpId}/#`, { qos: 1 });
  return { seen, client, on: (ch: string) => seen.filter((s) => s.topic === `cp/${cpId}/${ch}`) };
}

const brokers: Array<[string, () => Promise<TestBroker>]> = [['aedes', startAedes], ['mosquitto', startMosquitto]];

describe.each(brokers)('engine process against a real broker (%s)', (kind, start) => {
  let broker: TestBroker;
  const procs: CliProcess[] = [];
  const clients: MqttClient[] = [];
  let n = 0;
  const cpId = () => `CP-${kind.slice(0, 3).toUpperCase()}-${process.pid}-${++n}`;

  beforeAll(async () => { broker = await start(); });
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });
  afterAll(async () => { await broker?.stop(); });

  async function engine(id: string) {
    const port = await freePort();
    const p = spawnCli(['cp', '--id', id, '--health-port', String(port), '--health-host', '127.0.0.1', '--mqtt', broker.url, '--speed', '60']);
    procs.push(p);
    await p.waitForLine(/"engine ready"/, 30_000);
    return { p, port };
  }

  it('retained ACTIVATED status, START_SUPPLY ack and telemetry, then SIGKILL leaves the last-will DISCONNECTED', async () => {
    const id = cpId();
    const { p } = await engine(id);
    await p.waitForLine((l) => l.includes(`${id}: DISCONNECTED + CONNECT -> ACTIVATED`), 30_000);
    // The log line can come before the broker has the status: a first client sees it (live or
    // retained), then one that arrives after that must read it retained.
    const w = await watch(broker.url, id);
    clients.push(w.client);
    await waitFor(() => w.on('status').find((s) => s.msg.state === 'ACTIVATED'), { timeoutMs: 15_000, what: 'ACTIVATED status' });
    const late = await watch(broker.url, id, 'late');
    clients.push(late.client);
    const retained = await waitFor(() => late.on('status').find((s) => s.retain), { timeoutMs: 15_000, what: 'retained status' });
    expect(CpStatusMsg.parse(retained.msg)).toMatchObject({ cp_id: id, state: 'ACTIVATED', source: 'engine' });

    const cmd = { v: 1, command_id: `cmd-${id}`, cp_id: id, command: 'START_SUPPLY', session_id: `S-${id}`, driver_id: 'D-1', ts: Date.now() };
    await w.client.publishAsync(`cp/${id}/cmd`, encode(cmd), { qos: 1 });
    const ack = await waitFor(() => w.on('ack')[0], { timeoutMs: 15_000, what: 'ack' });
    expect(CommandAckMsg.parse(ack.msg)).toMatchObject({ command_id: cmd.command_id, ok: true, state: 'SUPPLYING' });
    const tel = await waitFor(() => w.on('telemetry').find((t) => (t.msg.kwh as number) > 0), { timeoutMs: 15_000, what: 'telemetry' });
    expect(CpTelemetryMsg.parse(tel.msg)).toMatchObject({ session_id: cmd.session_id, kw: 22 });

    // The same command again: the same ack, still one session.
    await w.client.publishAsync(`cp/${id}/cmd`, encode(cmd), { qos: 1 });
    await waitFor(() => w.on('ack').length >= 2, { timeoutMs: 15_000, what: 'second ack' });
    expect(w.on('ack')[1]!.msg).toEqual(ack.msg);

    // Garbage on the command topic is counted and logged, the engine carries on.
    await w.client.publishAsync(`cp/${id}/cmd`, Buffer.from([0xff, 0x00, 0x13]), { qos: 1 });
    await p.waitForLine(/"bad command ignored"/);

    await p.kill('SIGKILL');
    const will = await waitFor(() => w.on('status').find((s) => s.msg.source === 'last_will'), { timeoutMs: 20_000, what: 'last will' });
    expect(CpStatusMsg.parse(will.msg)).toMatchObject({ cp_id: id, state: 'DISCONNECTED', source: 'last_will' });
  });

  it('SIGTERM: a clean DISCONNECTED status (no last will), session ended, exit 0', async () => {
    const id = cpId();
    const { p } = await engine(id);
    const w = await watch(broker.url, id);
    clients.push(w.client);
    await waitFor(() => w.on('status').find((s) => s.msg.state === 'ACTIVATED'), { timeoutMs: 15_000, what: 'ACTIVATED' });
    await w.client.publishAsync(`cp/${id}/cmd`, encode({ v: 1, command_id: `c-${id}`, cp_id: id, command: 'START_SUPPLY', session_id: `S-${id}`, ts: Date.now() }), { qos: 1 });
    await waitFor(() => w.on('status').find((s) => s.msg.state === 'SUPPLYING'), { timeoutMs: 15_000, what: 'SUPPLYING' });
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const last = await waitFor(() => w.on('status').find((s) => s.msg.state === 'DISCONNECTED'), { timeoutMs: 15_000, what: 'DISCONNECTED' });
    expect(last.msg).toMatchObject({ source: 'engine', reason: 'shutdown' });
    const end = await waitFor(() => w.on('session')[0], { timeoutMs: 15_000, what: 'session end' });
    expect(SessionEndMsg.parse(end.msg)).toMatchObject({ reason: 'disconnected', session_id: `S-${id}` });
    expect(w.on('status').some((s) => s.msg.source === 'last_will')).toBe(false);
  });

  if (kind === 'mosquitto') {
    it('a third-party client (mosquitto_sub) reads the retained status', async () => {
      const id = cpId();
      const { p } = await engine(id);
      await p.waitForLine((l) => l.includes(`${id}: DISCONNECTED + CONNECT -> ACTIVATED`), 30_000);
      const got = await waitFor(async () => {
        const { stdout } = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', `cp/${id}/status`, '-C', '1', '-W', '5']).catch(() => ({ stdout: '' }));
        return stdout.trim() && JSON.parse(stdout.trim()).state === 'ACTIVATED' ? stdout : undefined;
      }, { timeoutMs: 20_000, what: 'mosquitto_sub retained status' });
      expect(CpStatusMsg.parse(JSON.parse(got))).toMatchObject({ cp_id: id, state: 'ACTIVATED' });
    });
  }
});
