import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { Network } from '../../network/network.js';
import { Supervisor } from '../../network/supervisor.js';
import { startControlServer, type ControlServer } from '../../network/control-server.js';
import { readControlToken } from '../../network/control-token.js';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, spawnCli } from '../helpers/processes.js';

/**
 * The control port and the CLI commands that use it (status, add-cp, add-driver, crash,
 * restart), over real HTTP and real child processes. The components here are stand-ins
 * (a node process that idles, named as such): this suite is about the control path, the
 * real components run in test/e2e/network-up.test.ts.
 */
const IDLE_STAND_IN = ['-e', 'process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1000)'];

let sup: Supervisor;
let control: ControlServer;
afterAll(async () => { await control?.close(); await sup?.stopAll(); });

/** No central runs here: a CP added beside drivers waits for central only `startTimeoutMs`, then goes on. */
async function setup(startTimeoutMs = 1_000) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'control-test-'));
  sup = new Supervisor({ cwd: REPO_ROOT, logDir: path.join(dataDir, 'logs'), log: silentLogger, echoLevel: Infinity, stopTimeoutMs: 5_000, entry: IDLE_STAND_IN });
  const net = new Network({
    host: '127.0.0.1', gatewayMqttPort: await freePort(), gatewayHttpPort: await freePort(), centralPort: await freePort(), dataDir, adminToken: 't',
    speed: 60, driverWaitS: 1, maxChargeS: 8,
  }, sup, { healthBasePort: 0, log: silentLogger, startTimeoutMs, reservedPorts: [] });
  control = await startControlServer(net, () => ({ dashboard: 'http://127.0.0.1/', bus: 'embedded' }), '127.0.0.1', 0, silentLogger);
  return { net, dataDir, base: `http://127.0.0.1:${control.port}` };
}

/** The control port wants its run's token (the CLI reads it from the token file by itself). */
const auth = () => ({ authorization: `Bearer ${readControlToken(control.port)}` });

const cli = async (port: number, ...args: string[]) => {
  const p = spawnCli(args, { env: { EVCHARGING_CONTROL_PORT: String(port) } });
  const { code } = await p.exited;
  return { code, out: p.lines.join('\n') };
};

describe('control port and the commands that use it', () => {
  it('adds CPs and drivers, crashes and restarts them, and shows them in status', async () => {
    const { base, dataDir } = await setup();
    const port = control.port;
    expect((await cli(port, 'add-cp', '11', '--kw', '75', '--price', '0.38')).out).toMatch(/^added CP-011 \(health port \d+\) and monitor-CP-011$/m);
    expect((await cli(port, 'add-cp', 'CP-012')).code).toBe(0);
    expect((await cli(port, 'add-driver', 'frank')).out).toMatch(/added driver-frank/);
    // The new driver's request file starts at the newest CP; the engine got the kW and price.
    expect(fs.readFileSync(path.join(dataDir, 'drivers', 'driver-frank.txt'), 'utf8')).toBe('CP-012\nCP-011\n');
    const engineArgs = sup.spec('CP-011')!.args;
    expect(engineArgs).toEqual(expect.arrayContaining(['--kw', '75', '--price', '0.38']));

    const table = (await cli(port, 'status')).out;
    for (const name of ['CP-011', 'monitor-CP-011', 'CP-012', 'monitor-CP-012', 'driver-frank']) expect(table).toMatch(new RegExp(`^${name}\\s+\\w+\\s+\\d+\\s+running`, 'm'));

    const crashed = await cli(port, 'crash', '11'); // short form of CP-011
    expect(crashed.out).toMatch(/^crashed CP-011 \(SIGKILL pid (\d+)\)$/m);
    const pid = Number(/pid (\d+)/.exec(crashed.out)![1]);
    const st = (await (await fetch(`${base}/status`, { headers: auth() })).json()) as { components: Array<{ name: string; state: string; pid?: number; exit?: string }> };
    expect(st.components.find((c) => c.name === 'CP-011')).toMatchObject({ state: 'crashed', exit: 'SIGKILL' });
    expect(() => process.kill(pid, 0)).toThrow();

    const restarted = await cli(port, 'restart', 'CP-011');
    expect(restarted.out).toMatch(/^restarted CP-011 \(pid \d+\)$/m);
    expect(Number(/pid (\d+)/.exec(restarted.out)![1])).not.toBe(pid);
    expect((await cli(port, 'status')).out).toMatch(/^CP-011\s+engine\s+\d+\s+running\s+down \(\w+\)\s+1\s/m);

    const random = await cli(port, 'crash');
    expect(random.out).toMatch(/^crashed (CP-01[12]|monitor-CP-01[12]|driver-frank) \(SIGKILL pid \d+\)$/m);
  }, 120_000); // a dozen CLI processes, each a node start-up on a busy machine

  it('the docker/ helper scripts wrap the same commands for a local network', async () => {
    const run = async (script: string, ...args: string[]) => (await promisify(execFile)('bash', [`docker/${script}`, ...args], {
      cwd: REPO_ROOT, env: { ...process.env, EVCHARGING_CONTROL_PORT: String(control.port), EVCHARGING_COMPOSE: '' },
    })).stdout;
    expect(await run('add-cp.sh', '21', '--kw', '50')).toMatch(/^added CP-021 \(health port \d+\) and monitor-CP-021$/m);
    expect(sup.spec('CP-021')!.args).toEqual(expect.arrayContaining(['--kw', '50']));
    expect(await run('add-driver.sh', 'grace')).toMatch(/^added driver-grace$/m);
    expect(await run('simulate-crash.sh', 'driver-grace')).toMatch(/^crashed driver-grace \(SIGKILL pid \d+\)$/m);
    expect(sup.status().find((c) => c.name === 'driver-grace')!.state).toBe('crashed');
  });

  it("the original's positional forms: add-cp 31 75.0 0.38, add-driver judy PORT, crash ev-cp-e-31 / ev-driver-judy", async () => {
    const prev = { sup, control };
    // Its own network.
    await setup(500);
    try {
      const port = control.port;
      expect((await cli(port, 'add-cp', '31', '75.0', '0.38')).out).toMatch(/^added CP-031 /m);
      expect(sup.spec('CP-031')!.args).toEqual(expect.arrayContaining(['--kw', '75', '--price', '0.38']));
      const appPort = await freePort();
      expect((await cli(port, 'add-driver', 'judy', String(appPort))).out).toMatch(new RegExp(`^added driver-judy: open http://localhost:${appPort}/$`, 'm'));
      const args = sup.spec('driver-judy')!.args;
      expect(args).toEqual(expect.arrayContaining(['--http', String(appPort)]));
      expect(args).not.toContain('--requests'); // driven from its app
      expect((await cli(port, 'add-cp', '32', 'lots')).code).toBe(2); // a bad positional kW: usage error
      const run = async (script: string, ...a: string[]) => (await promisify(execFile)('bash', [`docker/${script}`, ...a], {
        cwd: REPO_ROOT, env: { ...process.env, EVCHARGING_CONTROL_PORT: String(port), EVCHARGING_COMPOSE: '' },
      })).stdout;
      expect(await run('add-cp.sh', '33', '50', '0.42')).toMatch(/^added CP-033 /m);
      expect(sup.spec('CP-033')!.args).toEqual(expect.arrayContaining(['--kw', '50', '--price', '0.42']));
      expect((await cli(port, 'crash', 'ev-cp-e-31')).out).toMatch(/^crashed CP-031 \(SIGKILL pid \d+\)$/m);
      expect((await cli(port, 'crash', 'ev-cp-m-33')).out).toMatch(/^crashed monitor-CP-033 /m);
      expect(await run('simulate-crash.sh', 'ev-driver-judy')).toMatch(/^crashed driver-judy /m);
    } finally {
      await control.close();
      await sup.stopAll();
      ({ sup, control } = prev);
    }
  }, 120_000);

  it('refuses bad requests with a clear reason, counts them, and keeps serving', async () => {
    const base = `http://127.0.0.1:${control.port}`;
    const post = (route: string, body: string) => fetch(`${base}${route}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...auth() } });
    const cases: Array<[Promise<Response>, number, RegExp]> = [
      [post('/cp', '{not json'), 400, /not JSON/],
      [post('/cp', JSON.stringify({ id: 'a/b' })), 400, /not a CP id/],
      [post('/cp', JSON.stringify({ id: '13', kw: -1 })), 400, /kw/],
      [post('/cp', JSON.stringify({ id: '13', extra: 1 })), 400, /extra|Unrecognized/i],
      [post('/cp', JSON.stringify({ id: 'CP-011' })), 409, /exists already/],
      [post('/restart', JSON.stringify({ name: 'nope' })), 404, /no component named "nope"/],
      [post('/crash', 'x'.repeat(20_000)), 413, /larger than/],
      [fetch(`${base}/nothing`, { headers: auth() }), 404, /no such endpoint/],
    ];
    for (const [res, code, why] of cases) {
      const r = await res;
      expect(r.status).toBe(code);
      expect(((await r.json()) as { error: string }).error).toMatch(why);
    }
    const st = (await (await fetch(`${base}/status`, { headers: auth() })).json()) as { network: { refused_control_requests: number } };
    expect(st.network.refused_control_requests).toBeGreaterThanOrEqual(cases.length);

    // The CLI turns refusals into one line and a non-zero exit; no stack trace.
    const bad = await cli(control.port, 'restart', 'nope');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/^evcharging: no component named "nope"/);
    expect(bad.out).not.toMatch(/\n\s+at /);
    const nobody = await cli(await freePort(), 'status');
    expect(nobody.code).toBe(1);
    expect(nobody.out).toMatch(/no running network answers at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});
