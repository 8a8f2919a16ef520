import { spawn } from 'node:child_process';
import type { LoadResult } from '../../bench/mqtt-load.js';
import { REPO_ROOT } from './processes.js';

/** Runs bench/mqtt-load.ts as its own process and resolves with its summary line. */
export function runLoad(args: { url: string; clients: number; rate: number; seconds: number; prefix: string }): Promise<LoadResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/mqtt-load.ts', '--url', args.url, '--clients', String(args.clients),
    '--rate', String(args.rate), '--seconds', String(args.seconds), '--prefix', args.prefix], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d.toString(); });
  child.stderr!.on('data', (d) => { out += d.toString(); });
  const killer = setTimeout(() => child.kill('SIGKILL'), (args.seconds + 90) * 1000);
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      clearTimeout(killer);
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || !line) return reject(new Error(`load generator exited ${code}: ${out.slice(-500)}`));
      resolve(JSON.parse(line) as LoadResult);
    });
  });
}

/** One Prometheus sample by its exact name and labels, 0 when absent. */
export function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}
