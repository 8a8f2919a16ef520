import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { EMBEDDED_BUS_PREFIX, PROTOCOL_VERSION, type BusTopic } from '../../protocol/index.js';
import { hashSecret, upsertCredential } from '../../registry/credentials.js';
import { freePort } from './ports.js';
import { spawnCli, type CliProcess } from './processes.js';
import { waitFor } from './wait.js';

/**
 * A gateway with credentials and an OCPP port, and central, as real `evcharging` processes on
 * the embedded bus; the test's own bus client (role central) records every bus message and
 * puts driver requests on the bus with each driver's own credentials, as a driver process would.
 */
export type Json = Record<string, unknown>;
export interface Rec { topic: string; key: string; value: Json; at: number }

export class OcppNetwork {
  readonly records: Rec[] = [];
  central?: CliProcess;
  private client?: MqttClient;
  private readonly drivers = new Map<string, MqttClient>();

  private constructor(readonly dir: string, readonly gateway: CliProcess, readonly ports: { mqtt: number; http: number; ocpp: number; ocppTls?: number; central: number }, readonly secrets: Map<string, string>) {}

  get ocppUrl(): string { return `ws://127.0.0.1:${this.ports.ocpp}/ocpp`; }
  get centralUrl(): string { return `http://127.0.0.1:${this.ports.central}`; }

  /** `cps`: CP id → secret written to the credentials file. */
  /** `drivers`: driver ids given their own credentials (a driver may publish only its own requests). */
  static async start(o: { cps: Record<string, string>; drivers?: string[]; price?: number; tls?: { cert: string; key: string }; central?: boolean; gatewayArgs?: string[] }): Promise<OcppNetwork> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ocpp-it-'));
    const creds = path.join(dir, 'credentials.json');
    const secrets = new Map(Object.entries(o.cps));
    secrets.set('central', 'central-secret');
    secrets.set('test-bus', 'test-bus-secret');
    for (const [id, secret] of secrets) upsertCredential(creds, hashSecret(id, id === 'central' || id === 'test-bus' ? 'central' : 'cp', secret));
    for (const d of o.drivers ?? []) { secrets.set(d, `${d}-secret`); upsertCredential(creds, hashSecret(d, 'driver', `${d}-secret`)); }
    const ports = { mqtt: await freePort(), http: await freePort(), ocpp: await freePort(), central: await freePort(), ...(o.tls ? { ocppTls: await freePort() } : {}) };
    const gateway = spawnCli(['gateway', '--credentials', creds, '--host', '127.0.0.1', '--mqtt-port', String(ports.mqtt), '--http-port', String(ports.http),
      '--ocpp-port', String(ports.ocpp), '--ocpp-price', String(o.price ?? 0.4),
      ...(o.tls ? ['--ocpp-tls-port', String(ports.ocppTls), '--tls-cert', o.tls.cert, '--tls-key', o.tls.key] : []), ...(o.gatewayArgs ?? [])]);
    const n = new OcppNetwork(dir, gateway, ports, secrets);
    try {
      await waitFor(async () => {
        if (gateway.child.exitCode !== null) throw new Error(`gateway exited:\n${gateway.lines.join('\n')}`);
        try { return (await fetch(`http://127.0.0.1:${ports.http}/health`)).ok; } catch { return false; }
      }, { timeoutMs: 60_000, intervalMs: 200, what: 'gateway /health' });
      await n.record();
      if (o.central !== false) await n.startCentral();
    } catch (err) {
      await n.stop();
      throw err;
    }
    return n;
  }

  private async record(): Promise<void> {
    const c = mqtt.connect(`mqtt://127.0.0.1:${this.ports.mqtt}`, { clientId: `test-bus:ocpp-it-${process.pid}-${Math.random().toString(36).slice(2, 8)}`, username: 'test-bus', password: 'test-bus-secret', clean: true, reconnectPeriod: 500 });
    c.on('error', () => undefined);
    c.on('message', (topic, payload) => {
      const parts = topic.split('/');
      if (parts.length !== 3 || parts[0] !== EMBEDDED_BUS_PREFIX) return;
      let value: Json = {};
      try { value = JSON.parse(payload.toString()) as Json; } catch { value = { raw: payload.toString() }; }
      this.records.push({ topic: parts[1]!, key: parts[2]!, value, at: Date.now() });
    });
    let ok = false;
    c.on('connect', () => c.subscribe(`${EMBEDDED_BUS_PREFIX}/#`, { qos: 1 }, (err) => { if (!err) ok = true; }));
    await waitFor(() => ok, { timeoutMs: 30_000, what: 'test bus client subscribed' });
    this.client = c;
  }

  async startCentral(): Promise<void> {
    const p = spawnCli(['central', '--host', '127.0.0.1', '--port', String(this.ports.central), '--data-dir', path.join(this.dir, 'central'), '--admin-token', 'ocpp-test-token',
      '--bus-mqtt', `mqtt://127.0.0.1:${this.ports.mqtt}`, '--bus-username', 'central', '--bus-password', 'central-secret']);
    this.central = p;
    await waitFor(async () => {
      if (p.child.exitCode !== null) throw new Error(`central exited:\n${p.lines.join('\n')}`);
      try { return ((await (await fetch(`${this.centralUrl}/health`)).json()) as Json).bus_consumer === 'connected'; } catch { return false; }
    }, { timeoutMs: 60_000, intervalMs: 200, what: 'central up with its bus' });
  }

  of(topic: BusTopic, key?: string): Json[] {
    return this.records.filter((r) => r.topic === topic && (key === undefined || r.key === key)).map((r) => r.value);
  }

  async publish(topic: BusTopic, key: string, value: Json): Promise<void> {
    await this.client!.publishAsync(`${EMBEDDED_BUS_PREFIX}/${topic}/${key}`, JSON.stringify(value), { qos: 1 });
  }

  /** A driver's request, sent with that driver's own credentials (the gateway's ACL lets only it publish its requests). */
  async request(driverId: string, action: 'REQUEST' | 'STOP', cpId?: string): Promise<string> {
    const requestId = `${driverId}-${action}-${Math.random().toString(36).slice(2, 8)}`;
    let c = this.drivers.get(driverId);
    if (!c) {
      c = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.ports.mqtt}`, { clientId: `${driverId}:it`, username: driverId, password: this.secrets.get(driverId), reconnectPeriod: 500 });
      this.drivers.set(driverId, c);
    }
    const msg = { v: PROTOCOL_VERSION, request_id: requestId, driver_id: driverId, action, ...(cpId ? { cp_id: cpId } : {}), ts: Date.now() };
    await c.publishAsync(`${EMBEDDED_BUS_PREFIX}/driver.requests/${driverId}`, JSON.stringify(msg), { qos: 1 });
    return requestId;
  }

  update(driverId: string, pred: (u: Json) => boolean, what: string, timeoutMs = 30_000): Promise<Json> {
    return waitFor(() => this.of('driver.updates', driverId).find(pred), { timeoutMs, what: `${what}; ${driverId} got ${JSON.stringify(this.of('driver.updates', driverId).map((u) => [u.status, u.reason ?? '']))}\n${this.gateway.lines.slice(-8).join('\n')}` });
  }

  async cp(id: string): Promise<Json | undefined> {
    const r = (await (await fetch(`${this.centralUrl}/cp`)).json()) as { charging_points: Json[] };
    return r.charging_points.find((c) => c.cp_id === id);
  }

  async metrics(): Promise<string> { return (await fetch(`http://127.0.0.1:${this.ports.http}/metrics`)).text(); }

  async stop(): Promise<void> {
    await this.central?.kill('SIGTERM').catch(() => undefined);
    await this.client?.endAsync(true).catch(() => undefined);
    for (const c of this.drivers.values()) await c.endAsync(true).catch(() => undefined);
    await this.gateway.kill('SIGTERM').catch(() => undefined);
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
