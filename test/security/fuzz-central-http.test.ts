import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../lib/audit.js';
import { silentLogger } from '../../lib/log.js';
import { Controller } from '../../central/controller.js';
import { buildHttp } from '../../central/http.js';
import { serializeState } from '../../central/state.js';
import { Store } from '../../central/store.js';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import type { FastifyInstance } from 'fastify';

/**
 * Property-based fuzzing of every route of central's HTTP API (fast-check, 10,000 generated
 * requests per route, through fastify's full request path: routing, body parser, hooks,
 * schema checks, handlers). After each: an answer with a status below 500 and a JSON error for
 * every 4xx; after all: the durable state and the journal byte for byte as before (no input
 * was valid: the admin token is never guessed, and no generated report names a known CP with
 * credentials), central still serving, memory bounded.
 */
const RUNS = 10_000;
let dir: string;
let app: FastifyInstance;
let store: Store;
let ctl: Controller;
let stateBefore: string;
// A full collection before measuring: the heap a process keeps after a burst of garbage is not a leak.
v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;
const liveHeapMb = () => { gc(); return process.memoryUsage().heapUsed / 2 ** 20; };
let heapBefore = 0;
const TOKEN = 'fuzz-admin-token-that-no-generator-finds-0123456789';
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fuzz-http-'));
  ({ store } = await Store.open(dir));
  await store.append([{ t: 'cp_seen', cp_id: 'CP-001', source: 'file', at: 1 }, { t: 'cp_seen', cp_id: 'CP-002', source: 'file', at: 1 }]);
  ctl = new Controller(store, async () => undefined, silentLogger, { monitorTimeoutMs: 3000, endGraceMs: 5000, startConfirmMs: 30_000, maxCps: 10 });
  const audit = new AuditLog({ file: path.join(dir, 'audit.jsonl') });
  const { createMonitorAuth } = await import('../../central/monitor-auth.js');
  app = buildHttp(ctl, { health: () => ({ producer: 'connected', consumer: 'connected' }), stats: () => ({ published: 0, received: 0, invalid: 0 }) }, silentLogger, {
    adminToken: TOKEN, busKind: 'embedded', audit, journalFailure: () => store.failure, durable: () => store.durable(),
    monitorAuth: createMonitorAuth(() => undefined), // credentials mode with nobody registered: no report is valid
  });
  await app.ready();
  await store.durable();
  stateBefore = JSON.stringify(serializeState(store.state));
  heapBefore = liveHeapMb();
});
afterAll(async () => { await app?.close(); await store?.close(); await fs.rm(dir, { recursive: true, force: true }); });

const anyText = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 100 }), fc.constantFrom('', '../../etc/passwd', '%00', '%2F..%2F', 'CP-001', 'CP-002', '\u0000', 'a'.repeat(5000)));
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), anyText,
  fc.record({ v: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.integer()), cp_id: fc.oneof(fc.constantFrom('CP-001', 'CP-002'), anyText), monitor_id: anyText,
    kind: fc.constantFrom('heartbeat', 'fault', 'recovered', 'x'), engine_ok: fc.oneof(fc.boolean(), fc.integer()), ts: fc.oneof(fc.nat(), fc.double()), reason: fc.option(anyText) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)));
const headers = fc.record({
  authorization: fc.option(fc.oneof(anyText, anyText.map((t) => `Bearer ${t}`), fc.constantFrom(`Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, 'Bearer monitor-CP-001:secret', 'Basic YWRtaW46YWRtaW4='))),
  'content-type': fc.option(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'multipart/form-data', '')),
}, { requiredKeys: [] });
const segment = fc.oneof(fc.constantFrom('CP-001', 'CP-002', 'S-1', ''), anyText.map(encodeURIComponent));
const query = fc.option(fc.dictionary(fc.constantFrom('action', 'identity', 'limit', 'x'), anyText.map(encodeURIComponent), { maxKeys: 3 }).map((d) => `?${Object.entries(d).map(([k, v]) => `${k}=${v}`).join('&')}`));

const ROUTES: Array<[string, string, (seg: string) => string, boolean]> = [
  ['GET', '/health', () => '/health', false], ['GET', '/metrics', () => '/metrics', false], ['GET', '/cp', () => '/cp', false],
  ['GET', '/cp/:id', (s) => `/cp/${s}`, false], ['GET', '/sessions', () => '/sessions', false], ['GET', '/sessions/:id', (s) => `/sessions/${s}`, false],
  ['GET', '/tickets', () => '/tickets', false], ['GET', '/', () => '/', false], ['GET', '/audit', () => '/audit', false],
  ['POST', '/cp/:id/stop', (s) => `/cp/${s}/stop`, true], ['POST', '/cp/:id/resume', (s) => `/cp/${s}/resume`, true], ['POST', '/monitor/report', () => '/monitor/report', true],
  ['GET', '/weather', () => '/weather', false], ['GET', '/dashboard/uplot.js', () => '/dashboard/uplot.js', false], ['GET', '/favicon.ico', () => '/favicon.ico', false],
  ['POST', '/cp/stop-all', () => '/cp/stop-all', true], ['POST', '/cp/resume-all', () => '/cp/resume-all', true], ['POST', '/weather/report', () => '/weather/report', true],
  ['ANY', 'any method, any path', (s) => `/${s}/${s}`, true],
];

describe('fuzz: every route of central HTTP', () => {
  for (const [method, name, route, withBody] of ROUTES) {
    it(`${method} ${name}: ${RUNS} generated requests, never a 5xx, errors are JSON`, async () => {
      await fc.assert(fc.asyncProperty(segment, query, headers, anyJson, fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'), async (seg, q, h, body, m) => {
        const hs = Object.fromEntries(Object.entries(h).filter(([, v]) => v !== null && v !== undefined)) as Record<string, string>;
        const res = await app.inject({ method: (method === 'ANY' ? m : method) as 'GET', url: `${route(seg)}${q ?? ''}`, headers: hs, ...(withBody ? { payload: body } : {}) });
        expect(res.statusCode, `${method} ${route(seg)} → ${res.statusCode} ${res.body.slice(0, 200)}`).toBeLessThan(500);
        if (res.statusCode >= 400 && res.statusCode !== 405 && (method !== 'ANY' || m !== 'HEAD')) expect(() => JSON.parse(res.body).error).not.toThrow();
      }), { numRuns: RUNS });
    }, 300_000);
  }

  it('afterwards: the durable state and journal are as before, central serves, memory is bounded', async () => {
    await store.durable();
    expect(JSON.stringify(serializeState(store.state))).toBe(stateBefore);
    const h = await app.inject({ method: 'GET', url: '/health' });
    expect(h.statusCode).toBe(200);
    expect(h.json().status).toBe('healthy');
    // Bounded: what is still live after all those requests (audit log in memory is capped, counters are maps of statuses).
    expect(liveHeapMb() - heapBefore).toBeLessThan(100);
    // A valid request still works: the admin token stops CP-001.
    const ok = await app.inject({ method: 'POST', url: '/cp/CP-001/stop', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.statusCode).toBe(200);
    expect(store.state.cps.get('CP-001')!.admin_stopped).toBe(true);
  });
});
