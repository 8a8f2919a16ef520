import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/processes.js';

/**
 * CI's short chaos schedule: the harness itself (`npm run chaos`) as a child process, about a
 * minute of seeded faults on each bus (embedded, then Kafka on the kcat mock cluster, with
 * SIGSTOP/SIGCONT of Kafka), and zero violations of the invariants. The seeds are fixed
 * so a failure replays with the command line the harness prints.
 */
const runs: Array<{ bus: string; args: string[] }> = [
  { bus: 'embedded', args: ['--minutes', '1', '--seed', '20261203'] },
  { bus: 'kafka', args: ['--minutes', '1', '--seed', '20261204', '--kafka'] },
];

describe('chaos harness, short seeded schedules', () => {
  // Logs of a failed run are kept (the summary names their folder); a clean run's are removed.
  const dirs: string[] = [];
  afterAll(async () => { await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))); });

  for (const r of runs) {
    it(`${r.bus} bus: every invariant holds under the schedule (zero violations)`, async () => {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), `chaos-ci-${r.bus}-`));
      const child = spawn(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'chaos/run.ts', ...r.args, '--dir', dir], {
        cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      const summary = out.slice(out.indexOf('chaos summary'));
      console.log(summary);
      expect(summary).toMatch(/faults injected: [1-9]/);
      expect(summary).toMatch(/violations: 0\n/);
      expect(code, summary).toBe(0);
      dirs.push(dir);
    }, 300_000);
  }
});
