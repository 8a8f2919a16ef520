import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../lib/log.js';
import { sleep } from '../lib/backoff.js';
import { probeHealth, type HealthResult } from './health-probe.js';
import {
  centralSpec, centralUrl, cpIdFrom, fromOriginalName, weatherSpec, driverIdFrom, driverSpec, engineSpec, gatewaySpec, monitorSpec, pickHealthPort, pickRandom, requestLines,
  type ComponentSpec, type CpSettings, type NetworkSettings,
} from './plan.js';
import type { ComponentStatus, Supervisor } from './supervisor.js';
import { allocatePort } from './ports.js';
import { ConflictError, StartError } from '../lib/errors.js';

export interface ComponentReport extends ComponentStatus { health: string }


/**
 * The running network: the plan made real through the supervisor. Knows which CPs and
 * drivers exist so new drivers are pointed at every CP (a newly added one first).
 */
export class Network {
  private readonly cps: CpSettings[] = [];
  private readonly drivers: string[] = [];

  constructor(
    readonly settings: NetworkSettings,
    private readonly sup: Supervisor,
    private readonly o: { healthBasePort: number; log: Logger; startTimeoutMs: number; /** Other ports of ours (the control port). */ reservedPorts: number[] },
  ) {
    fs.mkdirSync(path.join(settings.dataDir, 'drivers'), { recursive: true });
  }

  /** Gateway, then central, each waited for on its own /health before the next starts. */
  async startCore(signal?: AbortSignal): Promise<void> {
    for (const spec of [gatewaySpec(this.settings), centralSpec(this.settings)]) {
      this.sup.start(spec);
      await this.waitHealthy(spec, signal);
    }
  }

  /**
   * Starts a CP's engine and monitor. With `waitKnown` (the default) it resolves once central lists
   * the CP as available, and only then puts it first in the drivers' request files.
   */
  async addCp(req: { id: string; kw?: number; price?: number; profile?: string }, opts: { waitKnown?: boolean } = {}): Promise<CpSettings> {
    const id = cpIdFrom(req.id);
    if (this.sup.has(id)) throw new ConflictError(`${id} exists already`);
    const s = this.settings;
    const used = new Set([...this.cps.map((c) => c.healthPort), s.gatewayMqttPort, s.gatewayHttpPort, s.centralPort, ...this.o.reservedPorts]);
    const healthPort = this.o.healthBasePort === 0 ? await allocatePort(this.settings.host) : pickHealthPort(id, this.o.healthBasePort, used);
    const cp: CpSettings = { id, healthPort, kw: req.kw, price: req.price, profile: req.profile };
    this.cps.push(cp);
    this.sup.start(engineSpec(this.settings, cp));
    this.sup.start(monitorSpec(this.settings, cp));
    this.o.log.info({ cp: id, health_port: healthPort, kw: cp.kw, price: cp.price }, 'CP added');
    if (opts.waitKnown !== false && this.drivers.length) await this.waitKnown([id]);
    // Drivers read their request file at each round: the new CP goes first for everyone.
    this.drivers.forEach((d, i) => this.writeRequests(d, i, id));
    return cp;
  }

  /**
   * Waits (within the start timeout) until central lists every CP in `ids` as available with its
   * monitor's OK; past the deadline it says which are not and goes on.
   */
  async waitKnown(ids: readonly string[], signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.o.startTimeoutMs;
    let waiting = [...ids];
    while (waiting.length && !signal?.aborted) {
      try {
        const r = await fetch(`${centralUrl(this.settings)}/cp`, { signal: AbortSignal.timeout(2_000) });
        const body = await r.json() as { charging_points?: Array<{ cp_id: string; state: string; monitor_status: string }> };
        const ready = new Set((body.charging_points ?? []).filter((c) => c.state === 'ACTIVATED' && c.monitor_status === 'OK').map((c) => c.cp_id));
        waiting = waiting.filter((id) => !ready.has(id));
      } catch { /* central busy or restarting: ask again */ }
      if (!waiting.length) break;
      if (Date.now() > deadline) {
        this.o.log.warn({ cps: waiting.join(',') }, `central does not list ${waiting.length} CP(s) as available yet; going on`);
        return;
      }
      await sleep(200, signal);
    }
    if (ids.length > 1) this.o.log.info({ cps: ids.length }, 'central lists every CP as available');
  }

  /** Starts the weather service (CPs at freezing places go out of service). */
  addWeather(source: 'sim' | 'openweather'): void {
    if (this.sup.has('weather')) throw new ConflictError('the weather service runs already');
    this.sup.start(weatherSpec(this.settings, source));
  }

  /**
   * A driver added while the network runs starts at the newest CP (`newestFirst`); the drivers
   * started with the network each start at a different CP, so they spread over it.
   */
  addDriver(name: string, opts: { httpPort?: number; newestFirst?: boolean } = {}): string {
    const id = driverIdFrom(name);
    if (this.sup.has(id)) throw new ConflictError(`${id} exists already`);
    if (!this.cps.length) throw new ConflictError('there is no CP to drive to yet; add one with add-cp');
    const index = this.drivers.push(id) - 1;
    const file = this.writeRequests(id, index, opts.newestFirst === false ? undefined : this.cps.at(-1)!.id);
    this.sup.start(driverSpec(this.settings, id, file, opts.httpPort));
    if (opts.httpPort !== undefined) this.o.log.info({ driver: id }, `driver added: its app is at http://${this.settings.host === '0.0.0.0' ? 'localhost' : this.settings.host}:${opts.httpPort}/`);
    else this.o.log.info({ driver: id }, 'driver added');
    return id;
  }

  /** SIGKILL a named component, or a random running one. */
  async crash(name?: string): Promise<{ name: string; pid: number }> {
    const target = name ?? pickRandom(this.sup.status().filter((c) => c.state === 'running').map((c) => c.name));
    if (!target) throw new ConflictError('nothing is running');
    const resolved = this.resolve(target);
    return { name: resolved, pid: await this.sup.crash(resolved) };
  }

  async restart(name: string): Promise<{ name: string; pid?: number }> {
    const target = this.resolve(name);
    return { name: target, pid: await this.sup.restart(target) };
  }

  async report(): Promise<ComponentReport[]> {
    return Promise.all(this.sup.status().map(async (c) => {
      const check = this.sup.spec(c.name)?.health;
      let health = '-';
      if (check && c.state === 'running') {
        const r: HealthResult = await probeHealth(check);
        health = r.ok ? 'ok' : `down (${r.reason})`;
      }
      return { ...c, health };
    }));
  }

  cpIds(): string[] { return this.cps.map((c) => c.id); }

  /** `11` names CP-011, `alice` names driver-alice: accept what an operator would type. */
  private resolve(name: string): string {
    if (this.sup.has(name)) return name;
    for (const alias of [() => fromOriginalName(name) ?? '', () => cpIdFrom(name), () => driverIdFrom(name)]) {
      try { const n = alias(); if (this.sup.has(n)) return n; } catch { /* not that kind of name */ }
    }
    return name; // the supervisor reports it as unknown, with the known names
  }

  private writeRequests(driverId: string, index: number, first?: string): string {
    const file = path.join(this.settings.dataDir, 'drivers', `${driverId}.txt`);
    fs.writeFileSync(file, requestLines(this.cpIds(), index, first));
    return file;
  }

  private async waitHealthy(spec: ComponentSpec, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.o.startTimeoutMs;
    let said = false;
    for (;;) {
      const r = await probeHealth(spec.health!);
      if (r.ok) { this.o.log.info({ component: spec.name }, 'healthy'); return; }
      const st = this.sup.status().find((c) => c.name === spec.name);
      if (st && st.state !== 'running') throw new StartError(`${spec.name} ended during start-up (${st.exit}); see its log in ${this.settings.dataDir}/logs/${spec.name}.log`);
      if (signal?.aborted) throw new StartError('start-up interrupted');
      if (Date.now() > deadline) throw new StartError(`${spec.name} was not healthy within ${this.o.startTimeoutMs / 1000}s (${r.reason})`);
      if (!said) { this.o.log.info({ component: spec.name }, 'waiting for it to become healthy'); said = true; }
      await sleep(200, signal);
    }
  }
}

export { ConflictError, StartError };
