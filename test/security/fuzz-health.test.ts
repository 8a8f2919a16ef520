import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULT_KINDS, parseHealthRequest } from '../../protocol/index.js';
import { healthRequest } from '../../firmware/health-client.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { FUZZ_SEED, Rng, healthLine } from './fuzz.js';
import { rawSocket, rssMbOf, startGw, type Gw } from './harness.js';

const N = 10_000;

/** A fuzz line that would really inject a fault is valid input that changes state: the fuzz keeps to state-neutral lines. */
function faultsIfValid(line: string): boolean {
  const r = parseHealthRequest(line.replace(/\r$/, ''));
  return 'verb' in r && r.verb === 'FAULT' && (FAULT_KINDS as readonly string[]).includes(r.kind.toLowerCase());
}

describe(`fuzz: ${N} lines at an engine's health port (seed ${FUZZ_SEED})`, () => {
  let gw: Gw; let engine: CliProcess; let port: number;
  beforeAll(async () => {
    gw = await startGw('dev');
    port = await freePort();
    engine = spawnCli(['cp', '--id', 'CP-HF', '--health-port', String(port), '--health-host', '127.0.0.1', '--mqtt', gw.url]);
    await engine.waitForLine(/engine ready/);
  });
  afterAll(async () => { await engine?.kill('SIGKILL'); await gw?.stop(); });

  it('the engine answers every later PING, keeps its state and memory; garbage is counted', async () => {
    const rng = new Rng(FUZZ_SEED + 3);
    const status = async () => JSON.parse((await healthRequest('127.0.0.1', port, 'STATUS')).slice(3)) as { state: string; faults: string[] };
    const before = await waitFor(async () => { const st = await status(); return st.state === 'ACTIVATED' ? st : undefined; }, { what: 'engine ACTIVATED' });
    const rss0 = rssMbOf(engine.child.pid!);
    let sent = 0;
    while (sent < N) {
      // Batches of up to 100 lines on one connection; an over-long line ends its batch (the port closes that connection).
      const batch: string[] = [];
      while (batch.length < 100 && sent < N) {
        let line = healthLine(rng);
        if (faultsIfValid(line)) line = 'PING';
        batch.push(line); sent++;
        if (line.length > 256) break;
      }
      const s = await rawSocket(port);
      s.on('error', () => undefined);
      s.on('data', () => undefined);
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => { s.destroy(); resolve(); }, 5_000);
        s.once('close', () => { clearTimeout(t); resolve(); });
        s.end(batch.join('\n') + '\n', 'latin1');
      });
    }
    expect(await healthRequest('127.0.0.1', port, 'PING')).toMatch(/^(OK|KO)/);
    const after = JSON.parse((await healthRequest('127.0.0.1', port, 'STATUS')).slice(3)) as { state: string; faults: string[]; health_requests: { requests: number; errors: number; oversize: number } };
    expect(after.faults).toEqual(before.faults);
    expect(after.state).toBe(before.state);
    expect(after.health_requests.errors).toBeGreaterThan(N / 10);
    expect(after.health_requests.oversize).toBeGreaterThan(0);
    expect(rssMbOf(engine.child.pid!) - rss0).toBeLessThan(64);
    // Still connected to its gateway, still the same engine.
    expect(engine.child.exitCode).toBeNull();
    expect(Number((await gw.health()).clients)).toBeGreaterThanOrEqual(1);
  }, 180_000);
});
