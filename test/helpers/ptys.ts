import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { waitFor } from './wait.js';

export interface PtyPair {
  /** The two linked ends (symlinks to /dev/pts/N): bytes written to one are read from the other. */
  a: string;
  b: string;
  /** Pulls the cable: SIGKILL to socat and the links removed (both ends see the line go). */
  stop(): Promise<void>;
  /** Plugs it back: a new pair behind the same link names. */
  start(): Promise<void>;
}

/** A serial pty pair made by socat (`pty,raw,echo=0,link=...`), with links `DIR/<name>A` and `DIR/<name>B`. */
export async function startPtyPair(dir: string, name: string): Promise<PtyPair> {
  const a = path.join(dir, `${name}A`);
  const b = path.join(dir, `${name}B`);
  let child: ChildProcess | undefined;
  let err = '';
  const exists = (p: string) => fs.lstat(p).then(() => true, () => false);
  const pair: PtyPair = {
    a, b,
    async start() {
      err = '';
      child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (d: string) => { err = (err + d).slice(-2000); });
      const c = child;
      await waitFor(async () => {
        if (c.exitCode !== null) throw new Error(`socat exited: ${err}`);
        return (await exists(a)) && (await exists(b)) && /starting data transfer loop/.test(err);
      }, { timeoutMs: 15_000, what: `socat pty pair ${name}` });
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c && c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      }
      // SIGKILL leaves the links behind, pointing at pty numbers the system may hand out again.
      await Promise.all([fs.rm(a, { force: true }), fs.rm(b, { force: true })]);
    },
  };
  await pair.start();
  return pair;
}
