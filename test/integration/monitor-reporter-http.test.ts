import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { createCentralReporter } from '../../monitor/central-reporter.js';
import { PROTOCOL_VERSION, type MonitorReportMsg } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';

/** The monitor's edge to central over real sockets: reports share a kept-alive connection and every way it can break is reported, never thrown. */
const report = (): MonitorReportMsg => ({ v: PROTOCOL_VERSION, cp_id: 'CP-001', monitor_id: 'mon-1', kind: 'heartbeat', engine_ok: true, ts: Date.now() });

let server: http.Server | undefined;
afterEach(async () => { server?.closeAllConnections(); await new Promise((r) => server?.close(r) ?? r(undefined)); server = undefined; });

async function serve(handler: http.RequestListener, opts: { keepAliveTimeout?: number } = {}) {
  server = http.createServer(handler);
  if (opts.keepAliveTimeout) server.keepAliveTimeout = opts.keepAliveTimeout;
  const stats = { connections: 0, closed: 0, bodies: [] as string[] };
  server.on('connection', (s) => { stats.connections++; s.on('close', () => stats.closed++); });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stats };
}
const accept: http.RequestListener = (req, res) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ ok: true, got: JSON.parse(b).kind })); }); };

describe('central reporter over HTTP', () => {
  it('sends every report over one kept-alive connection', async () => {
    const { url, stats } = await serve(accept);
    const r = createCentralReporter({ centralUrl: url, timeoutMs: 2_000, log: silentLogger, cpId: 'CP-001' });
    for (let i = 0; i < 20; i++) expect(await r.send(report())).toEqual({ ok: true });
    expect(r.counters).toMatchObject({ sent: 20, accepted: 20, unreachable: 0, rejected: 0 });
    expect(stats.connections).toBe(1);
  });

  it('a kept-alive connection central closed meanwhile is not taken for central being down', async () => {
    const { url, stats } = await serve(accept, { keepAliveTimeout: 100 });
    const r = createCentralReporter({ centralUrl: url, timeoutMs: 2_000, log: silentLogger, cpId: 'CP-001' });
    expect(await r.send(report())).toEqual({ ok: true });
    await waitFor(() => stats.closed === 1, { timeoutMs: 5_000, what: 'central closes the idle connection' });
    expect(await r.send(report())).toEqual({ ok: true });
    expect(r.counters).toMatchObject({ accepted: 2, unreachable: 0 });
    expect(r.down).toBe(false);
  });

  it('a refusal is counted with its status and the start of its body; a huge body is not kept whole', async () => {
    const { url } = await serve((req, res) => { req.resume(); req.on('end', () => { res.statusCode = 403; res.end(`forbidden ${'x'.repeat(1_000_000)}`); }); });
    const r = createCentralReporter({ centralUrl: url, timeoutMs: 2_000, log: silentLogger, cpId: 'CP-001' });
    const out = await r.send(report());
    expect(out).toMatchObject({ ok: false, unreachable: false });
    expect(out.ok === false && out.reason).toMatch(/^HTTP 403 forbidden x+$/);
    expect(out.ok === false && out.reason.length).toBeLessThan(300);
    expect(r.counters).toMatchObject({ rejected: 1 });
  });

  it('central that never answers, or is not there: unreachable with a reason, then reachable again', async () => {
    const { url } = await serve(() => { /* never answers */ });
    const r = createCentralReporter({ centralUrl: url, timeoutMs: 300, log: silentLogger, cpId: 'CP-001' });
    const silent = await r.send(report());
    expect(silent).toEqual({ ok: false, unreachable: true, reason: expect.stringMatching(/no answer within 300 ms/) });
    expect(r.down).toBe(true);
    const gone = createCentralReporter({ centralUrl: 'http://127.0.0.1:1', timeoutMs: 1_000, log: silentLogger, cpId: 'CP-001' });
    expect(await gone.send(report())).toEqual({ ok: false, unreachable: true, reason: expect.stringMatching(/ECONNREFUSED/) });
  });
});
