import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { spawnCli } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig, type Json } from '../helpers/central-rig.js';

/**
 * Bad input everywhere central listens: every HTTP endpoint (malformed JSON, wrong schema,
 * unknown ids, missing or wrong token, oversize, wrong media type) gets a clear 4xx; the bus
 * (garbage, unknown CP, busy CP, duplicate request_id, driver already charging) gets REJECTED
 * updates with a reason or counted drops; central keeps serving throughout. Bad configuration
 * is one line and exit code 2. CP statuses are put on the bus by hand for exact control.
 */
let rig: CentralRig | undefined;
let cpFileDir: string | undefined;
beforeAll(async () => {
  cpFileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'central-cpfile-'));
  const cpFile = path.join(cpFileDir, 'cps.json');
  await fs.writeFile(cpFile, JSON.stringify(['CP-290', { cp_id: 'CP-291', profile: 'ac-22kw', price: 0.31 }]));
  rig = await CentralRig.start({ centralArgs: ['--cp-file', cpFile] });
  for (const id of ['CP-201', 'CP-202']) {
    await rig.announce(id, 'boot-1', 0.4);
    await rig.status(id, 'ACTIVATED', 1);
  }
  await waitFor(async () => (await rig!.cp('CP-202'))?.state === 'ACTIVATED', { timeoutMs: 30_000, what: 'CP-201/202 ACTIVATED' });
}, 120_000);
afterAll(async () => {
  await rig?.stop();
  if (cpFileDir) await fs.rm(cpFileDir, { recursive: true, force: true });
}, 60_000);

const isError = (b: Json) => typeof b.error === 'string' && b.error.length > 0;

describe('central HTTP API: bad input', () => {
  it('answers every bad request with a clear 4xx and keeps serving', async () => {
    const r = rig!;
    const cases: Array<[string, () => Promise<{ status: number; body: Json }>, number]> = [
      ['GET unknown CP', () => r.get('/cp/CP-999'), 404],
      ['GET CP id that is not an id', () => r.get('/cp/a%2Fb%20c'), 404],
      ['GET unknown session', () => r.get('/sessions/S-nope'), 404],
      ['GET unknown route', () => r.get('/nope'), 404],
      ['stop without token', () => r.post('/cp/CP-201/stop', { token: null }), 401],
      ['stop with wrong token', () => r.post('/cp/CP-201/stop', { token: 'wrong-token-123' }), 401],
      ['resume with wrong token', () => r.post('/cp/CP-201/resume', { token: `${r.token}x` }), 401],
      ['stop unknown CP', () => r.post('/cp/CP-999/stop'), 404],
      ['resume unknown CP', () => r.post('/cp/CP-999/resume'), 404],
      ['stop with a malformed JSON body', () => r.post('/cp/CP-201/stop', { body: '{"oops' }), 400],
      ['stop with an oversize body', () => r.post('/cp/CP-201/stop', { body: JSON.stringify({ x: 'y'.repeat(70_000) }) }), 413],
      ['report: malformed JSON', () => r.post('/monitor/report', { token: null, body: '{"v":1,' }), 400],
      ['report: empty JSON body', () => r.post('/monitor/report', { token: null, body: '' }), 400],
      ['report: JSON array', () => r.post('/monitor/report', { token: null, body: '[1,2]' }), 400],
      ['report: missing fields', () => r.post('/monitor/report', { token: null, body: { v: 1, cp_id: 'CP-201' } }), 400],
      ['report: wrong kind', () => r.post('/monitor/report', { token: null, body: { v: 1, cp_id: 'CP-201', monitor_id: 'm', kind: 'explode', engine_ok: true, ts: 1 } }), 400],
      ['report: wrong version', () => r.post('/monitor/report', { token: null, body: { v: 2, cp_id: 'CP-201', monitor_id: 'm', kind: 'heartbeat', engine_ok: true, ts: 1 } }), 400],
      ['report: CP id with a slash', () => r.post('/monitor/report', { token: null, body: { v: 1, cp_id: 'CP/1', monitor_id: 'm', kind: 'heartbeat', engine_ok: true, ts: 1 } }), 400],
      ['report: oversize', () => r.post('/monitor/report', { token: null, body: JSON.stringify({ v: 1, pad: 'x'.repeat(70_000) }) }), 413],
      ['report: not JSON media type', () => r.post('/monitor/report', { token: null, body: 'hello', contentType: 'text/plain' }), 415],
      ['report: no body', () => r.post('/monitor/report', { token: null }), 400],
    ];
    for (const [name, call, status] of cases) {
      const res = await call();
      expect(res.status, name).toBe(status);
      expect(isError(res.body), `${name}: ${JSON.stringify(res.body)}`).toBe(true);
    }
    expect((await r.post('/cp/CP-201/stop', { token: null })).body.error).toMatch(/token/);
    expect((await r.post('/monitor/report', { token: null, body: { v: 1, cp_id: 'CP-201' } })).body.error).toMatch(/monitor_id/);

    // Nothing of that changed anything: CP-201 was never stopped, and central still serves.
    expect((await r.cp('CP-201'))).toMatchObject({ state: 'ACTIVATED', admin_stopped: false });
    const h = await r.health();
    expect(h).toMatchObject({ status: 'healthy', service: 'ev-central' });
    const errors = h.http_errors as Record<string, number>;
    expect(errors['401']).toBeGreaterThanOrEqual(4);
    expect(errors['400']).toBeGreaterThanOrEqual(8);
    expect(errors['413']).toBeGreaterThanOrEqual(2);
    expect(central().child.exitCode).toBeNull();
  }, 60_000);

  it('a report for a CP central has not met is refused (404) and registers nothing', async () => {
    const r = rig!;
    const res = await r.post('/monitor/report', { token: null, body: { v: PROTOCOL_VERSION, cp_id: 'CP-277', monitor_id: 'monitor-CP-277', kind: 'heartbeat', engine_ok: true, ts: Date.now() } });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatch(/unknown CP CP-277: monitor reports do not register CPs/);
    expect(await r.cp('CP-277')).toBeUndefined();
  });

  it('lists the CPs of the --cp-file, DISCONNECTED until they speak, with their profile', async () => {
    const r = rig!;
    expect(await r.cp('CP-290')).toMatchObject({ state: 'DISCONNECTED', profile: null });
    expect(await r.cp('CP-291')).toMatchObject({ state: 'DISCONNECTED', profile: 'ac-22kw', price_eur_kwh: 0.31, max_kw: 22 });
    const q = await r.request('driver-fay', 'REQUEST', 'CP-291');
    expect(await r.update('driver-fay', (u) => u.request_id === q, 'answer')).toMatchObject({ status: 'REJECTED', reason: 'CP disconnected' });
  });
});

describe('central bus input: bad and conflicting requests', () => {
  it('drops garbage (counted), rejects with reasons, answers duplicates the same, and keeps serving', async () => {
    const r = rig!;
    const invalidBefore = Number(((await r.health()).bus_stats as Json).invalid);
    await r.publish('driver.requests', 'driver-zed', 'this is not json');
    await r.publish('driver.requests', 'driver-zed', JSON.stringify({ v: PROTOCOL_VERSION, driver_id: 'driver-zed', action: 'REQUEST', ts: 1 }));
    await r.publish('driver.requests', 'driver-zed', JSON.stringify({ v: PROTOCOL_VERSION, request_id: 'x', driver_id: 'driver-zed', action: 'REQUEST', ts: 1 })); // REQUEST without cp_id
    await r.publish('driver.requests', 'driver-zed', Buffer.alloc(70_000, 0x41).toString());
    await r.publish('cp.status', 'CP-201', '{"type":"status","state":"BOGUS"}');
    await r.publish('cp.telemetry', 'CP-201', '\u0000\u0001garbage');
    await waitFor(async () => Number(((await r.health()).bus_stats as Json).invalid) >= invalidBefore + 6,
      { timeoutMs: 20_000, what: 'six invalid bus messages counted' });
    expect(r.of('driver.updates', 'driver-zed')).toEqual([]);
    expect((await r.cp('CP-201'))!.state).toBe('ACTIVATED');

    // Unknown CP.
    const q1 = await r.request('driver-amy', 'REQUEST', 'CP-999');
    expect(await r.update('driver-amy', (u) => u.request_id === q1, 'answer')).toMatchObject({ status: 'REJECTED', reason: 'unknown CP', cp_id: 'CP-999' });

    // Amy charges at CP-201; Bob asks for the same CP: busy.
    const q2 = await r.request('driver-amy', 'REQUEST', 'CP-201');
    const acc = await r.update('driver-amy', (u) => u.request_id === q2 && u.status === 'ACCEPTED', 'ACCEPTED');
    const q3 = await r.request('driver-bob', 'REQUEST', 'CP-201');
    expect(await r.update('driver-bob', (u) => u.request_id === q3, 'answer')).toMatchObject({ status: 'REJECTED', reason: 'CP busy' });

    // The same request delivered again: the same answer, no second session, no second START_SUPPLY.
    await r.request('driver-amy', 'REQUEST', 'CP-201', q2);
    await waitFor(() => r.of('driver.updates', 'driver-amy').filter((u) => u.request_id === q2).length >= 2, { timeoutMs: 20_000, what: 'the repeated answer' });
    const answers = r.of('driver.updates', 'driver-amy').filter((u) => u.request_id === q2);
    expect(answers.map((u) => [u.status, u.session_id])).toEqual([['ACCEPTED', acc.session_id], ['ACCEPTED', acc.session_id]]);
    expect(r.of('central.commands', 'CP-201').filter((c) => c.command === 'START_SUPPLY')).toHaveLength(1);
    expect((await r.sessions()).filter((s) => s.cp_id === 'CP-201')).toHaveLength(1);
    expect(((await r.health()).counters as Json).duplicate_requests).toBeGreaterThanOrEqual(1);

    // Amy, already charging, asks for another CP.
    const q4 = await r.request('driver-amy', 'REQUEST', 'CP-202');
    expect(await r.update('driver-amy', (u) => u.request_id === q4, 'answer')).toMatchObject({ status: 'REJECTED', reason: 'driver already charging' });
    // A STOP from a driver with no session.
    const q5 = await r.request('driver-cy', 'STOP');
    expect(await r.update('driver-cy', (u) => u.request_id === q5, 'answer')).toMatchObject({ status: 'REJECTED', reason: 'no active session' });

    // Metering for sessions central never started is counted and ignored.
    await r.publish('cp.telemetry', 'CP-202', { v: 1, type: 'telemetry', cp_id: 'CP-202', session_id: 'S-ghost', kw: 5, kwh: 1, eur: 0.4, seq: 1, ts: Date.now() });
    await r.publish('cp.status', 'CP-202', { v: 1, type: 'session_end', cp_id: 'CP-202', session_id: 'S-ghost', kwh: 1, eur: 0.4, price_eur_kwh: 0.4, started_at: 1, ended_at: 2, reason: 'full', ts: Date.now() });
    await waitFor(async () => {
      const c = (await r.health()).counters as Json;
      return Number(c.telemetry_ignored) >= 1 && Number(c.unknown_session_ends) >= 1;
    }, { timeoutMs: 20_000, what: 'ghost telemetry and session_end counted' });
    expect((await r.sessions()).some((s) => s.session_id === 'S-ghost')).toBe(false);

    // Amy's session ends with the CP's record, exactly once.
    const end = { v: 1, type: 'session_end', cp_id: 'CP-201', session_id: acc.session_id, driver_id: 'driver-amy', kwh: 3.2, eur: 1.28, price_eur_kwh: 0.4, started_at: Date.now() - 5000, ended_at: Date.now(), reason: 'full', ts: Date.now() };
    await r.publish('cp.status', 'CP-201', end);
    const fin = await r.update('driver-amy', (u) => u.status === 'COMPLETED', 'COMPLETED');
    expect(fin.ticket).toMatchObject({ kwh: 3.2, eur: 1.28, price_eur_kwh: 0.4, reason: 'full', interrupted: false });
    const h = await r.health();
    expect(h.status).toBe('healthy');
    expect((h.rejected_by_reason as Json)['CP busy']).toBeGreaterThanOrEqual(1);
    expect(central().child.exitCode).toBeNull();

    // The same counts for Prometheus.
    const metrics = await (await fetch(`${r.centralUrl}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
    expect(value(/^central_bus_messages_total\{kind="invalid"\} (\d+)$/m)).toBeGreaterThanOrEqual(6);
    expect(value(/^central_rejected_requests_total\{reason="CP busy"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^central_events_total\{kind="unknown_session_ends"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^central_http_errors_total\{status="401"\} (\d+)$/m)).toBeGreaterThanOrEqual(4);
  }, 90_000);
});

describe('central configuration errors', () => {
  const bad: Array<[string, string[], RegExp]> = [
    ['a port that is not a number', ['--port', 'http'], /--port/],
    ['a CP file that does not exist', ['--cp-file', path.join(os.tmpdir(), 'no-such-dir-central', 'cps.json')], /--cp-file/],
    ['a too short admin token', ['--admin-token', 'abc'], /--admin-token/],
    ['a monitor timeout of zero', ['--monitor-timeout-ms', '0'], /--monitor-timeout-ms/],
    ['a data dir below a file', ['--data-dir', '/dev/null/central'], /--data-dir/],
  ];
  for (const [name, args, re] of bad) {
    it(`${name}: one line naming the option, exit 2`, async () => {
      const p = spawnCli(['central', '--port', '0', '--data-dir', path.join(os.tmpdir(), `central-cfg-${process.pid}`), ...args]);
      const { code } = await p.exited;
      expect(code).toBe(2);
      const text = p.lines.filter((l) => l.trim());
      expect(text, text.join('\n')).toHaveLength(1);
      expect(text[0]).toMatch(re);
    }, 60_000);
  }
  it('a CP file with a bad entry: one line, exit 2', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'central-cfg-'));
    try {
      const f = path.join(dir, 'cps.json');
      await fs.writeFile(f, JSON.stringify(['CP-1', { cp_id: 'bad id!' }]));
      const p = spawnCli(['central', '--port', '0', '--data-dir', path.join(dir, 'data'), '--cp-file', f]);
      expect((await p.exited).code).toBe(2);
      expect(p.lines.filter((l) => l.trim())).toHaveLength(1);
      expect(p.lines.join('\n')).toMatch(/--cp-file .*1\.cp_id/);
    } finally { await fs.rm(dir, { recursive: true, force: true }); }
  }, 60_000);
});

function central() { return rig!.central!; }
