import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { startHealthServer } from '../../firmware/health-server.js';
import { createHealthProbe } from '../../monitor/health-probe.js';
import { initialWatchdog, onPoll, type WatchdogState } from '../../monitor/watchdog.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { rawSocket, startGw, type Gw } from './harness.js';

/** A line-oriented request on a socket: resolves with the first reply line. */
function ask(s: net.Socket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => { buf += d.toString('latin1'); const i = buf.indexOf('\n'); if (i >= 0) { s.off('data', onData); resolve(buf.slice(0, i)); } };
    s.on('data', onData);
    s.once('close', () => reject(new Error('closed')));
    s.write(`${line}\n`);
  });
}

/** The monitor's own probe and watchdog, polling like `evcharging monitor` does: a false fault shows as `faulty`. */
async function monitorPolls(port: number, polls: number): Promise<{ state: WatchdogState; misses: string[] }> {
  const probe = createHealthProbe('127.0.0.1', port, 2_000);
  let state = initialWatchdog();
  const misses: string[] = [];
  for (let i = 0; i < polls; i++) {
    const r = await probe.ping();
    if (r.kind !== 'ok') misses.push(r.kind === 'miss' ? r.reason : `KO ${r.reason}`);
    state = onPoll(state, r, 3).state;
    await new Promise((res) => setTimeout(res, 200)); // the monitor's poll interval, shortened
  }
  probe.close();
  return { state, misses };
}

/**
 * Attack from issue 10's table: "1,000 connections to a health port; holding its 256 slots →
 * 745 dropped; the monitor reports a false fault. FAULT/REPAIR on the health port need no
 * authentication, from any host". A real `evcharging cp` process; raw sockets as the attacker.
 */
describe('the engine health port under a connection flood', () => {
  let gw: Gw; let engine: CliProcess; let port: number;
  const held: net.Socket[] = [];
  beforeAll(async () => {
    gw = await startGw('dev');
    port = await freePort();
    engine = spawnCli(['cp', '--id', 'CP-H1', '--health-port', String(port), '--health-host', '127.0.0.1', '--mqtt', gw.url]);
    await engine.waitForLine(/engine ready/);
  });
  afterAll(async () => { for (const s of held) s.destroy(); await engine?.kill('SIGKILL'); await gw?.stop(); });

  it('1,000 sockets from one address hold at most its per-address share; a monitor connecting afresh sees no fault', async () => {
    const tries = await Promise.allSettled(Array.from({ length: 1000 }, () => rawSocket(port, '127.0.0.2')));
    for (const t of tries) if (t.status === 'fulfilled') { t.value.on('error', () => undefined); held.push(t.value); }
    const { state, misses } = await monitorPolls(port, 8);
    expect(misses).toEqual([]);
    expect(state.faulty).toBe(false);
    for (const s of held.splice(0)) s.destroy();
  }, 120_000);

  it('1,024 idle sockets from 64 addresses fill the port; a new monitor connection still gets in, and one already polling is never cut', async () => {
    const already = createHealthProbe('127.0.0.1', port, 2_000);
    expect((await already.ping()).kind).toBe('ok');
    for (let a = 10; a < 74; a++) {
      const tries = await Promise.allSettled(Array.from({ length: 16 }, () => rawSocket(port, `127.0.0.${a}`)));
      for (const t of tries) if (t.status === 'fulfilled') { t.value.on('error', () => undefined); held.push(t.value); }
      if (a % 8 === 0) expect((await already.ping()).kind).toBe('ok');
    }
    const { state, misses } = await monitorPolls(port, 8);
    expect(misses).toEqual([]);
    expect(state.faulty).toBe(false);
    expect((await already.ping()).kind).toBe('ok');
    already.close();
    // The engine's own counters say what happened: slots taken back from idle sockets, never more than the cap held.
    const s = await rawSocket(port);
    const status = JSON.parse((await ask(s, 'STATUS')).slice(3)) as { health_requests: { evicted: number } };
    s.destroy();
    expect(status.health_requests.evicted).toBeGreaterThan(0);
    for (const h of held.splice(0)) h.destroy();
  }, 120_000);

  it('FAULT and REPAIR are answered from this machine (the engine still faults on request)', async () => {
    const s = await rawSocket(port);
    expect(await ask(s, 'FAULT ground_fault')).toMatch(/^OK fault ground_fault/);
    await waitFor(async () => /^KO/.test(await ask(s, 'PING')), { what: 'engine reports its fault' });
    expect(await ask(s, 'REPAIR')).toBe('OK repaired');
    s.destroy();
  }, 120_000);
});

describe('FAULT/REPAIR off the network by default', () => {
  it('refuses FAULT and REPAIR from another host (seam: 127.0.0.2 counts as remote); PING and STATUS still answered', async () => {
    const faults: string[] = [];
    const srv = await startHealthServer({ port: 0, host: '127.0.0.1', log: silentLogger, cpId: 'CP-R', isLocal: (a) => a === '127.0.0.1' }, {
      health: () => ({ ok: true }), snapshot: () => ({ faults }), injectFault: (k) => { faults.push(k); }, repair: () => { faults.length = 0; },
    });
    try {
      const remote = await rawSocket(srv.port, '127.0.0.2');
      expect(await ask(remote, 'FAULT ground_fault')).toMatch(/^ERR FAULT is accepted only from this machine/);
      expect(await ask(remote, 'REPAIR')).toMatch(/^ERR REPAIR is accepted only from this machine/);
      expect(await ask(remote, 'PING')).toBe('OK');
      expect(faults).toEqual([]);
      remote.destroy();
      const local = await rawSocket(srv.port, '127.0.0.1');
      expect(await ask(local, 'FAULT ground_fault')).toMatch(/^OK/);
      expect(faults).toEqual(['ground_fault']);
      local.destroy();
      expect(srv.counters.control_refused).toBe(2);
    } finally { await srv.close(); }
  }, 120_000);

  it('evcharging cp refuses an unknown --health-control', async () => {
    const p = spawnCli(['cp', '--id', 'CP-X', '--health-port', String(await freePort()), '--health-control', 'everyone']);
    const { code } = await p.exited;
    expect(code).toBe(2);
    expect(p.lines.join('\n')).toMatch(/--health-control/);
  }, 120_000);
});
