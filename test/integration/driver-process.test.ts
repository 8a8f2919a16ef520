import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBus } from '../../bus/create.js';
import type { Bus } from '../../bus/types.js';
import { silentLogger } from '../../lib/log.js';
import { PROTOCOL_VERSION, type DriverRequestMsg, type DriverUpdateMsg, type Ticket } from '../../protocol/index.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { TestNetwork } from '../helpers/network.js';
import { freePort } from '../helpers/ports.js';
import { CLI, REPO_ROOT, spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

type Behaviour = 'charge' | 'reject' | 'silent' | 'endless' | 'late';

/**
 * A test responder playing central's side of driver.requests / driver.updates on the real bus:
 * REQUEST → per-CP behaviour (charge: ACCEPTED, IN_PROGRESS until STOP, then COMPLETED with a
 * ticket; reject; silent; endless: charges and never ends); STOP → COMPLETED; QUERY → the last
 * session's final update (with the QUERY's request_id), or REJECTED "no session".
 */
async function startTestResponder(target: string | { kafkaBootstrap: string[] }, behaviour: (cpId: string) => Behaviour) {
  const clientId = `test-responder-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const bus: Bus = createBus(typeof target === 'string' ? { mqttUrl: target, clientId } : { kafkaBootstrap: target.kafkaBootstrap, mqttUrl: 'mqtt://unused:1', clientId }, silentLogger);
  const requests: DriverRequestMsg[] = [];
  const sessions = new Map<string, { sessionId: string; cpId: string; requestId: string; startedAt: number; timer?: NodeJS.Timeout; kwh: number }>();
  const lastEnd = new Map<string, DriverUpdateMsg>();
  let n = 0;
  const send = (m: Omit<DriverUpdateMsg, 'v' | 'ts'>) => bus.publish('driver.updates', m.driver_id, { v: PROTOCOL_VERSION, ts: Date.now(), ...m });
  const finish = async (driverId: string, status: 'COMPLETED' | 'INTERRUPTED', reason: Ticket['reason'], requestId?: string) => {
    const s = sessions.get(driverId);
    if (!s) return;
    clearInterval(s.timer);
    sessions.delete(driverId);
    const now = Date.now();
    const ticket: Ticket = {
      session_id: s.sessionId, cp_id: s.cpId, driver_id: driverId, kwh: s.kwh, eur: Math.round(s.kwh * 0.35 * 100) / 100, price_eur_kwh: 0.35,
      started_at: s.startedAt, ended_at: now, duration_s: (now - s.startedAt) / 1000, reason, interrupted: status === 'INTERRUPTED',
    };
    const upd = { driver_id: driverId, request_id: requestId ?? s.requestId, session_id: s.sessionId, cp_id: s.cpId, status, kwh: ticket.kwh, eur: ticket.eur, ticket };
    lastEnd.set(driverId, { v: PROTOCOL_VERSION, ts: now, ...upd });
    await send(upd);
  };
  bus.subscribe('driver.requests', async (m) => {
    requests.push(m);
    const d = m.driver_id;
    if (m.action === 'QUERY') {
      const last = lastEnd.get(d);
      const s = sessions.get(d);
      if (s) await send({ driver_id: d, request_id: m.request_id, session_id: s.sessionId, cp_id: s.cpId, status: 'IN_PROGRESS', kw: 11, kwh: s.kwh, eur: 0 });
      else if (last) await send({ ...last, request_id: m.request_id });
      else await send({ driver_id: d, request_id: m.request_id, status: 'REJECTED', reason: 'no session' });
      return;
    }
    if (m.action === 'STOP') { await finish(d, 'COMPLETED', 'driver_stop', m.request_id); return; }
    if (m.action === 'CANCEL') return;
    const cpId = m.cp_id!;
    const b = behaviour(cpId);
    if (b === 'silent') return;
    // late: accepts only after the driver gave up (as a central whose START was held up), and ignores CANCEL (as main's central did).
    if (b === 'late') await new Promise((r) => setTimeout(r, 3_000));
    if (b === 'reject') { await send({ driver_id: d, request_id: m.request_id, cp_id: cpId, status: 'REJECTED', reason: `${cpId} is not available` }); return; }
    const s = { sessionId: `S-${++n}-${cpId}`, cpId, requestId: m.request_id, startedAt: Date.now(), kwh: 0, timer: undefined as NodeJS.Timeout | undefined };
    sessions.set(d, s);
    await send({ driver_id: d, request_id: m.request_id, session_id: s.sessionId, cp_id: cpId, status: 'ACCEPTED' });
    s.timer = setInterval(() => {
      s.kwh = Math.round((s.kwh + 0.05) * 1000) / 1000;
      void send({ driver_id: d, request_id: m.request_id, session_id: s.sessionId, cp_id: cpId, status: 'IN_PROGRESS', kw: 11, kwh: s.kwh, eur: Math.round(s.kwh * 0.35 * 100) / 100 });
    }, 300);
  }, { group: clientId, fromBeginning: true });
  await bus.start();
  // Kafka consumers join only once their topics exist: create both topics with a warm-up record.
  const warm = { driver_id: 'topic-warmup', request_id: 'warmup', ts: Date.now(), v: PROTOCOL_VERSION };
  await waitFor(async () => {
    await bus.publish('driver.requests', 'topic-warmup', { ...warm, action: 'QUERY' });
    await bus.publish('driver.updates', 'topic-warmup', { ...warm, status: 'REJECTED', reason: 'warm-up' });
    return bus.health().consumer === 'connected' && requests.some((r) => r.driver_id === 'topic-warmup');
  }, { timeoutMs: 60_000, intervalMs: 1000, what: 'test responder consumer joined' });
  return {
    requests, sessions,
    interrupt: (driverId: string) => finish(driverId, 'INTERRUPTED', 'fault'),
    close: async () => { for (const s of sessions.values()) clearInterval(s.timer); await bus.close(); },
  };
}

describe('evcharging driver (real process, real gateway bus, test responder as central)', () => {
  let net0: TestNetwork;
  let dir: string;
  const procs: CliProcess[] = [];
  const closers: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    net0 = await TestNetwork.start({ central: false });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'driver-test-'));
  }, 90_000);
  afterAll(async () => { await net0?.stop(); await fs.rm(dir, { recursive: true, force: true }); });
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  let seq = 0;
  const uniq = (p: string) => `${p}-${process.pid}-${++seq}`;
  async function requestFile(lines: string[]) {
    const f = path.join(dir, `${uniq('req')}.txt`);
    await fs.writeFile(f, lines.join('\n'));
    return f;
  }
  function driver(id: string, args: string[]) {
    const p = spawnCli(['driver', '--id', id, '--bus-mqtt', net0.mqttUrl, ...args]);
    procs.push(p);
    return p;
  }
  const stdoutLines = (p: CliProcess) => p.lines.filter((l) => !l.startsWith('{'));

  it('runs the file in order, one line per update, skips bad lines, times out silence, ends with a summary and exit 0', async () => {
    const cpA = uniq('CP-A'); const cpB = uniq('CP-B'); const cpR = uniq('CP-R'); const cpS = uniq('CP-S');
    const rsp = await startTestResponder(net0.mqttUrl, (cp) => (cp === cpR ? 'reject' : cp === cpS ? 'silent' : 'charge'));
    closers.push(rsp.close);
    const id = uniq('driver-alice');
    const file = await requestFile(['# my afternoon', cpA, '', 'not an id!', `${cpS}   # this one never answers`, cpR, cpB, '']);
    const d = driver(id, ['--requests', file, '--wait-s', '0.5', '--max-charge-s', '1', '--request-timeout-ms', '2000']);
    const exit = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 60_000))]);
    expect(exit, d.lines.slice(-20).join('\n')).toEqual({ code: 0, signal: null });

    const mine = rsp.requests.filter((r) => r.driver_id === id);
    expect(mine.map((r) => [r.action, r.cp_id])).toEqual([
      ['QUERY', undefined], ['REQUEST', cpA], ['STOP', cpA], ['REQUEST', cpS], ['CANCEL', cpS], ['QUERY', undefined], ['REQUEST', cpR], ['REQUEST', cpB], ['STOP', cpB],
    ]);
    // Every REQUEST carries the moment its driver stops waiting; the CANCEL names the request it withdraws.
    const reqS = mine.find((r) => r.action === 'REQUEST' && r.cp_id === cpS)!;
    expect(reqS.expires_at! - reqS.ts).toBe(2000);
    expect(mine.find((r) => r.action === 'CANCEL')).toMatchObject({ cancels: reqS.request_id });
    const out = stdoutLines(d);
    expect(out).toContain(`${id} last session: no earlier session`);
    expect(out.some((l) => l.includes('line 4: more than one word: "not an id!" (skipped)'))).toBe(true);
    expect(out).toContain(`${id} ${cpA} ACCEPTED session S-1-${cpA}`);
    expect(out.some((l) => new RegExp(`^${id} ${cpA} IN_PROGRESS 11\\.0 kW \\d+\\.\\d\\d kWh \\d+\\.\\d\\d €$`).test(l))).toBe(true);
    expect(out.some((l) => new RegExp(`^${id} ${cpA} COMPLETED \\d+\\.\\d\\d kWh \\d+\\.\\d\\d € ticket S-1-${cpA}: 0\\.35 €/kWh, \\d+ s, reason driver_stop$`).test(l))).toBe(true);
    expect(out).toContain(`${id} ${cpS} TIMEOUT no answer within 2000 ms, cancelling`);
    expect(out).toContain(`${id} ${cpS} no session started, moving on`);
    expect(out).toContain(`${id} ${cpR} REJECTED ${cpR} is not available`);
    // Order on stdout follows the file: A's end before S's timeout before R's rejection before B's acceptance.
    const at = (re: string) => out.findIndex((l) => l.startsWith(re));
    expect(at(`${id} ${cpA} COMPLETED`)).toBeLessThan(at(`${id} ${cpS} TIMEOUT`));
    expect(at(`${id} ${cpS} TIMEOUT`)).toBeLessThan(at(`${id} ${cpR} REJECTED`));
    expect(at(`${id} ${cpR} REJECTED`)).toBeLessThan(at(`${id} ${cpB} ACCEPTED`));
    expect(out.at(-1)).toMatch(new RegExp(`^${id} summary: 2 sessions \\(2 completed, 0 interrupted\\), \\d+\\.\\d\\d kWh, \\d+\\.\\d\\d €, 1 rejected, 1 timed out, 1 invalid line$`));
    // Logs stay on stderr as JSON; no stack traces.
    expect(d.lines.some((l) => /^\s+at /.test(l))).toBe(false);
  });

  it('killed mid-session, restarted: its QUERY prints how the last session ended', async () => {
    const cp = uniq('CP-L');
    const rsp = await startTestResponder(net0.mqttUrl, () => 'endless');
    closers.push(rsp.close);
    const id = uniq('driver-bob');
    const file = await requestFile([cp]);
    const d1 = driver(id, ['--requests', file, '--request-timeout-ms', '5000']);
    await d1.waitForLine((l) => l.startsWith(`${id} ${cp} IN_PROGRESS`), 30_000);
    d1.child.kill('SIGKILL');
    await d1.exited;
    await rsp.interrupt(id); // central's side: the session ends while the driver is away
    const empty = await requestFile(['# nothing more today']);
    const d2 = driver(id, ['--requests', empty, '--request-timeout-ms', '5000']);
    await d2.waitForLine((l) => l.startsWith(`${id} last session:`), 30_000);
    // The ticket is printed once: on the "last session:" line, or just above it when its stored
    // update came first (then that line points at it).
    const tickets = stdoutLines(d2).filter((l) => l.includes(`ticket S-1-${cp}:`));
    expect(tickets).toHaveLength(1);
    expect(tickets[0]).toMatch(new RegExp(`^${id} (last session: )?${cp} INTERRUPTED \\d+\\.\\d\\d kWh \\d+\\.\\d\\d € ticket S-1-${cp}: 0\\.35 €/kWh, \\d+ s, reason fault$`));
    expect(await d2.exited).toEqual({ code: 0, signal: null });
    expect(stdoutLines(d2).at(-1)).toBe(`${id} summary: 0 sessions (0 completed, 0 interrupted), 0.00 kWh, 0.00 €, 0 rejected, 0 timed out, 0 invalid lines`);
  });

  it('killed mid-session, restarted: takes its running session back, stops it at --max-charge-s, prints the ticket once', async () => {
    const cp = uniq('CP-RA');
    const rsp = await startTestResponder(net0.mqttUrl, () => 'endless');
    closers.push(rsp.close);
    const id = uniq('driver-ada');
    const d1 = driver(id, ['--requests', await requestFile([cp]), '--request-timeout-ms', '5000']);
    await d1.waitForLine((l) => l.startsWith(`${id} ${cp} IN_PROGRESS`), 30_000);
    await d1.kill('SIGKILL');
    const d2 = driver(id, ['--requests', await requestFile(['# nothing more']), '--request-timeout-ms', '5000', '--max-charge-s', '1']);
    await d2.waitForLine((l) => l.startsWith(`${id} last session: ${cp} IN_PROGRESS`) && l.endsWith(', following it'), 30_000);
    const exit = await Promise.race([d2.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(exit, d2.lines.slice(-20).join('\n')).toEqual({ code: 0, signal: null });
    expect(rsp.requests.filter((r) => r.driver_id === id).map((r) => r.action)).toEqual(['QUERY', 'REQUEST', 'QUERY', 'STOP']);
    expect(rsp.sessions.has(id)).toBe(false);
    const out = stdoutLines(d2);
    expect(out.filter((l) => l.startsWith(`${id} ${cp} COMPLETED`) && /ticket S-\d+-.*reason driver_stop$/.test(l))).toHaveLength(1);
    expect(out.at(-1)).toMatch(new RegExp(`^${id} summary: 1 session \\(1 completed, 0 interrupted\\)`));
  });

  it('request timed out and accepted late anyway (CANCEL ignored): the driver follows that session and stops it; nothing is left supplying', async () => {
    const cp = uniq('CP-LATE');
    const rsp = await startTestResponder(net0.mqttUrl, () => 'late');
    closers.push(rsp.close);
    const id = uniq('driver-lou');
    const d = driver(id, ['--requests', await requestFile([cp]), '--request-timeout-ms', '1500', '--max-charge-s', '1', '--wait-s', '0']);
    const exit = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 40_000))]);
    expect(exit, d.lines.slice(-20).join('\n')).toEqual({ code: 0, signal: null });
    const acts = rsp.requests.filter((r) => r.driver_id === id).map((r) => r.action);
    expect(acts.slice(0, 4)).toEqual(['QUERY', 'REQUEST', 'CANCEL', 'QUERY']);
    expect(acts).toContain('STOP');
    expect(rsp.sessions.has(id)).toBe(false); // the late supply was stopped
    const out = stdoutLines(d);
    expect(out).toContain(`${id} ${cp} TIMEOUT no answer within 1500 ms, cancelling`);
    expect(out.filter((l) => l.startsWith(`${id} ${cp} COMPLETED`))).toHaveLength(1);
  });

  it('SIGTERM while charging: the leaving driver stops its session and prints the ticket before exiting 0', async () => {
    const cp = uniq('CP-Q');
    const rsp = await startTestResponder(net0.mqttUrl, () => 'endless');
    closers.push(rsp.close);
    const id = uniq('driver-quit');
    const d = driver(id, ['--requests', await requestFile([cp]), '--request-timeout-ms', '5000']);
    await d.waitForLine((l) => l.startsWith(`${id} ${cp} IN_PROGRESS`), 30_000);
    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(rsp.requests.filter((r) => r.driver_id === id).map((r) => r.action)).toEqual(['QUERY', 'REQUEST', 'STOP']);
    expect(rsp.sessions.has(id)).toBe(false);
    const out = stdoutLines(d);
    expect(out).toContain(`${id} ${cp} STOP (driver leaving)`);
    expect(out.some((l) => l.startsWith(`${id} ${cp} COMPLETED`))).toBe(true);
    expect(out.at(-1)).toMatch(new RegExp(`^${id} summary: 1 session `));
  });

  it('many requests in one run: no abort-listener leak (MaxListenersExceededWarning)', async () => {
    const cp = uniq('CP-NO');
    const rsp = await startTestResponder(net0.mqttUrl, () => 'reject');
    closers.push(rsp.close);
    const id = uniq('driver-many');
    const d = driver(id, ['--requests', await requestFile(Array.from({ length: 14 }, () => cp)), '--wait-s', '0', '--request-timeout-ms', '5000']);
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(stdoutLines(d).at(-1)).toMatch(/14 rejected/);
    expect(d.lines.filter((l) => /MaxListenersExceeded|memory leak/.test(l))).toEqual([]);
  });

  it('--http: charging points proxied from central, requests validated (4xx with a reason), updates listed; SIGTERM prints the summary, exit 0', async () => {
    const cp = uniq('CP-H');
    const rsp = await startTestResponder(net0.mqttUrl, () => 'charge');
    closers.push(rsp.close);
    // A test stand-in for central's GET /cp.
    const fakeCentral = http.createServer((req, res) => {
      if (req.url === '/cp') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ charging_points: [{ cp_id: cp, state: 'ACTIVATED' }], active_requests: 0 }));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => fakeCentral.listen(0, '127.0.0.1', () => r()));
    closers.push(() => new Promise<void>((r) => fakeCentral.close(() => r())));
    const centralUrl = `http://127.0.0.1:${(fakeCentral.address() as net.AddressInfo).port}`;
    const id = uniq('driver-carol');
    const port = await freePort();
    const d = driver(id, ['--http', String(port), '--central', centralUrl, '--max-charge-s', '1', '--request-timeout-ms', '3000']);
    await d.waitForLine(/"driver HTTP API listening"/, 30_000);
    await d.waitForLine((l) => l.startsWith(`${id} last session:`), 30_000);
    const base = `http://127.0.0.1:${port}`;
    const post = (p: string, body: string, type = 'application/json') => fetch(`${base}${p}`, { method: 'POST', headers: { 'content-type': type }, body });

    const cps = await fetch(`${base}/charging-points`);
    expect(cps.status).toBe(200);
    expect(await cps.json()).toEqual({ charging_points: [{ cp_id: cp, state: 'ACTIVATED' }], active_requests: 0 });

    const bad: Array<[Response, number, RegExp]> = [
      [await post(`/drivers/${id}/requests`, '{not json'), 400, /JSON/i],
      [await post(`/drivers/${id}/requests`, '{}'), 400, /cp_id/],
      [await post(`/drivers/${id}/requests`, JSON.stringify({ cp_id: 'CP 1/#' })), 400, /cp_id: invalid CP id/],
      [await post(`/drivers/${id}/requests`, JSON.stringify({ cp_id: cp, vehicle_id: 'x'.repeat(65) })), 400, /vehicle_id/],
      [await post(`/drivers/${id}/requests`, JSON.stringify({ cp_id: cp, extra: 1 })), 400, /extra|unrecognized/i],
      [await post('/drivers/someone-else/requests', JSON.stringify({ cp_id: cp })), 404, /unknown driver/],
      [await post(`/drivers/${id}/requests`, JSON.stringify({ cp_id: cp, pad: 'y'.repeat(20_000) })), 413, /./],
      [await post(`/drivers/${id}/requests`, 'cp_id=CP-1', 'text/plain'), 400, /expected object/],
    ];
    for (const [res, status, re] of bad) {
      expect(res.status).toBe(status);
      expect(String(((await res.json()) as { error: string }).error)).toMatch(re);
    }
    expect(rsp.requests.filter((r) => r.driver_id === id && r.action === 'REQUEST')).toEqual([]); // nothing bad reached the bus

    const ok = await post(`/drivers/${id}/requests`, JSON.stringify({ cp_id: cp, vehicle_id: 'EV-42' }));
    expect(ok.status).toBe(202);
    const { request_id } = (await ok.json()) as { request_id: string };
    await waitFor(() => rsp.requests.find((r) => r.request_id === request_id), { timeoutMs: 20_000, what: 'request on the bus' });
    expect(rsp.requests.find((r) => r.request_id === request_id)).toMatchObject({ action: 'REQUEST', cp_id: cp, vehicle_id: 'EV-42', driver_id: id });
    await d.waitForLine((l) => l.startsWith(`${id} ${cp} COMPLETED`), 30_000);
    const ups = (await (await fetch(`${base}/drivers/${id}/updates`)).json()) as { updates: DriverUpdateMsg[]; totals: { sessions: number } };
    expect(ups.updates.map((u) => u.status)).toEqual(expect.arrayContaining(['ACCEPTED', 'IN_PROGRESS', 'COMPLETED']));
    expect(ups.totals.sessions).toBe(1);
    expect((await fetch(`${base}/drivers/nobody/updates`)).status).toBe(404);

    await new Promise<void>((r) => { fakeCentral.closeAllConnections(); fakeCentral.close(() => r()); });
    closers.pop();
    const down = await fetch(`${base}/charging-points`);
    expect(down.status).toBe(502);
    expect(((await down.json()) as { error: string }).error).toMatch(/central not reachable/);

    expect(d.child.exitCode).toBeNull(); // --http keeps it running
    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(stdoutLines(d).at(-1)).toMatch(new RegExp(`^${id} summary: 1 session \\(1 completed, 0 interrupted\\)`));
  });

  it('terminal mode (real pty via script(1)): type a CP id, see updates, "stop" ends it with a ticket, "quit" prints the summary', async () => {
    const cp = uniq('CP-T');
    const rsp = await startTestResponder(net0.mqttUrl, () => 'charge');
    closers.push(rsp.close);
    const id = uniq('driver-tty');
    const cmd = [process.execPath, CLI, 'driver', '--id', id, '--bus-mqtt', net0.mqttUrl].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: REPO_ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => { text += d; });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    closers.push(async () => { if (child.exitCode === null) { child.kill('SIGKILL'); await exited; } });
    const seen = (re: RegExp) => waitFor(() => re.test(text), { timeoutMs: 30_000, what: `${re} in terminal output:\n${text.slice(-2000)}` });
    await seen(/type a CP id/);
    await seen(new RegExp(`${id} last session: no earlier session`));
    child.stdin.write('not an id!\n');
    await seen(/not a CP id: "not an id!"/);
    child.stdin.write(`${cp}\n`);
    await seen(new RegExp(`${id} ${cp} IN_PROGRESS 11\\.0 kW`));
    child.stdin.write('stop\n');
    await seen(new RegExp(`${id} ${cp} COMPLETED .* ticket S-\\d+-${cp}: .* reason driver_stop`));
    child.stdin.write('quit\n');
    await seen(new RegExp(`${id} summary: 1 session \\(1 completed, 0 interrupted\\)`));
    expect(await exited).toBe(0);
    expect(rsp.requests.filter((r) => r.driver_id === id).map((r) => r.action)).toEqual(['QUERY', 'REQUEST', 'STOP']);
  });

  it('bus not up yet: says so once and keeps retrying; SIGTERM while waiting prints the summary and exits 0', async () => {
    const id = uniq('driver-early');
    const file = await requestFile(['CP-001']);
    const p = spawnCli(['driver', '--id', id, '--requests', file, '--bus-mqtt', `mqtt://127.0.0.1:${await freePort()}`]);
    procs.push(p);
    await p.waitForLine(/embedded bus not reachable yet, retrying/, 30_000);
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.logs().filter((l) => /not reachable/.test(String(l.msg)))).toHaveLength(1);
    expect(stdoutLines(p).at(-1)).toBe(`${id} summary: 0 sessions (0 completed, 0 interrupted), 0.00 kWh, 0.00 €, 0 rejected, 0 timed out, 0 invalid lines`);
    expect(p.lines.some((l) => /^\s+at /.test(l))).toBe(false);
  });

  it('bad configuration: one line naming the option, exit 2', async () => {
    for (const [args, re] of [
      [['driver', '--requests', 'x.txt'], /--id/],
      [['driver', '--id', 'bad id'], /--id/],
      [['driver', '--id', 'driver-x'], /--requests/],
      [['driver', '--id', 'driver-x', '--requests', path.join(dir, 'missing.txt')], /--requests .*ENOENT/],
      [['driver', '--id', 'driver-x', '--requests', 'x.txt', '--wait-s', '-1'], /--wait-s/],
      [['driver', '--id', 'driver-x', '--requests', 'x.txt', '--kafka-sasl-mechanism', 'plain'], /--kafka-sasl-mechanism/],
    ] as const) {
      const p = spawnCli([...args]);
      procs.push(p);
      expect((await p.exited).code).toBe(2);
      const text = p.lines.filter(Boolean);
      expect(text, text.join('\n')).toHaveLength(1);
      expect(text[0]).toMatch(re);
    }
  });
});

describe('evcharging driver on Kafka (librdkafka mock cluster, bus chosen by KAFKA_BOOTSTRAP)', () => {
  let mock: KafkaMock;
  let dir: string;
  const procs: CliProcess[] = [];
  beforeAll(async () => {
    mock = await startKafkaMock(1);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'driver-kafka-test-'));
  }, 60_000);
  afterAll(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
    await mock?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('two requests in order over Kafka, tickets printed, summary, exit 0', async () => {
    const cpA = `CP-KA-${process.pid}`; const cpB = `CP-KB-${process.pid}`;
    const rsp = await startTestResponder({ kafkaBootstrap: mock.bootstrap }, () => 'charge');
    try {
      const id = `driver-kafka-${process.pid}`;
      const file = path.join(dir, 'requests.txt');
      await fs.writeFile(file, `${cpA}\n${cpB}\n`);
      const d = spawnCli(['driver', '--id', id, '--requests', file, '--wait-s', '0', '--max-charge-s', '1', '--request-timeout-ms', '15000'],
        { env: { KAFKA_BOOTSTRAP: mock.bootstrap.join(',') } });
      procs.push(d);
      const exit = await Promise.race([d.exited, new Promise((r) => setTimeout(() => r('still running'), 90_000))]);
      expect(exit, d.lines.slice(-20).join('\n')).toEqual({ code: 0, signal: null });
      expect(d.logs().find((l) => l.msg === 'driver ready')).toMatchObject({ bus: 'kafka' });
      expect(rsp.requests.filter((r) => r.driver_id === id && r.action === 'REQUEST').map((r) => r.cp_id)).toEqual([cpA, cpB]);
      const out = d.lines.filter((l) => !l.startsWith('{'));
      expect(out).toContain(`${id} last session: no earlier session`);
      expect(out.filter((l) => / COMPLETED .* ticket /.test(l)).map((l) => l.split(' ')[1])).toEqual([cpA, cpB]);
      expect(out.at(-1)).toMatch(new RegExp(`^${id} summary: 2 sessions \\(2 completed, 0 interrupted\\)`));
    } finally {
      await rsp.close();
    }
  }, 120_000);
});
