import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { ORPHAN_GUARD, Supervisor, UnknownComponentError } from '../../network/supervisor.js';
import { probeHealth } from '../../network/health-probe.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { REPO_ROOT } from '../helpers/processes.js';

/** Alive = exists and is not a zombie (an orphan's exit is reaped by init, on its own schedule). */
const isAlive = (pid: number) => {
  try { const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z'; } catch { return false; }
};
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'supervisor-test-'));
const sups: Supervisor[] = [];
const strays = new Set<number>();
afterEach(async () => { await Promise.all(sups.splice(0).map((s) => s.stopAll())); });
afterAll(() => { for (const pid of strays) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } } });

async function gatewaySpec(name: string) {
  const [mqtt, http] = [await freePort(), await freePort()];
  return {
    spec: { name, kind: 'gateway' as const, args: ['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqtt), '--http-port', String(http)] },
    health: { kind: 'http' as const, url: `http://127.0.0.1:${http}/health` },
  };
}

describe('supervisor (real evcharging children)', () => {
  it('tracks pid and state through crash (SIGKILL), restart and a graceful stop', async () => {
    const logDir = tmp();
    const sup = new Supervisor({ cwd: REPO_ROOT, logDir, log: silentLogger, echoLevel: Infinity, stopTimeoutMs: 10_000 });
    sups.push(sup);
    const { spec, health } = await gatewaySpec('gw');
    sup.start(spec);
    const first = sup.status()[0]!;
    expect(first).toMatchObject({ name: 'gw', kind: 'gateway', state: 'running', restarts: 0 });
    expect(first.pid).toBeGreaterThan(0);
    await waitFor(async () => (await probeHealth(health)).ok, { timeoutMs: 30_000, what: 'gateway healthy' });

    expect(await sup.crash('gw')).toBe(first.pid);
    expect(sup.status()[0]).toMatchObject({ state: 'crashed', exit: 'SIGKILL', pid: undefined });
    expect(isAlive(first.pid!)).toBe(false);
    await expect(sup.crash('gw')).rejects.toThrow(/not running/);

    const pid2 = await sup.restart('gw');
    expect(pid2).not.toBe(first.pid);
    expect(sup.status()[0]).toMatchObject({ state: 'running', restarts: 1, pid: pid2 });
    await waitFor(async () => (await probeHealth(health)).ok, { timeoutMs: 30_000, what: 'gateway healthy again' });

    await sup.stop('gw');
    expect(sup.status()[0]).toMatchObject({ state: 'stopped', exit: 'code 0' });
    expect(isAlive(pid2!)).toBe(false);
    // It went through its own graceful shutdown, and its log file holds every line it printed.
    const log = fs.readFileSync(path.join(logDir, 'gw.log'), 'utf8');
    expect(log).toMatch(/"msg":"shutting down"/);
    expect(log).toMatch(/"msg":"stopped"/);
    expect(log.match(/"msg":"gateway listening"/g)).toHaveLength(2);
    await expect(sup.crash('nope')).rejects.toThrow(UnknownComponentError);
  });

  it('SIGKILLs a component that ignores SIGTERM once the stop deadline passes', async () => {
    const sup = new Supervisor({
      cwd: REPO_ROOT, logDir: tmp(), log: silentLogger, echoLevel: Infinity, stopTimeoutMs: 1_500,
      entry: ['-e', 'process.on("SIGTERM", () => console.log("ignoring SIGTERM")); console.log("ready"); setInterval(() => {}, 1000)'],
    });
    sups.push(sup);
    sup.start({ name: 'stubborn', kind: 'engine', args: [] });
    const pid = sup.status()[0]!.pid!;
    await waitFor(() => fs.readFileSync(path.join((sup as unknown as { o: { logDir: string } }).o.logDir, 'stubborn.log'), 'utf8').includes('ready'), { timeoutMs: 20_000, what: 'child ready' });
    await sup.stop('stubborn');
    expect(isAlive(pid)).toBe(false);
    expect(sup.status()[0]).toMatchObject({ state: 'stopped', exit: 'SIGKILL' });
  });

  it('starts a driver again when it ends on its own with code 0, not after an error', async () => {
    const sup = new Supervisor({ cwd: REPO_ROOT, logDir: tmp(), log: silentLogger, echoLevel: Infinity, stopTimeoutMs: 5_000, entry: ['-e', 'process.exit(Number(process.argv[1]))'] });
    sups.push(sup);
    sup.start({ name: 'ok', kind: 'driver', args: ['0'], again: true });
    sup.start({ name: 'bad', kind: 'driver', args: ['3'], again: true });
    await waitFor(() => sup.status().find((c) => c.name === 'ok')!.restarts >= 2, { timeoutMs: 30_000, what: 'two more rounds' });
    const bad = sup.status().find((c) => c.name === 'bad')!;
    expect(bad).toMatchObject({ state: 'exited', exit: 'code 3', restarts: 0 });
  });

  it('children of a SIGKILLed supervisor notice and shut down: no orphans', async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const parent = spawn(process.execPath, ['--import', 'tsx/esm', 'test/integration/fixtures/supervise.ts', `a:${ports[0]}:${ports[1]}`, `b:${ports[2]}:${ports[3]}`], {
      cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const { pids, logDir } = await waitFor(() => { try { return JSON.parse(out) as { pids: Record<string, number>; logDir: string }; } catch { return undefined; } }, { timeoutMs: 30_000, what: 'child pids' });
    for (const pid of Object.values(pids)) strays.add(pid);
    // Both children serve before the supervisor dies.
    await waitFor(async () => (await probeHealth({ kind: 'http', url: `http://127.0.0.1:${ports[1]}/health` })).ok && (await probeHealth({ kind: 'http', url: `http://127.0.0.1:${ports[3]}/health` })).ok, { timeoutMs: 30_000, what: 'children healthy' });
    parent.kill('SIGKILL');
    await waitFor(() => Object.values(pids).every((pid) => !isAlive(pid)), { timeoutMs: 20_000, what: 'orphaned children to exit' });
    // They went through their own graceful shutdown (the logs are files, so no broken pipe stops them).
    for (const name of ['a', 'b']) expect(fs.readFileSync(path.join(logDir, `${name}.log`), 'utf8')).toMatch(/"signal":"SIGTERM","msg":"shutting down"[\s\S]*"msg":"stopped"/);
  });

  it('the orphan guard is a file that exists', () => {
    expect(fs.existsSync(new URL(ORPHAN_GUARD))).toBe(true);
  });
});
