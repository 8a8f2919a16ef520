import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI_ENTRY } from '../lib/paths.js';
import { ORPHAN_GUARD } from '../network/supervisor.js';

/**
 * The chaos harness's processes: each `evcharging` component (or another program, e.g. kcat)
 * in its own process group, optionally inside a network namespace, its output lines stamped
 * with the harness clock into `<logDir>/<name>.log` and handed to a listener. Knows which
 * exits it caused, so any other death is reported as unexpected.
 */

export interface ProcLine { name: string; at: number; line: string; stream: 'out' | 'err' }
export interface ProcExit { name: string; at: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean }

interface Entry {
  name: string;
  kind: string;
  command: string[];
  netns?: string;
  child?: ChildProcess;
  exited?: Promise<void>;
  expected: boolean;
  boots: number;
  log: fs.WriteStream;
}

export class Procs {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly logDir: string, private readonly onLine: (l: ProcLine) => void, private readonly onExit: (e: ProcExit) => void) {
    fs.mkdirSync(logDir, { recursive: true });
  }

  /** `evcharging <args>` as component `name`. */
  startCli(name: string, kind: string, args: string[], netns?: string): void {
    this.start(name, kind, [process.execPath, '--import', ORPHAN_GUARD, CLI_ENTRY, ...args], netns);
  }

  start(name: string, kind: string, command: string[], netns?: string): void {
    if (this.entries.has(name)) throw new Error(`${name} exists already`);
    const e: Entry = { name, kind, command, netns, expected: false, boots: 0, log: fs.createWriteStream(path.join(this.logDir, `${name}.log`), { flags: 'a' }) };
    this.entries.set(name, e);
    this.spawn(e);
  }

  private spawn(e: Entry): void {
    const argv = e.netns ? ['ip', 'netns', 'exec', e.netns, ...e.command] : e.command;
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EVCHARGING_SUPERVISOR_PID: String(process.pid), LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'info' },
    });
    e.child = child;
    e.expected = false;
    e.boots++;
    const collect = (stream: NodeJS.ReadableStream, which: 'out' | 'err') => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i); buf = buf.slice(i + 1);
          const at = Date.now();
          e.log.write(`${at} ${which} ${line}\n`);
          this.onLine({ name: e.name, at, line, stream: which });
        }
      });
    };
    collect(child.stdout!, 'out');
    collect(child.stderr!, 'err');
    e.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        const at = Date.now();
        e.log.write(`${at} exit ${signal ?? `code ${code}`}${e.expected ? ' (caused by the harness)' : ''}\n`);
        this.onExit({ name: e.name, at, code, signal, expected: e.expected });
        resolve();
      });
    });
  }

  alive(name: string): boolean {
    const c = this.entries.get(name)?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }
  names(kind?: string): string[] { return [...this.entries.values()].filter((e) => !kind || e.kind === kind).map((e) => e.name); }
  pid(name: string): number | undefined { return this.entries.get(name)?.child?.pid; }

  /** Sends `signal` to the component's whole process group; for ending signals, the exit is marked expected and awaited. */
  async signal(name: string, signal: NodeJS.Signals, timeoutMs = 10_000): Promise<void> {
    const e = this.entries.get(name);
    if (!e?.child?.pid || !this.alive(name)) return;
    const ending = signal === 'SIGKILL' || signal === 'SIGTERM';
    if (ending) e.expected = true;
    try { process.kill(-e.child.pid, signal); } catch { /* already gone */ }
    if (!ending) return;
    const t = setTimeout(() => { try { process.kill(-e.child!.pid!, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    await e.exited;
    clearTimeout(t);
  }

  /** Starts a component that ended again, with the same command line. */
  restart(name: string): void {
    const e = this.entries.get(name);
    if (!e || this.alive(name)) return;
    this.spawn(e);
  }

  /** SIGTERM to everything still running (in the given order of kinds, the rest last), SIGKILL after the deadline. */
  async stopAll(order: string[] = []): Promise<void> {
    const rank = (k: string) => { const i = order.indexOf(k); return i < 0 ? order.length : i; };
    const kinds = [...new Set([...this.entries.values()].map((e) => e.kind))].sort((a, b) => rank(a) - rank(b));
    for (const k of kinds) {
      await Promise.all([...this.entries.values()].filter((e) => e.kind === k).map((e) => this.signal(e.name, 'SIGTERM', 8_000)));
    }
    for (const e of this.entries.values()) e.log.end();
  }

  /** Last resort on the harness's own exit. */
  killAllNow(): void {
    for (const e of this.entries.values()) if (e.child?.pid && this.alive(e.name)) { try { process.kill(-e.child.pid, 'SIGKILL'); } catch { /* gone */ } }
  }
}
