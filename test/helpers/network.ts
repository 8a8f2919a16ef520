import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { centralSpec, driverSpec, engineSpec, gatewaySpec, monitorSpec, type NetworkSettings } from '../../network/plan.js';
import { recordBus, type BusRecorder } from './bus-recorder.js';
import { freePort } from './ports.js';
import { spawnCli, type CliProcess } from './processes.js';
import { waitFor } from './wait.js';

/**
 * A whole charging network for end-to-end tests, every component a real `evcharging` child
 * process: a gateway (dev mode, on free ports), central (temp data dir, admin token),
 * engines with their monitors, and drivers, on the embedded bus or on a given Kafka
 * bootstrap. Components can be killed (SIGKILL by default) and started again with the same
 * arguments; `stop()` ends everything (SIGTERM, then SIGKILL of leftovers) and removes the
 * temp dir. A bus recorder witnesses every bus message independently of the components.
 */

export type Kind = 'gateway' | 'central' | 'engine' | 'monitor' | 'driver';
export type Row = Record<string, unknown>;

export interface NetworkOptions {
  /** Kafka bootstrap servers; none → the embedded bus over the gateway's MQTT broker. */
  kafkaBootstrap?: string[];
  /** Engines' simulation speed (sim time = wall time × speed). */
  speed?: number;
  /** Central's --monitor-timeout-ms. */
  monitorTimeoutMs?: number;
  /** Deadline for each component to come up (loaded 2-core machines are slow to start tsx). */
  startTimeoutMs?: number;
  /** Start central too (default true). */
  central?: boolean;
  /** More arguments for the gateway. */
  gatewayArgs?: string[];
}

export interface CpOptions {
  id: string;
  profile?: 'ac-22kw' | 'dc-50kw' | 'dc-350kw' | string;
  kw?: number;
  price?: number;
  speed?: number;
  /** Start its monitor too (default true). */
  monitor?: boolean;
}

export interface DriverOptions {
  id: string;
  /** CP ids, one request each, in order. */
  requests: string[];
  waitS?: number;
  maxChargeS?: number;
  extraArgs?: string[];
}

export interface Component {
  name: string;
  kind: Kind;
  args: string[];
  proc: CliProcess;
  /** Lines of the earlier runs (the current run's lines are `proc.lines`). */
  pastLines: string[];
  runs: number;
}

const isAlive = (p: CliProcess) => p.child.exitCode === null && p.child.signalCode === null;

export { monitorName } from '../../network/plan.js';

/** The plan's settings for a test network on loopback: the product's own plan builds every command line. */
export function loopbackSettings(ports: { mqtt: number; gatewayHttp: number; central: number }, dir: string, adminToken: string, o: { kafkaBootstrap?: string[]; speed?: number } = {}): NetworkSettings {
  return {
    host: '127.0.0.1', gatewayMqttPort: ports.mqtt, gatewayHttpPort: ports.gatewayHttp, centralPort: ports.central,
    kafkaBootstrap: o.kafkaBootstrap, dataDir: dir, adminToken, speed: o.speed ?? 60, driverWaitS: 1, maxChargeS: 5,
  };
}

export class TestNetwork {
  readonly components = new Map<string, Component>();
  /** Set once the gateway and central run. */
  recorder!: BusRecorder;
  readonly adminToken = `test-token-${Math.random().toString(36).slice(2)}`;
  readonly mqttUrl: string;
  readonly centralUrl: string;
  readonly gatewayHttpUrl: string;
  private readonly healthPorts = new Map<string, number>();
  readonly settings: NetworkSettings;

  private constructor(
    readonly dir: string,
    readonly opts: Required<Omit<NetworkOptions, 'kafkaBootstrap' | 'central' | 'gatewayArgs'>> & Pick<NetworkOptions, 'kafkaBootstrap'>,
    readonly ports: { mqtt: number; gatewayHttp: number; central: number },
  ) {
    this.mqttUrl = `mqtt://127.0.0.1:${ports.mqtt}`;
    this.centralUrl = `http://127.0.0.1:${ports.central}`;
    this.gatewayHttpUrl = `http://127.0.0.1:${ports.gatewayHttp}`;
    this.settings = loopbackSettings(ports, dir, this.adminToken, opts);
  }

  get busKind(): 'kafka' | 'embedded' { return this.opts.kafkaBootstrap?.length ? 'kafka' : 'embedded'; }

  /** Gateway and central, both up and answering /health, and the bus recorder subscribed. */
  static async start(options: NetworkOptions = {}): Promise<TestNetwork> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'e2e-network-'));
    const [mqtt, gatewayHttp, central] = [await freePort(), await freePort(), await freePort()];
    const n = new TestNetwork(dir, {
      kafkaBootstrap: options.kafkaBootstrap,
      speed: options.speed ?? 60,
      monitorTimeoutMs: options.monitorTimeoutMs ?? 3000,
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
    }, { mqtt, gatewayHttp, central });
    try {
      n.spawn('gateway', 'gateway', [...gatewaySpec(n.settings).args, ...(options.gatewayArgs ?? [])]);
      await n.waitHttp('gateway', `${n.gatewayHttpUrl}/health`);
      n.recorder = await recordBus({ kafkaBootstrap: options.kafkaBootstrap, mqttUrl: n.mqttUrl });
      if (options.central === false) return n;
      n.spawn('central', 'central', [...centralSpec(n.settings).args, '--monitor-timeout-ms', String(n.opts.monitorTimeoutMs)]);
      await n.waitCentral();
    } catch (err) {
      await n.stop();
      throw err;
    }
    return n;
  }

  private spawn(name: string, kind: Kind, args: string[]): Component {
    const existing = this.components.get(name);
    if (existing && isAlive(existing.proc)) throw new Error(`${name} is running already`);
    // The plan passes central's admin token in the environment (never on a command line).
    const proc = spawnCli(args, { env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info', ...(kind === 'central' ? centralSpec(this.settings).env : {}) } });
    if (existing) {
      existing.pastLines.push(...existing.proc.lines);
      existing.proc = proc;
      existing.runs++;
      return existing;
    }
    const c: Component = { name, kind, args, proc, pastLines: [], runs: 1 };
    this.components.set(name, c);
    return c;
  }

  /** Every line a component printed, over all its runs. */
  allLines(name: string): string[] {
    const c = this.component(name);
    return [...c.pastLines, ...c.proc.lines];
  }

  component(name: string): Component {
    const c = this.components.get(name);
    if (!c) throw new Error(`no component ${name} (have: ${[...this.components.keys()].join(', ')})`);
    return c;
  }

  /** The last lines a component printed, for failure messages. */
  tail(name: string, n = 25): string {
    const c = this.components.get(name);
    return c ? `--- ${name} (run ${c.runs}) ---\n${c.proc.lines.slice(-n).join('\n')}` : `(no ${name})`;
  }

  private async waitHttp(name: string, url: string): Promise<void> {
    const c = this.component(name);
    await waitFor(async () => {
      if (!isAlive(c.proc)) throw new Error(`${name} exited: ${JSON.stringify(await c.proc.exited)}\n${this.tail(name)}`);
      try { return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok; } catch { return false; }
    }, { timeoutMs: this.opts.startTimeoutMs, intervalMs: 200, what: `${name} at ${url}\n${this.tail(name)}` });
  }

  private waitCentral(): Promise<void> { return this.waitHttp('central', `${this.centralUrl}/health`); }

  // --- components ---------------------------------------------------------------------------

  /** Starts an engine (and by default its monitor); resolves when central lists the CP as ACTIVATED. */
  async addCp(o: CpOptions): Promise<void> {
    const healthPort = this.healthPorts.get(o.id) ?? await freePort();
    this.healthPorts.set(o.id, healthPort);
    const cp = { id: o.id, healthPort, kw: o.kw, price: o.price, profile: o.profile ?? 'ac-22kw' };
    this.spawn(o.id, 'engine', engineSpec({ ...this.settings, speed: o.speed ?? this.opts.speed }, cp).args);
    await this.waitTcp(o.id, healthPort);
    if (o.monitor !== false) {
      const m = monitorSpec(this.settings, cp);
      this.spawn(m.name, 'monitor', m.args);
    }
  }

  healthPort(cpId: string): number {
    const p = this.healthPorts.get(cpId);
    if (p === undefined) throw new Error(`no CP ${cpId}`);
    return p;
  }

  /** Writes the driver's request file and starts it. */
  async addDriver(o: DriverOptions): Promise<string> {
    const file = path.join(this.dir, `${o.id}.requests.txt`);
    await fs.writeFile(file, o.requests.map((id) => `${id}\n`).join(''));
    const spec = driverSpec({ ...this.settings, driverWaitS: o.waitS ?? 1, maxChargeS: o.maxChargeS ?? 5 }, o.id, file);
    this.spawn(o.id, 'driver', [...spec.args, ...(o.extraArgs ?? [])]);
    return file;
  }

  private async waitTcp(name: string, port: number): Promise<void> {
    const c = this.component(name);
    await waitFor(async () => {
      if (!isAlive(c.proc)) throw new Error(`${name} exited: ${JSON.stringify(await c.proc.exited)}\n${this.tail(name)}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
    }, { timeoutMs: this.opts.startTimeoutMs, intervalMs: 100, what: `${name} health port ${port}\n${this.tail(name)}` });
  }

  /** Kills a component (SIGKILL unless told) and waits until the process is gone. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.component(name).proc.kill(signal);
  }

  /** Starts a component again with the same arguments (same ports, same data dir); waits until it serves. */
  /** `serving: false` = spawn only (a gateway answers 503 on /health while its bus is away). */
  async restart(name: string, o: { serving?: boolean } = {}): Promise<void> {
    const c = this.component(name);
    if (isAlive(c.proc)) await c.proc.kill('SIGKILL');
    this.spawn(name, c.kind, c.args);
    if (o.serving === false) return;
    if (c.kind === 'central') await this.waitCentral();
    else if (c.kind === 'gateway') await this.waitHttp('gateway', `${this.gatewayHttpUrl}/health`);
    else if (c.kind === 'engine') await this.waitTcp(name, this.healthPort(name));
  }

  alive(name: string): boolean { return isAlive(this.component(name).proc); }

  /** Whether a component of that name was ever started. */
  has(name: string): boolean { return this.components.has(name); }

  // --- central's HTTP API -------------------------------------------------------------------

  async get<T = Row>(p: string): Promise<T> {
    const r = await fetch(`${this.centralUrl}${p}`, { signal: AbortSignal.timeout(5000) });
    if (!r.ok) throw new Error(`GET ${p}: HTTP ${r.status}`);
    return r.json() as Promise<T>;
  }

  async post(p: string, opts: { token?: string | null; body?: unknown } = {}): Promise<{ status: number; body: unknown }> {
    const token = opts.token === undefined ? this.adminToken : opts.token;
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(`${this.centralUrl}${p}`, {
      method: 'POST', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: AbortSignal.timeout(5000),
    });
    const text = await r.text();
    let body: unknown = text;
    try { body = JSON.parse(text); } catch { /* kept as text */ }
    return { status: r.status, body };
  }

  async cps(): Promise<Row[]> { return (await this.get<{ charging_points: Row[] }>('/cp')).charging_points; }
  async cp(id: string): Promise<Row | undefined> { return (await this.cps()).find((c) => c.cp_id === id); }
  async sessions(): Promise<Row[]> { return (await this.get<{ sessions: Row[] }>('/sessions')).sessions; }

  /** Waits until central shows the CP in one of `states` (and, when given, with this monitor_status). */
  async waitCp(id: string, states: readonly string[], opts: { timeoutMs?: number; monitor?: string } = {}): Promise<Row> {
    return waitFor(async () => {
      const cp = await this.peekCp(id);
      return cp && states.includes(String(cp.state)) && (opts.monitor === undefined || cp.monitor_status === opts.monitor) ? cp : undefined;
    }, { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 100, what: `central shows ${id} ${states.join('|')}${opts.monitor ? ` monitor ${opts.monitor}` : ''} (last: ${JSON.stringify(this.lastCp.get(id))})` });
  }

  private readonly lastCp = new Map<string, Row | undefined>();

  /** Like cp(), remembering the answer for failure messages. */
  async peekCp(id: string): Promise<Row | undefined> {
    const cp = await this.cp(id);
    this.lastCp.set(id, cp);
    return cp;
  }

  // --- teardown -----------------------------------------------------------------------------

  /** SIGTERM to everything (drivers first), SIGKILL to whatever is left after a deadline; temp dir removed. */
  async stop(): Promise<void> {
    const order: Kind[] = ['driver', 'monitor', 'engine', 'central', 'gateway'];
    const all = [...this.components.values()].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
    await Promise.all(all.filter((c) => isAlive(c.proc)).map(async (c) => {
      c.proc.child.kill('SIGTERM');
      const done = await Promise.race([c.proc.exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 8000).unref())]);
      if (!done) await c.proc.kill('SIGKILL');
    }));
    await this.recorder?.stop();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/** Price per kWh of the bundled hardware profiles, read from their JSON files. */
export async function profilePrice(name: string): Promise<number> {
  const file = new URL(`../../hw-profiles/${name}.json`, import.meta.url);
  return Number((JSON.parse(await fs.readFile(file, 'utf8')) as { price_eur_kwh: number }).price_eur_kwh);
}

/**
 * Polls `probe` until it yields a value (deadline `timeoutMs`) and says how long that took
 * from `since`: a measurement to print, never to assert on.
 */
export async function timeUntil<T>(since: number, probe: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<{ value: NonNullable<T>; seconds: number }> {
  const value = await waitFor(probe, { intervalMs: 20, ...opts });
  return { value, seconds: (Date.now() - since) / 1000 };
}
