import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `npm start -- --cps 5 --drivers 2` as a user runs it: real processes (gateway, central,
 * 5 engines, 5 monitors, 2 drivers), real ports, the embedded bus. Then, from "another
 * terminal", add-cp, add-driver, crash and restart, following central's view through its
 * HTTP API; finally Ctrl-C (SIGINT to the foreground process group) and no process is left.
 */

type Row = Record<string, unknown>;
const isAlive = (pid: number) => {
  try { const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z'; } catch { return false; }
};
const list = (body: unknown, key: string): Row[] => (Array.isArray(body) ? body : ((body as Record<string, unknown>)?.[key] as Row[] | undefined) ?? []);
const cpIdOf = (r: Row) => String(r.cp_id ?? r.id);
const STACK = /^\s+at .+\(.+:\d+:\d+\)$|^\s+at file:/m;

let npm: ChildProcess | undefined;
const output: string[] = [];
afterAll(async () => {
  if (npm?.pid && npm.exitCode === null) { try { process.kill(-npm.pid, 'SIGKILL'); } catch { /* gone */ } }
});

describe('npm start: the whole network on one machine', () => {
  it('runs, shows sessions, takes add-cp, add-driver, crash and restart, and stops cleanly on Ctrl-C', async () => {
    const [centralPort, mqttPort, gwHttp, controlPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'network-up-'));
    const env = {
      ...process.env, LOG_LEVEL: 'info', CENTRAL_PORT: String(centralPort), GATEWAY_MQTT_PORT: String(mqttPort), GATEWAY_HTTP_PORT: String(gwHttp),
      EVCHARGING_CONTROL_PORT: String(controlPort), EVCHARGING_HEALTH_BASE_PORT: '0', EVCHARGING_DATA_DIR: dataDir,
    };
    // detached: its own process group, like a shell job, so SIGINT to the group is a terminal's Ctrl-C.
    npm = spawn('npm', ['start', '--', '--cps', '5', '--drivers', '2'], { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const s of [npm.stdout!, npm.stderr!]) {
      let buf = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { output.push(buf.slice(0, i)); buf = buf.slice(i + 1); } });
    }
    const exited = new Promise<number | null>((r) => npm!.on('exit', (code) => r(code)));
    const central = `http://127.0.0.1:${centralPort}`;
    const get = async (p: string) => { const r = await fetch(`${central}${p}`); if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`); return r.json() as Promise<unknown>; };
    const cps = async () => list(await get('/cp'), 'charging_points');
    const cpState = async (id: string) => String((await cps()).find((c) => cpIdOf(c) === id)?.state ?? 'absent');
    const completed = async () => list(await get('/sessions'), 'sessions').filter((s) => s.ended_at !== undefined && s.ended_at !== null);
    const cli = async (...args: string[]) => {
      const p = spawnCli(args, { env: { EVCHARGING_CONTROL_PORT: String(controlPort) } });
      const { code } = await p.exited;
      return { code, out: p.lines.join('\n') };
    };
    const status = async () => JSON.parse((await cli('status', '--json')).out) as { components: Array<{ name: string; pid?: number; state: string; health: string }> };

    // --- it starts, prints the dashboard, and sessions flow -------------------------------------
    await waitFor(() => output.find((l) => /network up/.test(l)), { timeoutMs: 180_000, what: `"network up"; output:\n${output.slice(-30).join('\n')}` });
    expect(output.find((l) => /network up/.test(l))).toContain(`${central}/`);
    const startupLines = [...output];
    await waitFor(async () => (await cps()).filter((c) => /^CP-00[1-5]$/.test(cpIdOf(c))).length === 5, { timeoutMs: 60_000, what: 'central lists CP-001..CP-005' });
    await waitFor(async () => (await completed()).length >= 1, { timeoutMs: 120_000, intervalMs: 500, what: 'a completed session' });

    // The start-up log (ours and every component's) holds no error and no stack trace.
    const componentLogs = fs.readdirSync(path.join(dataDir, 'logs')).map((f) => fs.readFileSync(path.join(dataDir, 'logs', f), 'utf8'));
    for (const text of [startupLines.join('\n'), ...componentLogs]) {
      expect(text).not.toMatch(STACK);
      const errors = text.split('\n').filter((l) => l.startsWith('{')).filter((l) => Number((JSON.parse(l) as Row).level) >= 50);
      expect(errors).toEqual([]);
    }

    const st = await status();
    const names = st.components.map((c) => c.name).sort();
    expect(names).toEqual(['CP-001', 'CP-002', 'CP-003', 'CP-004', 'CP-005', 'central', 'driver-alice', 'driver-bob', 'gateway',
      'monitor-CP-001', 'monitor-CP-002', 'monitor-CP-003', 'monitor-CP-004', 'monitor-CP-005'].sort());
    for (const c of st.components.filter((x) => !x.name.startsWith('driver-'))) {
      expect(c.state, c.name).toBe('running');
      expect(c.pid, c.name).toBeGreaterThan(0);
    }
    await waitFor(async () => (await status()).components.filter((c) => ['gateway', 'central', 'CP-003'].includes(c.name)).every((c) => c.health === 'ok'), { timeoutMs: 30_000, what: 'health ok' });
    const table = (await cli('status')).out;
    expect(table).toMatch(/^COMPONENT\s+KIND\s+PID\s+STATE\s+HEALTH/m);
    expect(table).toMatch(/^gateway\s+gateway\s+\d+\s+running\s+ok/m);

    // --- add-cp: the new CP appears at central and takes requests at once --------------------------
    const added = await cli('add-cp', '11', '--kw', '75', '--price', '0.38');
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/added CP-011/);
    await waitFor(async () => ['ACTIVATED', 'SUPPLYING'].includes(await cpState('CP-011')), { timeoutMs: 60_000, what: 'CP-011 at central' });
    expect((await cli('add-cp', '11')).code).not.toBe(0); // exists already: refused, one line

    const frank = await cli('add-driver', 'frank');
    expect(frank.out).toMatch(/added driver-frank/);
    await waitFor(async () => (await completed()).some((s) => s.cp_id === 'CP-011'), { timeoutMs: 120_000, intervalMs: 500, what: 'a completed session at CP-011' });
    const at11 = (await completed()).find((s) => s.cp_id === 'CP-011')!;
    expect(Number(at11.price_eur_kwh ?? 0.38)).toBeCloseTo(0.38);

    // --- crash and restart an engine: central's state follows ---------------------------------------
    const crashed = await cli('crash', 'CP-002');
    expect(crashed.out).toMatch(/crashed CP-002 \(SIGKILL pid \d+\)/);
    expect((await status()).components.find((c) => c.name === 'CP-002')!.state).toBe('crashed');
    await waitFor(async () => ['DISCONNECTED', 'FAULTY'].includes(await cpState('CP-002')), { timeoutMs: 60_000, what: 'central sees CP-002 down' });
    expect((await cli('restart', 'CP-002')).out).toMatch(/restarted CP-002/);
    await waitFor(async () => ['ACTIVATED', 'SUPPLYING'].includes(await cpState('CP-002')), { timeoutMs: 60_000, what: 'central sees CP-002 back' });

    // --- crash central and restart it: its state survives --------------------------------------------
    const before = (await completed()).length;
    await cli('crash', 'central');
    await waitFor(async () => { try { await get('/health'); return false; } catch { return true; } }, { timeoutMs: 20_000, what: 'central down' });
    await cli('restart', 'central');
    await waitFor(async () => { try { await get('/health'); return true; } catch { return false; } }, { timeoutMs: 60_000, what: 'central back' });
    expect((await completed()).length).toBeGreaterThanOrEqual(before);
    await waitFor(async () => (await cps()).length >= 6, { timeoutMs: 60_000, what: 'central knows all 6 CPs again' });

    // --- a random crash names what it hit --------------------------------------------------------------
    const random = await cli('crash');
    expect(random.out).toMatch(/crashed \S+ \(SIGKILL pid \d+\)/);
    expect((await cli('crash', 'no-such-thing')).code).toBe(2);

    // --- Ctrl-C: everything stops, nothing is left behind --------------------------------------------------
    const pids = (await status()).components.map((c) => c.pid).filter((p): p is number => !!p);
    expect(pids.length).toBeGreaterThan(10);
    process.kill(-npm.pid!, 'SIGINT');
    await exited;
    await waitFor(() => pids.every((p) => !isAlive(p)), { timeoutMs: 60_000, what: 'every component gone' });
    expect(output.some((l) => /"msg":"stopped"/.test(l))).toBe(true);
  }, 420_000);
});
