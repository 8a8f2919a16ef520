import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startMonitor, type Monitor } from '../../monitor/monitor.js';
import { silentLogger } from '../../lib/log.js';
import { MonitorReportMsg } from '../../protocol/index.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Many monitors in one process (as a fleet host would run them), watching a real
 * `evcharging fleet` process of engines, reporting to a test receiver standing in for central.
 */
describe('many monitors in one process against a real fleet of engines', () => {
  const N = 100;
  let fleet: CliProcess | undefined;
  let server: http.Server | undefined;
  const monitors: Monitor[] = [];
  let dir = '';
  afterAll(async () => {
    await Promise.all(monitors.map((m) => m.close()));
    await fleet?.kill('SIGKILL');
    await new Promise<void>((r) => { server?.closeAllConnections(); server ? server.close(() => r()) : r(); });
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  }, 60_000);

  it(`${N} monitors: all healthy, then the fleet is SIGKILLed and every one reports its fault`, async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'monitor-fleet-'));
    const portsFile = path.join(dir, 'ports.json');
    const prefix = `MF${process.pid}-`;
    // One fleet process (the monitors are under test, not the fleet's workers): under stress-ng,
    // starting a worker process per core was what made the ports file late.
    fleet = spawnCli(['fleet', '--count', String(N), '--workers', '1', '--id-prefix', prefix, '--mqtt', `mqtt://127.0.0.1:${await freePort()}`, '--ports-file', portsFile, '--ramp-per-s', '1000']);
    let fleetEnded = '';
    void fleet.exited.then((e) => { fleetEnded = `fleet exited early (code ${e.code}, signal ${e.signal})`; });
    const ports = await waitFor(async () => {
      if (fleetEnded) throw new Error(fleetEnded);
      return JSON.parse(await fs.readFile(portsFile, 'utf8')) as Record<string, number>;
    }, { timeoutMs: 120_000, what: () => `fleet ports file; the fleet printed: ${fleet!.lines.slice(-5).join(' | ')}` });
    expect(Object.keys(ports)).toHaveLength(N);

    // Test receiver for central's report endpoint.
    const reports: MonitorReportMsg[] = [];
    const firstFaultAt = new Map<string, number>();
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const r = MonitorReportMsg.safeParse(JSON.parse(body));
        if (!r.success) { res.writeHead(400).end(); return; }
        reports.push(r.data);
        if (r.data.kind === 'fault' && !firstFaultAt.has(r.data.cp_id)) firstFaultAt.set(r.data.cp_id, Date.now());
        res.writeHead(202).end('{}');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const central = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;

    for (const [cpId, port] of Object.entries(ports)) {
      monitors.push(startMonitor({ cpId, engine: { host: '127.0.0.1', port }, centralUrl: central, intervalMs: 1000, maxMisses: 2, timeoutMs: 800, log: silentLogger }));
    }
    await waitFor(() => monitors.every((m) => m.status().polls.ok >= 2 && m.status().reports.accepted >= 2), { timeoutMs: 60_000, what: 'every monitor healthy and reporting' });
    expect(reports.every((r) => r.kind === 'heartbeat' && r.engine_ok)).toBe(true);

    // Steady-state cost of N monitors in this process (printed, not asserted).
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const polls0 = monitors.reduce((a, m) => a + m.status().polls.ok, 0);
    await waitFor(() => Date.now() - t0 >= 5000, { timeoutMs: 10_000 });
    const cpu = process.cpuUsage(cpu0);
    const polls = monitors.reduce((a, m) => a + m.status().polls.ok, 0) - polls0;
    const wall = Date.now() - t0;

    const killedAt = Date.now();
    fleet.child.kill('SIGKILL');
    await fleet.exited;
    const detectedAt = new Map<Monitor, number>();
    await waitFor(() => {
      for (const m of monitors) if (!detectedAt.has(m) && m.status().faulty) detectedAt.set(m, Date.now());
      return detectedAt.size === N && firstFaultAt.size === N;
    }, { timeoutMs: 30_000, intervalMs: 20, what: 'a fault report from every monitor' });
    const lat = [...firstFaultAt.values()].map((t) => t - killedAt).sort((a, b) => a - b);
    const det = [...detectedAt.values()].map((t) => t - killedAt).sort((a, b) => a - b);
    for (const m of monitors) expect(m.status().reason).toMatch(/refused|closed/);
    console.log(`${N} monitors in one process: ${(polls / (wall / 1000)).toFixed(0)} polls/s, CPU ${((cpu.user + cpu.system) / 1000 / wall * 100).toFixed(1)}% of one core `
      + `(incl. the test receiver); SIGKILL to fault verdict: p50 ${det[Math.floor(N / 2)]} ms, max ${det[N - 1]} ms; to fault report received: p50 ${lat[Math.floor(N / 2)]} ms, max ${lat[N - 1]} ms`);

    // close() ends every poll loop and report pump; status() is still readable afterwards.
    await Promise.all(monitors.splice(0).map(async (m) => { await m.close(); expect(m.status().faulty).toBe(true); }));
  }, 300_000);
});
