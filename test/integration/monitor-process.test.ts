import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MonitorReportMsg } from '../../protocol/index.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A test receiver standing in for central's POST /monitor/report: validates each body against
 * the protocol schema, records it, and answers 202 (or a chosen error status).
 */
async function startReportReceiver(port = 0) {
  const reports: MonitorReportMsg[] = [];
  const invalid: string[] = [];
  const auth: Array<string | undefined> = [];
  let status = 202;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/monitor/report') { res.writeHead(404).end(); return; }
      const parsed = MonitorReportMsg.safeParse(JSON.parse(body));
      if (!parsed.success) { invalid.push(body); res.writeHead(400).end('{"error":"bad report"}'); return; }
      auth.push(req.headers.authorization);
      if (status === 202) reports.push(parsed.data);
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 202 ? '{}' : '{"error":"test receiver refuses"}');
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    reports, invalid, auth,
    setStatus: (s: number) => { status = s; },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A test health port that answers each line with whatever `reply` says (garbage, OK, nothing). */
async function startScriptedHealthPort() {
  let reply: string | null = 'OK\n';
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => undefined);
    s.setEncoding('latin1');
    s.on('data', (d: string) => { for (const _ of d.split('\n').slice(1)) if (reply !== null) s.write(reply); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    set: (r: string | null) => { reply = r; },
    close: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); server.close(() => r()); }),
  };
}

describe('evcharging monitor (real process, real engine, test report receiver)', () => {
  const procs: CliProcess[] = [];
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  async function engine(cpId: string, port: number) {
    const dead = await freePort();
    const p = spawnCli(['cp', '--id', cpId, '--health-port', String(port), '--health-host', '127.0.0.1', '--mqtt', `mqtt://127.0.0.1:${dead}`]);
    procs.push(p);
    await p.waitForLine(/"engine ready"/, 30_000);
    return p;
  }
  function monitor(cpId: string, enginePort: number, central: string, extra: string[] = []) {
    const p = spawnCli(['monitor', '--cp', cpId, '--engine', `127.0.0.1:${enginePort}`, '--central', central, '--interval-ms', '500', ...extra]);
    procs.push(p);
    return p;
  }
  const since = (arr: MonitorReportMsg[], n: number) => arr.slice(n);

  it('engine SIGKILL: fault report after two missed polls; engine back on its port: recovered', async () => {
    const cpId = `CP-MON-${process.pid}-1`;
    const rx = await startReportReceiver();
    closers.push(rx.close);
    const port = await freePort();
    const eng = await engine(cpId, port);
    const mon = monitor(cpId, port, rx.url, ['--token', `monitor-${cpId}:sekrit`]);
    await waitFor(() => rx.reports.filter((r) => r.kind === 'heartbeat' && r.engine_ok).length >= 3, { timeoutMs: 20_000, what: 'healthy heartbeats' });
    expect(rx.reports[0]).toMatchObject({ v: 1, cp_id: cpId, monitor_id: `monitor-${cpId}`, kind: 'heartbeat', engine_ok: true });
    expect(rx.auth[0]).toBe(`Bearer monitor-${cpId}:sekrit`);

    const before = rx.reports.length;
    eng.child.kill('SIGKILL');
    await eng.exited;
    const fault = await waitFor(() => since(rx.reports, before).find((r) => r.kind === 'fault'), { timeoutMs: 20_000, what: 'fault report' });
    expect(fault).toMatchObject({ cp_id: cpId, engine_ok: false });
    expect(fault.reason).toMatch(/refused|closed/);
    // Nothing but healthy heartbeats before it, and exactly two bad polls counted when it fired.
    // The report and the log line are written independently: on a loaded machine the HTTP report can
    // arrive first, so wait for the line (with a deadline) instead of expecting it already there.
    const detected = await waitFor(() => mon.logs().find((l) => l.msg === 'engine fault detected, reporting to central'), { timeoutMs: 10_000, what: 'fault log line' });
    expect(detected).toMatchObject({ bad_polls: 2 });
    // While down: heartbeats with engine_ok false, no second fault report.
    const afterFault = rx.reports.length;
    await waitFor(() => since(rx.reports, afterFault).length >= 3, { timeoutMs: 20_000, what: 'heartbeats while down' });
    expect(since(rx.reports, afterFault).every((r) => r.kind === 'heartbeat' && !r.engine_ok)).toBe(true);

    await engine(cpId, port);
    const recovered = await waitFor(() => since(rx.reports, afterFault).find((r) => r.kind === 'recovered'), { timeoutMs: 30_000, what: 'recovered report' });
    expect(recovered.engine_ok).toBe(true);
    expect(rx.invalid).toEqual([]);
  });

  it('KO from the engine (injected ground fault) is a fault; REPAIR brings recovered', async () => {
    const cpId = `CP-MON-${process.pid}-2`;
    const rx = await startReportReceiver();
    closers.push(rx.close);
    const port = await freePort();
    await engine(cpId, port);
    monitor(cpId, port, rx.url);
    await waitFor(() => rx.reports.length >= 1, { timeoutMs: 20_000, what: 'first report' });
    const inject = spawnCli(['fault', '--engine', `127.0.0.1:${port}`, '--kind', 'ground_fault']);
    expect((await inject.exited).code).toBe(0);
    const fault = await waitFor(() => rx.reports.find((r) => r.kind === 'fault'), { timeoutMs: 20_000, what: 'fault report' });
    expect(fault.reason).toBe('KO fault ground_fault');
    const repair = spawnCli(['fault', '--engine', `127.0.0.1:${port}`, '--repair']);
    expect((await repair.exited).code).toBe(0);
    await waitFor(() => rx.reports.find((r) => r.kind === 'recovered'), { timeoutMs: 20_000, what: 'recovered report' });
  });

  it('garbage and silence from the health port count as misses; a sane reply again recovers', async () => {
    const cpId = `CP-MON-${process.pid}-3`;
    const rx = await startReportReceiver();
    closers.push(rx.close);
    const hp = await startScriptedHealthPort();
    closers.push(hp.close);
    const mon = monitor(cpId, hp.port, rx.url);
    await waitFor(() => rx.reports.some((r) => r.kind === 'heartbeat' && r.engine_ok), { timeoutMs: 20_000, what: 'healthy heartbeat' });
    hp.set('\x00\xffHELLO garbage\n');
    const fault = await waitFor(() => rx.reports.find((r) => r.kind === 'fault'), { timeoutMs: 20_000, what: 'fault on garbage' });
    expect(fault.reason).toMatch(/^bad reply/);
    hp.set('OK\n');
    await waitFor(() => rx.reports.find((r) => r.kind === 'recovered'), { timeoutMs: 20_000, what: 'recovered' });
    const n = rx.reports.length;
    hp.set(null); // connected but silent: poll timeouts
    const silent = await waitFor(() => since(rx.reports, n).find((r) => r.kind === 'fault'), { timeoutMs: 20_000, what: 'fault on silence' });
    expect(silent.reason).toMatch(/no reply within/);
    hp.set('OK\n');
    await waitFor(() => since(rx.reports, n).find((r) => r.kind === 'recovered'), { timeoutMs: 20_000, what: 'recovered after silence' });
    const m = rx.reports.length;
    hp.set('A'.repeat(5000)); // an endless line without a newline
    const long = await waitFor(() => since(rx.reports, m).find((r) => r.kind === 'fault'), { timeoutMs: 20_000, what: 'fault on oversize reply' });
    expect(long.reason).toBe('bad reply: line too long');
    expect(mon.child.exitCode).toBeNull();
  });

  it('central down: one "not reachable" line, polling goes on, the fault is delivered once central is up; refusals are survived', async () => {
    const cpId = `CP-MON-${process.pid}-4`;
    const centralPort = await freePort();
    const port = await freePort();
    const eng = await engine(cpId, port);
    const mon = monitor(cpId, port, `http://127.0.0.1:${centralPort}`);
    await mon.waitForLine(/central not reachable, retrying/, 20_000);
    eng.child.kill('SIGKILL');
    await mon.waitForLine(/engine fault detected/, 20_000);
    await waitFor(() => mon.logs().filter((l) => l.msg === 'engine poll failed').length >= 1, { timeoutMs: 5_000 });
    const rx = await startReportReceiver(centralPort);
    closers.push(rx.close);
    rx.setStatus(400); // central refuses at first: counted and logged, no crash
    await mon.waitForLine(/central refused a report/, 20_000);
    rx.setStatus(202);
    const fault = await waitFor(() => rx.reports.find((r) => r.kind === 'fault'), { timeoutMs: 20_000, what: 'fault delivered after outage' });
    expect(fault.engine_ok).toBe(false);
    expect(mon.logs().filter((l) => l.msg === 'central not reachable, retrying')).toHaveLength(1);
    expect(mon.logs().filter((l) => l.msg === 'central refused a report')).toHaveLength(1);
    expect(mon.lines.some((l) => /^\s+at /.test(l))).toBe(false);
    mon.child.kill('SIGTERM');
    expect((await mon.exited).code).toBe(0);
  });

  it('bad configuration: one line naming the option, exit 2', async () => {
    for (const [args, re] of [
      [['monitor', '--cp', 'CP-1'], /--engine/],
      [['monitor', '--cp', 'CP-1', '--engine', 'nohostport'], /--engine/],
      [['monitor', '--cp', 'CP 1', '--engine', 'h:1'], /--cp/],
      [['monitor', '--cp', 'CP-1', '--engine', 'h:1', '--central', 'ftp://x'], /--central/],
      [['monitor', '--cp', 'CP-1', '--engine', 'h:1', '--interval-ms', '500', '--timeout-ms', '500'], /--timeout-ms/],
    ] as const) {
      const p = spawnCli([...args]);
      procs.push(p);
      expect((await p.exited).code).toBe(2);
      const text = p.lines.filter(Boolean);
      expect(text).toHaveLength(1);
      expect(text[0]).toMatch(re);
    }
  });
});
