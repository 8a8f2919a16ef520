import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../bin/evcharging.js', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  /** Every line printed so far, stdout and stderr. */
  lines: string[];
  /** Parsed pino JSON lines. */
  logs: () => Array<Record<string, unknown>>;
  waitForLine: (match: RegExp | ((line: string) => boolean), timeoutMs?: number) => Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill: (signal?: NodeJS.Signals) => Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const c of running) c.kill('SIGKILL'); });

/** Runs `evcharging <args>` as a real child process, collecting its output lines. */
export function spawnCli(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; stdin?: 'pipe' | 'ignore'; wrap?: string[] } = {}): CliProcess {
  // wrap: a command that runs node in another context, e.g. ['ip', 'netns', 'exec', NAME] (it execs, so the pid is node's).
  const [cmd, ...pre] = [...(opts.wrap ?? []), process.execPath];
  const child = spawn(cmd!, [...pre, CLI, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'info', ...opts.env },
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: string[] = [];
  const collect = (stream: NodeJS.ReadableStream) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
    });
    stream.on('end', () => { if (buf) lines.push(buf); });
  };
  collect(child.stdout!);
  collect(child.stderr!);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => { running.delete(child); resolve({ code, signal }); });
  });
  const test = (m: RegExp | ((l: string) => boolean), l: string) => (typeof m === 'function' ? m(l) : m.test(l));
  return {
    child,
    lines,
    logs: () => lines.flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } }),
    // The output (and exit) as it is at the deadline, not when the wait began (that said "output so far:" and nothing).
    waitForLine: (m, timeoutMs = 15_000) => waitFor(() => lines.find((l) => test(m, l)), {
      timeoutMs,
      what: () => `line ${String(m)}${child.exitCode !== null || child.signalCode !== null ? ` (exited: code ${child.exitCode}, signal ${child.signalCode})` : ''}; output so far:\n${lines.slice(-20).join('\n')}`,
    }),
    exited,
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}
