/**
 * The original deployment's environment names keep their meaning (issue 12, item 4): on a CP
 * machine CENTRAL_HOST/CENTRAL_PORT and GATEWAY_HOST say where central and the gateway are, the
 * monitor's CP_MONITOR_* names configure it, and exporting CENTRAL_HOST or GATEWAY_HOST where
 * central or the gateway runs no longer narrows what they listen on (that is *_BIND).
 * Real CLI processes; the addresses in 203.0.113.0/24 (TEST-NET-3) are on no interface.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const procs: CliProcess[] = [];
const start = (args: string[], env: Record<string, string>) => { const p = spawnCli(args, { env }); procs.push(p); return p; };
afterEach(async () => { await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL'))); });

describe('original environment names', () => {
  it('a monitor configured only with CP_MONITOR_* and CENTRAL_HOST/CENTRAL_PORT targets that central and engine', async () => {
    const m = start(['monitor'], {
      CP_MONITOR_CP_ID: 'CP-042', CP_MONITOR_CP_E_HOST: '127.0.0.1', CP_MONITOR_CP_E_PORT: '1',
      CENTRAL_HOST: '203.0.113.7', CENTRAL_PORT: '8123', CP_MONITOR_HEALTH_INTERVAL: '1.5', CP_MONITOR_LOG_LEVEL: 'INFO',
    });
    await m.waitForLine(/"monitor started"/, 30_000);
    expect(m.logs().find((l) => l.msg === 'monitor started')).toMatchObject({
      cp_id: 'CP-042', engine: '127.0.0.1:1', central: 'http://203.0.113.7:8123', interval_ms: 1500,
    });
    // Its lines carry the CP once.
    await m.waitForLine(/engine fault detected/, 30_000);
    for (const l of m.lines) expect(l.match(/"cp_id"/g)?.length ?? 0).toBeLessThanOrEqual(1);
  });

  it('CP_MONITOR_CENTRAL_HOST/PORT win over CENTRAL_HOST; a bad CP_MONITOR_HEALTH_INTERVAL is one line and exit 2', async () => {
    const m = start(['monitor'], {
      CP_MONITOR_CP_ID: 'CP-043', CP_MONITOR_CP_E_PORT: '1', CENTRAL_HOST: '203.0.113.7',
      CP_MONITOR_CENTRAL_HOST: '203.0.113.8', CP_MONITOR_CENTRAL_PORT: '9000',
    });
    await m.waitForLine(/"monitor started"/, 30_000);
    expect(m.logs().find((l) => l.msg === 'monitor started')).toMatchObject({ central: 'http://203.0.113.8:9000', engine: 'localhost:1' });
    const bad = start(['monitor'], { CP_MONITOR_CP_ID: 'CP-044', CP_MONITOR_CP_E_PORT: '1', CP_MONITOR_HEALTH_INTERVAL: 'soon' });
    expect((await bad.exited).code).toBe(2);
    expect(bad.lines.join('\n')).toMatch(/CP_MONITOR_HEALTH_INTERVAL.*positive number/);
  });

  it('an engine takes CP_ENGINE_CP_ID and finds the gateway at GATEWAY_HOST:GATEWAY_MQTT_PORT', async () => {
    const port = await freePort();
    const cp = start(['cp'], { CP_ENGINE_CP_ID: 'CP-045', CP_ENGINE_HEALTH_PORT: '0', GATEWAY_HOST: '127.0.0.1', GATEWAY_MQTT_PORT: String(port) });
    await cp.waitForLine(/"engine ready"/, 30_000);
    expect(cp.logs().find((l) => l.msg === 'engine ready')).toMatchObject({ cp_id: 'CP-045', mqtt: `mqtt://127.0.0.1:${port}` });
  });

  it('CENTRAL_HOST and GATEWAY_HOST where central and the gateway run do not narrow their listen address; both print where they are reachable; /health is 503 while the bus is down', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'env-names-'));
    const [cport, mport, hport] = [await freePort(), await freePort(), await freePort()];
    const central = start(['central'], {
      CENTRAL_HOST: '203.0.113.7', CENTRAL_PORT: String(cport), CENTRAL_DATA_DIR: dir, CENTRAL_ADMIN_TOKEN: 'x'.repeat(24),
      GATEWAY_MQTT_URL: `mqtt://127.0.0.1:${mport}`,
    });
    await central.waitForLine(/central ready at/, 30_000);
    const ready = central.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('central ready at'))!;
    expect(ready.urls).toEqual(expect.arrayContaining([`http://127.0.0.1:${cport}`]));
    expect(String(ready.msg)).not.toMatch(/localhost|203\.0\.113\.7/);
    // No gateway yet: the embedded bus is down, so central is not healthy.
    const r = await fetch(`http://127.0.0.1:${cport}/health`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ service: 'ev-central', bus_producer: expect.not.stringMatching(/^connected$/) });

    const gw = start(['gateway'], { GATEWAY_HOST: '203.0.113.7', GATEWAY_MQTT_PORT: String(mport), GATEWAY_HTTP_PORT: String(hport), GATEWAY_DEV_MODE: 'true' });
    await gw.waitForLine(/"gateway listening"/, 30_000);
    expect(gw.logs().find((l) => l.msg === 'gateway listening')!.mqtt).toEqual(expect.arrayContaining([`mqtt://127.0.0.1:${mport}`]));
    await waitFor(async () => (await fetch(`http://127.0.0.1:${cport}/health`)).status === 200, { timeoutMs: 30_000, intervalMs: 200, what: 'central healthy once its bus is up' });
    await central.waitForLine(/"bus connected"/, 10_000);
    await fs.rm(dir, { recursive: true, force: true });
  });
});
