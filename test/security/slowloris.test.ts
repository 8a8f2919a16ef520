import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { get, startCentralProc, type CentralProc } from './central-proc.js';

/**
 * Attack: 20,500 slowloris sockets to central (each sends a request line, then a header line
 * every 2 s, never ends its headers). Before: central accepted until its 20,000-fd limit and
 * /health stopped answering. Now the connection cap closes the oldest stalled sockets, the
 * header deadline ends the rest, and /health answers on a fresh connection throughout.
 */
const ATTACKER = fileURLToPath(new URL('./fixtures/slowloris.mjs', import.meta.url));
let central: CentralProc | undefined;
const attackers: Array<ReturnType<typeof spawn>> = [];
afterAll(async () => { for (const a of attackers) a.kill('SIGKILL'); await central?.stop(); });

describe('slowloris against central', () => {
  it('20,500 stalled sockets cannot take /health down; the cap evicts them and counts it', async () => {
    central = await startCentralProc({ args: ['--http-headers-timeout-ms', '5000'] });
    const c = central;
    // Two attacker processes (each has the same 20,000-fd limit central has): 20,500 sockets in all.
    const last = [{ attempted: 0, opened: 0, closed: 0 }, { attempted: 0, opened: 0, closed: 0 }];
    for (const i of [0, 1]) {
      const a = spawn(process.execPath, [ATTACKER, '127.0.0.1', String(c.port), '10250'], { stdio: ['ignore', 'pipe', 'inherit'] });
      attackers.push(a);
      a.stdout!.setEncoding('utf8');
      a.stdout!.on('data', (d: string) => { for (const l of d.split('\n')) if (l.startsWith('{')) last[i] = JSON.parse(l); });
    }
    await waitFor(() => last[0]!.attempted + last[1]!.attempted >= 20_500, { timeoutMs: 60_000, what: `attackers opened their sockets (${JSON.stringify(last)})` });
    // Health on a fresh connection, over and over, while the attack holds.
    for (let i = 0; i < 10; i++) {
      const h = await get(c.url, '/health', {}, 10_000);
      expect([200, 503]).toContain(h.status); // 503: no bus in this test, the body is central's all the same
      expect(h.body).toMatchObject({ service: 'ev-central', status: 'healthy' });
    }
    const h = (await get(c.url, '/health')).body;
    expect(h.connections.evicted + h.connections.refused).toBeGreaterThan(10_000);
    expect(h.connections.open).toBeLessThanOrEqual(1024);
    expect(c.proc.child.exitCode).toBeNull();
  }, 120_000);
});
