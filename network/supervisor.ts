import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../lib/log.js';
import { formatLine, useColour, type LogFormat } from '../lib/log-format.js';
import { START_ORDER, type ComponentKind, type ComponentSpec } from './plan.js';

import { CLI_ENTRY } from '../lib/paths.js';
import { UnknownComponentError } from '../lib/errors.js';
export const ORPHAN_GUARD = new URL('./orphan-guard.mjs', import.meta.url).href;

/**
 * running: the process is alive; stopping: SIGTERM sent; stopped: ended because we stopped it;
 * crashed: killed by a signal nobody here sent, or by `evcharging crash`; exited: ended on its own.
 */
export type RunState = 'running' | 'stopping' | 'stopped' | 'crashed' | 'exited';

export interface ComponentStatus {
  name: string;
  kind: ComponentKind;
  pid?: number;
  state: RunState;
  /** How many times it was started again (restart command or a driver's next round). */
  restarts: number;
  /** When the current state began (epoch ms). */
  since: number;
  /** How it ended, for stopped/crashed/exited: `code 1`, `SIGKILL`. */
  exit?: string;
}

interface Entry {
  spec: ComponentSpec;
  child?: ChildProcess;
  state: RunState;
  restarts: number;
  since: number;
  exit?: string;
  /** Why the next exit happens, when we caused it. */
  expected: 'stop' | 'crash' | null;
  exited?: Promise<void>;
  again?: NodeJS.Timeout;
  logFile: string;
  /** How far the log file has been read, and an unfinished last line. */
  offset: number;
  partial: string;
}

export interface SupervisorOptions {
  cwd: string;
  /** One log file per component: `<logDir>/<name>.log` holds every line it printed. */
  logDir: string;
  log: Logger;
  /** Child log lines at or above this pino level (and any non-JSON line) are echoed to our stdout. */
  echoLevel: number;
  stopTimeoutMs: number;
  /** Extra environment for every child. */
  env?: Record<string, string>;
  /** Node arguments before the component's own (default: the orphan guard and the `evcharging` entry). */
  entry?: string[];
  /** How echoed lines are printed: `json` as the component wrote them, `pretty` as one readable line behind its name. */
  format?: LogFormat;
}

/**
 * Runs `evcharging <subcommand>` children, each in its own process group (so a signal can
 * reach its whole tree and a terminal's Ctrl-C reaches only us), tracks pid and state, stops
 * them with SIGTERM then SIGKILL after a deadline, and starts them again on request.
 */
export class Supervisor {
  private readonly entries = new Map<string, Entry>();
  private shuttingDown = false;

  private readonly follower: NodeJS.Timeout;

  constructor(private readonly o: SupervisorOptions) {
    fs.mkdirSync(o.logDir, { recursive: true });
    this.follower = setInterval(() => { for (const e of this.entries.values()) if (alive(e)) this.follow(e); }, 250);
    this.follower.unref();
  }

  has(name: string): boolean { return this.entries.has(name); }
  spec(name: string): ComponentSpec | undefined { return this.entries.get(name)?.spec; }

  /** Registers a component and starts it. */
  start(spec: ComponentSpec): void {
    if (this.shuttingDown) throw new Error('the network is shutting down');
    if (this.entries.has(spec.name)) throw new Error(`component ${spec.name} exists already`);
    const logFile = path.join(this.o.logDir, `${spec.name}.log`);
    const offset = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    const entry: Entry = { spec, state: 'stopped', restarts: 0, since: Date.now(), expected: null, logFile, offset, partial: '' };
    this.entries.set(spec.name, entry);
    this.spawn(entry);
  }

  status(): ComponentStatus[] {
    return [...this.entries.values()].map((e) => ({
      name: e.spec.name, kind: e.spec.kind, pid: e.state === 'running' || e.state === 'stopping' ? e.child?.pid : undefined,
      state: e.state, restarts: e.restarts, since: e.since, exit: e.exit,
    }));
  }

  /** SIGKILL to the component's process group, as a crash would; resolves with the pid once it is gone. */
  async crash(name: string): Promise<number> {
    const e = this.get(name);
    const pid = e.child?.pid;
    if (!alive(e) || pid === undefined) throw new Error(`${name} is not running (${e.state})`);
    e.expected = 'crash';
    killGroup(pid, 'SIGKILL');
    this.o.log.warn({ component: name, pid }, 'crashed on request (SIGKILL)');
    await e.exited;
    return pid;
  }

  /** Stops (gracefully) if running, then starts it again with the same arguments. */
  async restart(name: string): Promise<number | undefined> {
    const e = this.get(name);
    await this.stopEntry(e);
    if (this.shuttingDown) throw new Error('the network is shutting down');
    e.restarts++;
    this.spawn(e);
    return e.child?.pid;
  }

  async stop(name: string): Promise<void> { await this.stopEntry(this.get(name)); }

  /** Stops everything: drivers first, the gateway last; each kind in parallel. */
  async stopAll(): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.follower);
    for (const kind of [...START_ORDER].reverse()) {
      await Promise.all([...this.entries.values()].filter((e) => e.spec.kind === kind).map((e) => this.stopEntry(e)));
    }
  }

  /** Last resort (our own process is exiting): SIGKILL every group still alive, synchronously. */
  killAllNow(): void {
    for (const e of this.entries.values()) if (alive(e) && e.child?.pid) killGroup(e.child.pid, 'SIGKILL');
  }

  private get(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new UnknownComponentError(name, [...this.entries.keys()]);
    return e;
  }

  private spawn(e: Entry): void {
    clearTimeout(e.again);
    // The child writes straight into its log file, not into a pipe to us: if we die, its output
    // (and its graceful shutdown) does not break on a closed pipe. We follow the file instead.
    const out = fs.openSync(e.logFile, 'a');
    const child = spawn(process.execPath, [...(this.o.entry ?? ['--import', ORPHAN_GUARD, CLI_ENTRY]), ...e.spec.args], {
      cwd: this.o.cwd,
      detached: true, // own process group: kill(-pid) reaches its tree, terminal signals do not
      stdio: ['ignore', out, out],
      env: { ...process.env, ...this.o.env, ...e.spec.env, EVCHARGING_SUPERVISOR_PID: String(process.pid) },
    });
    e.child = child;
    e.state = 'running';
    e.since = Date.now();
    e.exit = undefined;
    e.expected = null;
    fs.closeSync(out);
    e.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        this.o.log.error({ component: e.spec.name, err: err.message }, 'could not start');
        if (child.pid === undefined) { e.state = 'exited'; e.exit = err.message; resolve(); }
      });
      child.once('exit', (code, signal) => {
        if (child.pid) killGroup(child.pid, 'SIGKILL'); // anything left in its group goes with it
        this.follow(e);
        this.onExit(e, code, signal);
        resolve();
      });
    });
    this.o.log.info({ component: e.spec.name, pid: child.pid }, 'started');
  }

  private onExit(e: Entry, code: number | null, signal: NodeJS.Signals | null): void {
    e.since = Date.now();
    e.exit = signal ?? `code ${code}`;
    const name = e.spec.name;
    if (e.expected === 'stop') { e.state = 'stopped'; return; }
    if (e.expected === 'crash' || signal) {
      e.state = 'crashed';
      if (e.expected !== 'crash') this.o.log.warn({ component: name, signal }, 'component died');
      return;
    }
    e.state = 'exited';
    if (code !== 0) { this.o.log.warn({ component: name, code }, 'component exited with an error; see its log'); return; }
    if (e.spec.again && !this.shuttingDown) {
      e.again = setTimeout(() => { if (!this.shuttingDown && e.state === 'exited') { e.restarts++; this.spawn(e); } }, 1_000);
    }
  }

  private async stopEntry(e: Entry): Promise<void> {
    clearTimeout(e.again);
    const pid = e.child?.pid;
    if (!alive(e) || pid === undefined) return;
    e.expected = 'stop';
    e.state = 'stopping';
    killGroup(pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), this.o.stopTimeoutMs); });
    if ((await Promise.race([e.exited!.then(() => 'ok' as const), deadline])) === 'late') {
      this.o.log.warn({ component: e.spec.name, pid }, 'did not stop in time, SIGKILL');
      killGroup(pid, 'SIGKILL');
      await e.exited;
    }
    clearTimeout(timer);
  }

  /** Reads what a component appended to its log since last time and echoes the lines that matter. */
  private follow(e: Entry): void {
    let fd: number | undefined;
    try {
      fd = fs.openSync(e.logFile, 'r');
      const size = fs.fstatSync(fd).size;
      if (size <= e.offset) return;
      const buf = Buffer.alloc(Math.min(size - e.offset, 1 << 20));
      const n = fs.readSync(fd, buf, 0, buf.length, e.offset);
      e.offset += n;
      const lines = (e.partial + buf.subarray(0, n).toString('utf8')).split('\n');
      e.partial = lines.pop()!;
      for (const l of lines) if (l && this.shouldEcho(l)) process.stdout.write(`${this.echoed(e.spec.name, l)}\n`);
    } catch (err) {
      this.o.log.warn({ component: e.spec.name, err: (err as Error).message }, 'cannot read component log');
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  private echoed(name: string, l: string): string {
    if (this.o.format === 'pretty') return formatLine(l, { colour: this.colour, prefix: name });
    return l.startsWith('{') ? l : `[${name}] ${l}`;
  }

  private readonly colour = useColour(process.stdout);

  /** Pino lines at or above the echo level, and any line that is not pino's (e.g. a one-line config error). */
  private shouldEcho(l: string): boolean {
    if (l.startsWith('{')) {
      try { return Number((JSON.parse(l) as { level?: unknown }).level) >= this.o.echoLevel; } catch { /* not JSON after all */ }
    }
    return this.o.echoLevel !== Infinity;
  }
}


const alive = (e: Entry) => e.state === 'running' || e.state === 'stopping';

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal); } catch { /* the group is gone already */ }
}
export { CLI_ENTRY, UnknownComponentError };
