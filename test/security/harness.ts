import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { hashSecret, upsertCredential, type Role } from '../../registry/credentials.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';

/** The attacker's and the victims' identities, each with `secret-<id>` as its password. */
export interface Who { id: string; role: Role }
export const secretOf = (id: string) => `secret-${id}`;

export interface Gw {
  proc: CliProcess; mqttPort: number; httpPort: number; dir: string;
  url: string;
  metric(line: string): Promise<number>;
  health(): Promise<Record<string, unknown>>;
  rssMb(): number;
  stop(): Promise<void>;
}

/** A real `evcharging gateway` process with a credentials file (or `--dev`), on loopback. */
export async function startGw(who: Who[] | 'dev', extra: string[] = [], opts: { nofile?: number } = {}): Promise<Gw> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sec-gw-'));
  const args = ['gateway', '--host', '127.0.0.1'];
  if (who === 'dev') args.push('--dev');
  else {
    const file = path.join(dir, 'credentials.json');
    for (const w of who) upsertCredential(file, hashSecret(w.id, w.role, secretOf(w.id)));
    args.push('--credentials', file);
  }
  const mqttPort = await freePort(); const httpPort = await freePort();
  args.push('--mqtt-port', String(mqttPort), '--http-port', String(httpPort), ...extra);
  let proc: CliProcess;
  if (opts.nofile) {
    // The same CLI under a lower file-descriptor limit, so exhausting it takes thousands of sockets, not 20,000.
    proc = spawnCli(args, { wrap: ['prlimit', `--nofile=${opts.nofile}`] });
  } else proc = spawnCli(args);
  await proc.waitForLine(/gateway listening/, 40_000);
  const gw: Gw = {
    proc, mqttPort, httpPort, dir, url: `mqtt://127.0.0.1:${mqttPort}`,
    async metric(line) {
      const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      const m = text.split('\n').find((l) => l.startsWith(line + ' '));
      return m ? Number(m.split(' ').pop()) : 0;
    },
    async health() { return (await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json()) as Record<string, unknown>; },
    rssMb() { return rssMbOf(proc.child.pid!); },
    async stop() { await proc.kill('SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); },
  };
  return gw;
}


export function rssMbOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** An MQTT 3.1.1 client; resolves once connected, rejects with the CONNACK error. */
export function connect(url: string, o: { username?: string; clientId: string; password?: string; clean?: boolean; protocolVersion?: 4 | 5; will?: { topic: string; payload: string } }): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(url, {
    clientId: o.clientId, username: o.username, password: o.username ? (o.password ?? secretOf(o.username)) : undefined,
    reconnectPeriod: 0, connectTimeout: 30_000, clean: o.clean ?? true, protocolVersion: o.protocolVersion ?? 4,
    ...(o.will ? { will: { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: 1 as const, retain: false } } : {}),
  });
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c));
    c.once('error', (err) => { c.end(true); reject(err); });
    c.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** Collects every message on the given filters. */
export function record(c: mqtt.MqttClient): Array<{ topic: string; payload: string; retain: boolean }> {
  const seen: Array<{ topic: string; payload: string; retain: boolean }> = [];
  c.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return seen;
}

/** A raw TCP socket, optionally from another loopback address (127.0.0.2 …: a different source to per-address limits). */
export function rawSocket(port: number, localAddress?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export const statusMsg = (cp: string, seq: number, state = 'ACTIVATED') => JSON.stringify({ v: 1, type: 'status', cp_id: cp, state, seq, ts: Date.now() });
/** The last will an engine registers (firmware/mqtt-link.ts): DISCONNECTED, source last_will. */
export const willOf = (cp: string) => ({ topic: `cp/${cp}/status`, payload: JSON.stringify({ v: 1, type: 'status', cp_id: cp, state: 'DISCONNECTED', source: 'last_will', reason: 'connection lost', seq: Date.now(), ts: Date.now() }) });
export const isDisconnected = (cp: string) => (m: { topic: string; payload: string }) => m.topic === `bus/cp.status/${cp}` && m.payload.includes('"DISCONNECTED"');
