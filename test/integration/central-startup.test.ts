import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Central started before its bus: HTTP serves at once and /health says the bus is not
 * connected; one line says it waits (no stack, no flood); when the gateway comes up central
 * connects by itself. SIGTERM then stops it cleanly (exit 0), state on disk.
 */
const procs: CliProcess[] = [];
let dir: string | undefined;
afterAll(async () => {
  for (const p of procs) await p.kill('SIGKILL');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
}, 60_000);

describe('central start-up and shutdown', () => {
  it('serves before the bus is up, waits quietly, connects when it appears, and stops on SIGTERM', async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'central-startup-'));
    const [mqttPort, gwHttp, port] = [await freePort(), await freePort(), await freePort()];
    const central = spawnCli(['central', '--host', '127.0.0.1', '--port', String(port), '--data-dir', path.join(dir, 'central'), '--bus-mqtt', `mqtt://127.0.0.1:${mqttPort}`]);
    procs.push(central);
    const url = `http://127.0.0.1:${port}`;
    await central.waitForLine(/central ready at http:\/\/127\.0\.0\.1:/, 60_000);
    // No --admin-token: a dev token is generated and printed once.
    const tokenLine = central.logs().find((l) => typeof l.admin_token === 'string');
    expect(tokenLine).toBeDefined();
    const token = String(tokenLine!.admin_token);

    const h1 = await (await fetch(`${url}/health`)).json() as Record<string, unknown>;
    expect(h1).toMatchObject({ status: 'healthy', service: 'ev-central', kafka_producer: 'disconnected', kafka_consumer: 'disconnected', bus: 'embedded' });
    await central.waitForLine(/not reachable yet/, 30_000);
    // Admin works with the printed token even without a bus; an unknown CP is still a 404.
    const r = await fetch(`${url}/cp/CP-1/stop`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(404);

    const gateway = spawnCli(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp)]);
    procs.push(gateway);
    await waitFor(async () => {
      const h = await (await fetch(`${url}/health`)).json() as Record<string, unknown>;
      return h.kafka_producer === 'connected' && h.kafka_consumer === 'connected';
    }, { timeoutMs: 60_000, intervalMs: 200, what: `central connected to the bus\n${central.lines.slice(-5).join('\n')}` });
    expect(central.lines.filter((l) => /not reachable yet/.test(l))).toHaveLength(1);
    expect(central.lines.join('\n')).not.toMatch(/^\s+at /m);

    central.child.kill('SIGTERM');
    const { code } = await central.exited;
    expect(code).toBe(0);
    expect(central.lines.some((l) => /"msg":"stopped"/.test(l))).toBe(true);
    expect((await fs.stat(path.join(dir, 'central', 'journal.jsonl'))).isFile()).toBe(true);
  }, 120_000);
});
