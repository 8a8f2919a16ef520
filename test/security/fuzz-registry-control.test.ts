import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../lib/audit.js';
import { silentLogger } from '../../lib/log.js';
import { Network } from '../../network/network.js';
import { startControlServer, type ControlServer } from '../../network/control-server.js';
import { Supervisor } from '../../network/supervisor.js';
import { buildRegistry } from '../../registry/server.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { freePort } from '../helpers/ports.js';

/**
 * Fuzzing of the registry's routes (10,000 generated requests each, through fastify's full
 * request path) and of the control port of `evcharging up` (10,000 generated requests over
 * real HTTP). No generated request carries the right token, so: never a 5xx, the credentials
 * file and the network's components exactly as before, the server still serving.
 */
const RUNS = 10_000;
const TOKEN = 'fuzz-registry-admin-token-0123456789abcdef';
let dir: string;
let registry: FastifyInstance;
let control: ControlServer;
let sup: Supervisor;
let credsBefore: string;
const creds = () => path.join(dir, 'credentials.json');
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-reg-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  fs.writeFileSync(creds(), JSON.stringify({ clients: [] }));
  registry = buildRegistry({ credentialsFile: creds(), adminToken: TOKEN, log: silentLogger, tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }, audit: new AuditLog({ file: path.join(dir, 'audit.jsonl') }) });
  await registry.ready();
  const ok = await registry.inject({ method: 'POST', url: '/registry/clients', headers: { authorization: `Bearer ${TOKEN}` }, payload: { id: 'CP-001', role: 'cp' } });
  expect(ok.statusCode).toBe(201);
  credsBefore = fs.readFileSync(creds(), 'utf8');

  sup = new Supervisor({ cwd: REPO_ROOT, logDir: path.join(dir, 'logs'), log: silentLogger, echoLevel: Infinity, stopTimeoutMs: 5_000, entry: ['-e', 'setInterval(() => {}, 1000)'] });
  const net = new Network({ host: '127.0.0.1', gatewayMqttPort: await freePort(), gatewayHttpPort: await freePort(), centralPort: await freePort(), dataDir: dir, adminToken: 't', speed: 60, driverWaitS: 1, maxChargeS: 8 },
    sup, { healthBasePort: 0, log: silentLogger, startTimeoutMs: 10_000, reservedPorts: [] });
  control = await startControlServer(net, () => ({}), '127.0.0.1', 0, silentLogger, { token: TOKEN });
});
afterAll(async () => { await registry?.close(); await control?.close(); await sup?.stopAll(); fs.rmSync(dir, { recursive: true, force: true }); });

const text = fc.oneof(fc.string({ maxLength: 120 }), fc.string({ unit: 'binary', maxLength: 60 }), fc.constantFrom('', 'CP-001', 'admin', '../x', '%00', 'a'.repeat(3000)));
const auth = fc.option(fc.oneof(text, text.map((t) => `Bearer ${t}`), fc.constantFrom(`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `bearer  ${TOKEN} extra`, 'Basic YTpi')));
const body = fc.oneof(fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'), text,
  fc.record({ id: fc.oneof(text, fc.constantFrom('CP-001', 'CP-009')), role: fc.oneof(text, fc.constantFrom('cp', 'driver', 'monitor', 'admin')), cp_id: fc.option(text) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.record({ id: text, name: text, kw: fc.double(), profile: text }, { requiredKeys: [] }).map((v) => JSON.stringify(v)));
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH');
const seg = fc.oneof(fc.constantFrom('CP-001', 'CP-009', ''), text.map(encodeURIComponent));

describe('fuzz: the registry', () => {
  const routes: Array<[string, (s: string) => string]> = [
    ['POST /registry/clients', () => '/registry/clients'], ['GET /registry/clients', () => '/registry/clients'],
    ['GET /registry/clients/:id', (s) => `/registry/clients/${s}`], ['POST /registry/clients/:id/revoke', (s) => `/registry/clients/${s}/revoke`],
  ];
  for (const [name, route] of routes) {
    it(`${name}: ${RUNS} generated requests, never a 5xx, nothing issued or revoked`, async () => {
      const m0 = name.split(' ')[0]!;
      await fc.assert(fc.asyncProperty(seg, auth, body, fc.constantFrom('application/json', 'text/plain', ''), fc.boolean(), method, async (s, a, b, ct, anyMethod, m) => {
        const res = await registry.inject({ method: (anyMethod ? m : m0) as 'GET', url: route(s), headers: { ...(a !== null ? { authorization: a } : {}), ...(ct ? { 'content-type': ct } : {}) }, payload: b });
        expect(res.statusCode).toBeLessThan(500);
      }), { numRuns: RUNS });
      expect(fs.readFileSync(creds(), 'utf8')).toBe(credsBefore);
    }, 300_000);
  }
});

describe('fuzz: the control port', () => {
  it(`${RUNS} generated requests over real HTTP: never a 5xx, no component started, crashed or restarted`, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const send = (m: string, p: string, a: string | null, b: string) => new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: control.port, method: m, path: p, agent, headers: { ...(a !== null ? { authorization: a.replace(/[^\t\x20-\x7e]/g, '') } : {}), 'content-type': 'application/json' } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
      req.on('error', reject);
      req.end(b);
    });
    const paths = fc.oneof(fc.constantFrom('/status', '/cp', '/driver', '/crash', '/restart', '/'), seg.map((s) => `/${s}`));
    await fc.assert(fc.asyncProperty(method, paths, auth, body, async (m, p, a, b) => {
      const status = await send(m, p, a, b).catch(() => 0);
      expect(status === 401 || status === 404 || status === 400 || status === 413 || status === 0).toBe(true);
    }), { numRuns: RUNS });
    agent.destroy();
    expect(sup.status()).toEqual([]);
    const ok = await send('GET', '/status', `Bearer ${TOKEN}`, '');
    expect(ok).toBe(200);
  }, 300_000);
});
