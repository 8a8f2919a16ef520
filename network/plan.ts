import { ID_PATTERN } from '../protocol/index.js';

/**
 * The network `evcharging up` runs, as data: which components exist, the `evcharging`
 * arguments each one is started with, and how its health is probed. Pure: no I/O here,
 * so the plan is unit-tested and the supervisor only spawns what it is given.
 */

export type ComponentKind = 'gateway' | 'central' | 'engine' | 'monitor' | 'weather' | 'driver';

export type HealthCheck =
  | { kind: 'http'; url: string }
  | { kind: 'tcp'; host: string; port: number };

export interface ComponentSpec {
  /** Unique name: `gateway`, `central`, `CP-001` (engine), `monitor-CP-001`, `driver-alice`. */
  name: string;
  kind: ComponentKind;
  /** Arguments after `evcharging`. */
  args: string[];
  health?: HealthCheck;
  /** Started again when it ends on its own with exit code 0 (drivers keep driving). */
  again?: boolean;
  /** Extra environment: where secrets go (a command line is visible to every user in ps). */
  env?: Record<string, string>;
}

export interface NetworkSettings {
  /** Where every component listens and is reached on this machine. */
  host: string;
  gatewayMqttPort: number;
  gatewayHttpPort: number;
  centralPort: number;
  kafkaBootstrap?: string[];
  dataDir: string;
  adminToken: string;
  /** Simulation speed of the engines (1 = real time). */
  speed: number;
  driverWaitS: number;
  maxChargeS: number;
}

export interface CpSettings {
  id: string;
  healthPort: number;
  kw?: number;
  price?: number;
  profile?: string;
}

/** Start order; stop runs it backwards (drivers first, the gateway last). */
export const START_ORDER: readonly ComponentKind[] = ['gateway', 'central', 'engine', 'monitor', 'weather', 'driver'];

export const DRIVER_NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter'];

const ID = ID_PATTERN;

/** `11` → `CP-011`; an id such as `CP-011` or `lab-7` is kept as given. */
export function cpIdFrom(v: string): string {
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n < 1 || n > 99_999) throw new Error(`CP number out of range: ${v}`);
    return `CP-${String(n).padStart(3, '0')}`;
  }
  if (!ID.test(v)) throw new Error(`not a CP id or number: ${JSON.stringify(v)}`);
  return v;
}

/** `frank` → `driver-frank`; `driver-frank` is kept. */
export function driverIdFrom(v: string): string {
  if (!ID.test(v)) throw new Error(`not a driver name: ${JSON.stringify(v)}`);
  return v.startsWith('driver-') ? v : `driver-${v}`;
}

/**
 * The original system's container names, as its users type them: `ev-cp-e-5` (engine of CP 5)
 * → `CP-005`, `ev-cp-m-5` → `monitor-CP-005`, `ev-driver-alice` → `driver-alice`, `ev-central`
 * → `central`, `ev-kafka`/`ev-gateway` → `gateway`. Anything else: undefined.
 */
export function fromOriginalName(v: string): string | undefined {
  const m = /^ev-cp-([em])-(\d{1,5})$/.exec(v);
  if (m) { const id = cpIdFrom(m[2]!); return m[1] === 'e' ? id : monitorName(id); }
  const d = /^ev-driver-(.+)$/.exec(v);
  if (d && ID.test(d[1]!)) return driverIdFrom(d[1]!);
  if (v === 'ev-central') return 'central';
  if (v === 'ev-kafka' || v === 'ev-gateway') return 'gateway';
  return undefined;
}

export const cpIdForIndex = (i: number) => cpIdFrom(String(i + 1));
export const driverIdForIndex = (i: number) => driverIdFrom(DRIVER_NAMES[i] ?? `d${i + 1}`);
export const monitorName = (cpId: string) => `monitor-${cpId}`;

/** The number in a CP id (`CP-011` → 11), used to give CP-n the health port base+n-1. */
export function cpNumber(id: string): number | undefined {
  const m = /^CP-(\d+)$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

/** `up` runs in dev mode: on a non-loopback --host, central is told that is meant. */
const isLoopback = (h: string) => h === 'localhost' || h === '::1' || /^127\./.test(h);
const busArgs = (s: NetworkSettings) => (s.kafkaBootstrap?.length ? ['--kafka-bootstrap', s.kafkaBootstrap.join(',')] : []);
const mqttUrl = (s: NetworkSettings) => `mqtt://${s.host}:${s.gatewayMqttPort}`;
export const centralUrl = (s: NetworkSettings) => `http://${s.host}:${s.centralPort}`;

export function gatewaySpec(s: NetworkSettings): ComponentSpec {
  return {
    name: 'gateway', kind: 'gateway',
    // Dev mode: a local demo network admits every client (payloads are still validated).
    args: ['gateway', '--dev', 'true', '--host', s.host, '--mqtt-port', String(s.gatewayMqttPort), '--http-port', String(s.gatewayHttpPort),
      '--state-dir', `${s.dataDir}/gateway`, ...busArgs(s)],
    health: { kind: 'http', url: `http://${s.host}:${s.gatewayHttpPort}/health` },
  };
}

export function centralSpec(s: NetworkSettings): ComponentSpec {
  return {
    name: 'central', kind: 'central',
    args: ['central', '--host', s.host, '--port', String(s.centralPort), '--data-dir', `${s.dataDir}/central`,
      '--bus-mqtt', mqttUrl(s), ...busArgs(s), ...(isLoopback(s.host) ? [] : ['--dev-public', 'true'])],
    env: { CENTRAL_ADMIN_TOKEN: s.adminToken },
    health: { kind: 'http', url: `${centralUrl(s)}/health` },
  };
}

export function engineSpec(s: NetworkSettings, cp: CpSettings): ComponentSpec {
  const args = ['cp', '--id', cp.id, '--health-port', String(cp.healthPort), '--health-host', s.host, '--mqtt', mqttUrl(s), '--speed', String(s.speed)];
  if (cp.profile) args.push('--profile', cp.profile);
  if (cp.kw !== undefined) args.push('--kw', String(cp.kw));
  if (cp.price !== undefined) args.push('--price', String(cp.price));
  return { name: cp.id, kind: 'engine', args, health: { kind: 'tcp', host: s.host, port: cp.healthPort } };
}

export function monitorSpec(s: NetworkSettings, cp: CpSettings): ComponentSpec {
  return {
    name: monitorName(cp.id), kind: 'monitor',
    args: ['monitor', '--cp', cp.id, '--engine', `${s.host}:${cp.healthPort}`, '--central', centralUrl(s)],
  };
}

/**
 * A driver that drives from its request file; with `httpPort`, one driven from its browser app
 * at that port instead (no file: the person there chooses the CP).
 */
export function driverSpec(s: NetworkSettings, driverId: string, requestsFile: string, httpPort?: number): ComponentSpec {
  const drive = httpPort === undefined
    ? ['--requests', requestsFile, '--wait-s', String(s.driverWaitS), '--max-charge-s', String(s.maxChargeS)]
    : ['--http', String(httpPort), '--http-host', s.host, '--central', centralUrl(s), '--wait-s', '0'];
  return {
    name: driverId, kind: 'driver', again: true,
    args: ['driver', '--id', driverId, ...drive, '--bus-mqtt', mqttUrl(s), ...busArgs(s)],
  };
}

/** The weather service: `sim` (built-in weather) or `openweather` (OPENWEATHER_API_KEY from the environment). */
export function weatherSpec(s: NetworkSettings, source: 'sim' | 'openweather'): ComponentSpec {
  return { name: 'weather', kind: 'weather', args: ['weather', '--central', centralUrl(s), '--admin-token', s.adminToken, '--source', source] };
}

/**
 * A driver's request file: one CP id a line. Each driver starts at a different CP so
 * drivers spread over the network; `first` (a CP just added) goes to the top.
 */
export function requestLines(cpIds: readonly string[], driverIndex: number, first?: string): string {
  const rotated = cpIds.map((_, i) => cpIds[(i + driverIndex) % cpIds.length]!);
  const ordered = first ? [first, ...rotated.filter((id) => id !== first)] : rotated;
  return ordered.map((id) => `${id}\n`).join('');
}

/** Health ports: CP-n gets base+n-1 when that is free; otherwise the next free one above base. */
export function pickHealthPort(id: string, base: number, used: ReadonlySet<number>): number {
  const n = cpNumber(id);
  if (n !== undefined && base + n - 1 <= 65535 && !used.has(base + n - 1)) return base + n - 1;
  for (let p = base; p <= 65535; p++) if (!used.has(p)) return p;
  throw new Error('no free health port left');
}

/** The component a `crash` with no name hits: a random one that is running. */
export function pickRandom<T>(items: readonly T[], random = Math.random): T | undefined {
  return items.length ? items[Math.floor(random() * items.length)] : undefined;
}
