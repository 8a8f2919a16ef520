import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { controlTokenFile } from '../../network/control-token.js';
import { freePort } from '../helpers/ports.js';
import { CLI, REPO_ROOT, spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { get, request } from './central-proc.js';

/**
 * Attacks on a running `evcharging up`: its control port (crash, restart, add components) took
 * any request from anyone on the machine, and central's admin token was on its command line
 * (`ps` shows it to every user). Now the control port needs the run's token (a 0600 file for this
 * user), no secret is on any component's command line, and dev mode listens on loopback only
 * and says so.
 */
let up: ChildProcess | undefined;
afterAll(async () => { if (up?.pid && up.exitCode === null) { try { process.kill(-up.pid, 'SIGKILL'); } catch { /* gone */ } } });

describe('evcharging up: control port and secrets', () => {
  it('control port needs its token; no secret on a command line; loopback only, said so', async () => {
    const [centralPort, mqttPort, gwHttp, controlPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sec-up-'));
    const lines: string[] = [];
    up = spawn(process.execPath, [CLI, 'up', '--cps', '0', '--drivers', '0', '--central-port', String(centralPort), '--gateway-mqtt-port', String(mqttPort),
      '--gateway-http-port', String(gwHttp), '--control-port', String(controlPort), '--data-dir', dataDir], { cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    for (const s of [up.stdout!, up.stderr!]) { s.setEncoding('utf8'); s.on('data', (d: string) => lines.push(...d.split('\n'))); }
    await waitFor(() => lines.find((l) => /network up/.test(l)), { timeoutMs: 120_000, what: `network up\n${lines.slice(-20).join('\n')}` });
    expect(lines.join('\n')).toMatch(/dev mode: every component listens on loopback \(127\.0\.0\.1\) only/);

    // The token file: this user's only.
    const file = controlTokenFile(controlPort);
    expect(fs.statSync(file).mode & 0o077).toBe(0);
    expect(fs.statSync(path.dirname(file)).mode & 0o077).toBe(0);
    const token = fs.readFileSync(file, 'utf8').trim();
    const base = `http://127.0.0.1:${controlPort}`;
    // No token, a wrong one: refused, and nothing crashed.
    expect((await request(base, 'POST', '/crash', { name: 'central' })).status).toBe(401);
    expect((await request(base, 'POST', '/crash', { name: 'central' }, { authorization: 'Bearer guess' })).status).toBe(401);
    expect((await get(base, '/status')).status).toBe(401);
    expect((await get(`http://127.0.0.1:${centralPort}`, '/health')).status).toBe(200);
    // The CLI of the same user finds the token by itself.
    const st = spawnCli(['status', '--json', '--control-port', String(controlPort)]);
    expect((await st.exited).code).toBe(0);
    const components = (JSON.parse(st.lines.join('\n')) as { components: Array<{ name: string; pid: number }> }).components;
    expect((await get(base, '/status', { authorization: `Bearer ${token}` })).status).toBe(200);

    // No component has a secret on its command line: read them as `ps` would.
    const adminToken = /admin token (\S+)/.exec(lines.join('\n'))?.[1] ?? String(lines.map((l) => { try { return JSON.parse(l).admin_token; } catch { return undefined; } }).find(Boolean));
    expect(adminToken.length).toBeGreaterThan(8);
    for (const c of components) {
      const cmdline = fs.readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0').join(' ');
      expect(cmdline, c.name).not.toContain(adminToken);
      expect(cmdline, c.name).not.toContain(token);
    }
    // Dev mode listens on loopback only: every listening socket of the network is bound to 127.0.0.1 (as `ss -ltn` shows).
    const listening = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f[3] === '0A')
      .map((f) => ({ addr: f[1]!.split(':')[0], port: parseInt(f[1]!.split(':')[1]!, 16) }));
    for (const p of [centralPort, mqttPort, gwHttp, controlPort]) {
      const l = listening.filter((x) => x.port === p);
      expect(l.length, `port ${p} listening`).toBeGreaterThan(0);
      for (const x of l) expect(x.addr, `port ${p}`).toBe('0100007F');
    }

    process.kill(-up.pid!, 'SIGINT');
    await new Promise((r) => up!.once('exit', r));
    expect(fs.existsSync(file)).toBe(false); // removed with the run
  }, 180_000);
});
