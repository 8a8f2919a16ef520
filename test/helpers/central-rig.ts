import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { EMBEDDED_BUS_PREFIX, PROTOCOL_VERSION, type BusTopic } from '../../protocol/index.js';
import { centralSpec, engineSpec, gatewaySpec, type NetworkSettings } from '../../network/plan.js';
import { loopbackSettings } from './network.js';
import { freePort } from './ports.js';
import { spawnCli, type CliProcess } from './processes.js';
import { waitFor } from './wait.js';

/**
 * Central's integration rig: a real `evcharging gateway --dev` process (the embedded bus), a
 * real `evcharging central` process on a temp data dir (killable and restartable on the same
 * dir), optional real `evcharging cp` engines, and a test MQTT client on the gateway that
 * records every bus message and publishes hand-made ones where a test needs exact control.
 */

export type Json = Record<string, unknown>;
export interface Rec { topic: string; key: string; raw: string; value: Json; at: number }

export class CentralRig {
  central?: CliProcess;
  readonly engines = new Map<string, { proc: CliProcess; healthPort: number; args: string[] }>();
  readonly records: Rec[] = [];
  get token(): string { return this.settings.adminToken; }
  readonly mqttUrl: string;
  centralUrl = '';
  private client?: MqttClient;
  private runs: string[][] = [];

  private constructor(readonly dir: string, public gateway: CliProcess, readonly settings: NetworkSettings, private readonly centralArgs: string[]) {
    const ports = { mqtt: settings.gatewayMqttPort, central: settings.centralPort };
    this.mqttUrl = `mqtt://127.0.0.1:${ports.mqtt}`;
    this.centralUrl = `http://127.0.0.1:${ports.central}`;
  }

  static async start(opts: { centralArgs?: string[] } = {}): Promise<CentralRig> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'central-it-'));
    const ports = { mqtt: await freePort(), gatewayHttp: await freePort(), central: await freePort() };
    const settings = loopbackSettings(ports, dir, `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`);
    const gateway = spawnCli(gatewaySpec(settings).args);
    const rig = new CentralRig(dir, gateway, settings, opts.centralArgs ?? []);
    try {
      await waitFor(async () => {
        if (gateway.child.exitCode !== null) throw new Error(`gateway exited:\n${gateway.lines.join('\n')}`);
        try { return (await fetch(`http://127.0.0.1:${ports.gatewayHttp}/health`)).ok; } catch { return false; }
      }, { timeoutMs: 60_000, intervalMs: 200, what: 'gateway /health' });
      await rig.record();
      await rig.startCentral();
    } catch (err) {
      await rig.stop();
      throw err;
    }
    return rig;
  }

  /** SIGKILLs the gateway and starts it again on the same ports (its broker state is lost). */
  async restartGateway(): Promise<void> {
    await this.gateway.kill('SIGKILL');
    const g = spawnCli(gatewaySpec(this.settings).args);
    this.gateway = g;
    await waitFor(async () => {
      if (g.child.exitCode !== null) throw new Error(`gateway exited:\n${g.lines.join('\n')}`);
      try { return (await fetch(`http://127.0.0.1:${this.settings.gatewayHttpPort}/health`)).ok; } catch { return false; }
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'gateway /health after restart' });
  }

  /** Records every bus message (`bus/<topic>/<key>`) through an independent client. */
  private async record(): Promise<void> {
    const c = mqtt.connect(this.mqttUrl, { clientId: `central-it-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, clean: true, protocolVersion: 4, reconnectPeriod: 500 });
    c.on('error', () => undefined);
    c.on('message', (topic, payload) => {
      const parts = topic.split('/');
      if (parts.length !== 3 || parts[0] !== EMBEDDED_BUS_PREFIX) return;
      const raw = payload.toString();
      let value: Json = {};
      try { value = JSON.parse(raw) as Json; } catch { /* kept raw */ }
      this.records.push({ topic: parts[1]!, key: parts[2]!, raw, value, at: Date.now() });
    });
    let ok = false;
    c.on('connect', () => c.subscribe(`${EMBEDDED_BUS_PREFIX}/#`, { qos: 1 }, (err) => { if (!err) ok = true; }));
    await waitFor(() => ok, { timeoutMs: 30_000, what: 'test bus client subscribed' });
    this.client = c;
  }

  /** Publishes on the bus as a producer would (a string is sent as is, for garbage). */
  async publish(topic: BusTopic, key: string, value: Json | string): Promise<void> {
    await this.client!.publishAsync(`${EMBEDDED_BUS_PREFIX}/${topic}/${key}`, typeof value === 'string' ? value : JSON.stringify(value), { qos: 1 });
  }

  of(topic: BusTopic, key?: string): Json[] {
    return this.records.filter((r) => r.topic === topic && (key === undefined || r.key === key)).map((r) => r.value);
  }

  async startCentral(): Promise<void> {
    const args = [...centralSpec(this.settings).args, ...this.centralArgs];
    this.runs.push(args);
    const p = spawnCli(args, { env: centralSpec(this.settings).env });
    this.central = p;
    await waitFor(async () => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`central exited:\n${p.lines.join('\n')}`);
      try {
        const h = await (await fetch(`${this.centralUrl}/health`)).json() as Json;
        return h.bus_consumer === 'connected';
      } catch { return false; }
    }, { timeoutMs: 60_000, intervalMs: 200, what: `central up with its bus connected\n${p.lines.slice(-10).join('\n')}` });
  }

  async killCentral(): Promise<void> { await this.central!.kill('SIGKILL'); }

  /** Starts an engine process; resolves when central lists it ACTIVATED. */
  async addEngine(id: string, profile = 'dc-50kw', speed = 300): Promise<void> {
    const healthPort = await freePort();
    const args = engineSpec({ ...this.settings, speed }, { id, healthPort, profile }).args;
    this.engines.set(id, { proc: spawnCli(args), healthPort, args });
    await waitFor(async () => {
      const e = this.engines.get(id)!.proc;
      if (e.child.exitCode !== null) throw new Error(`engine ${id} exited:\n${e.lines.join('\n')}`);
      const cp = await this.cp(id);
      return cp?.state === 'ACTIVATED';
    }, { timeoutMs: 60_000, intervalMs: 200, what: `central lists ${id} ACTIVATED` });
  }

  async get(p: string): Promise<{ status: number; body: Json }> {
    const r = await fetch(`${this.centralUrl}${p}`, { signal: AbortSignal.timeout(10_000) });
    const text = await r.text();
    let body: Json = {};
    try { body = JSON.parse(text) as Json; } catch { body = { text }; }
    return { status: r.status, body };
  }

  async post(p: string, o: { token?: string | null; body?: string | Json; contentType?: string } = {}): Promise<{ status: number; body: Json }> {
    const headers: Record<string, string> = {};
    const token = o.token === undefined ? this.token : o.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (o.body !== undefined) headers['content-type'] = o.contentType ?? 'application/json';
    const r = await fetch(`${this.centralUrl}${p}`, {
      method: 'POST', headers, body: o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body), signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    let body: Json = {};
    try { body = JSON.parse(text) as Json; } catch { body = { text }; }
    return { status: r.status, body };
  }

  async cp(id: string): Promise<Json | undefined> {
    const r = await this.get('/cp');
    return (r.body.charging_points as Json[] | undefined)?.find((c) => c.cp_id === id);
  }
  async sessions(): Promise<Json[]> { return (await this.get('/sessions')).body.sessions as Json[]; }
  async health(): Promise<Json> { return (await this.get('/health')).body; }

  /** A driver request as the driver process sends it. */
  request(driverId: string, action: 'REQUEST' | 'STOP' | 'QUERY', cpId?: string, requestId = `${driverId}-${action}-${Math.random().toString(36).slice(2, 8)}`): Promise<string> {
    return this.publish('driver.requests', driverId, { v: PROTOCOL_VERSION, request_id: requestId, driver_id: driverId, action, ...(cpId ? { cp_id: cpId } : {}), ts: Date.now() })
      .then(() => requestId);
  }

  /** Waits for a driver update matching `pred` and returns it. */
  update(driverId: string, pred: (u: Json) => boolean, what: string, timeoutMs = 30_000): Promise<Json> {
    return waitFor(() => this.of('driver.updates', driverId).find(pred), { timeoutMs, intervalMs: 50, what: `${what}; ${driverId} got ${JSON.stringify(this.of('driver.updates', driverId).map((u) => [u.status, u.reason ?? '']))}\n${this.central?.lines.slice(-8).join('\n')}` });
  }

  /** A CP status as an engine (or the gateway, for a last will) would put it on cp.status. */
  status(cpId: string, state: string, seq: number, extra: Json = {}): Promise<void> {
    return this.publish('cp.status', cpId, { v: PROTOCOL_VERSION, type: 'status', cp_id: cpId, state, faults: [], source: 'engine', seq, ts: Date.now(), ...extra });
  }
  announce(cpId: string, bootId = 'boot-1', price = 0.4): Promise<void> {
    return this.publish('cp.status', cpId, {
      v: PROTOCOL_VERSION, type: 'announce', cp_id: cpId, boot_id: bootId, fw_version: 'test', ts: Date.now(),
      profile: { name: 'test-profile', max_kw: 22, price_eur_kwh: price, connector: 'Type2', phases: 3, hal: 'sim' },
    });
  }

  async stop(): Promise<void> {
    for (const e of this.engines.values()) await e.proc.kill('SIGKILL');
    if (this.central) await this.central.kill('SIGTERM').catch(() => undefined);
    await this.client?.endAsync(true).catch(() => undefined);
    await this.gateway.kill('SIGKILL');
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/** Whether a TCP port accepts connections (an engine's health port). */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
