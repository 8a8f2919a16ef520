import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/processes.js';

/** The benchmark prints figures and asserts nothing; this only keeps it from rotting: tiny parameters, both figures printed. */
describe('bench/gateway-throughput.ts', () => {
  it('runs end to end with 20 CPs for 3 s and prints the gateway, the baseline and their ratio', async () => {
    // Its own process group, so the gateway, baseline broker and kcat it starts go too if it has to be killed.
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/gateway-throughput.ts', '20', '3'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ } };
    let out = '';
    child.stdout!.on('data', (d) => { out += d.toString(); });
    child.stderr!.on('data', (d) => { out += d.toString(); });
    const killer = setTimeout(killGroup, 80_000);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearTimeout(killer);
    killGroup();
    expect(code, out).toBe(0);
    for (const name of ['gateway', 'baseline']) {
      const m = new RegExp(`^${name}\\s*: ([\\d.]+) msgs/s MQTT→Kafka .*delivered (\\d+)/(\\d+), latency p50 (\\d+) ms p99 (\\d+) ms`, 'm').exec(out);
      expect(m, `${name} line in:\n${out}`).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
      expect(Number(m![2])).toBeGreaterThan(0); // messages really came off Kafka
    }
    expect(out).toMatch(/^ratio gateway\/baseline: throughput [\d.]+, latency p50 [\d.]+ p99 [\d.]+/m);
  }, 90_000);
});
