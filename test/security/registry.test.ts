import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { get, request, startCentralProc, type CentralProc } from './central-proc.js';

/**
 * The registry (central --registry-port, HTTPS, admin token): registers a CP and a monitor,
 * returning each secret once (only its scrypt hash is stored, in the credentials file the
 * gateway reads); a registered CP connects to the gateway at once; revoking it disconnects it
 * at once (the gateway follows the file), refuses its reconnect and puts the CP out of service
 * at central; a revoked monitor is refused. Every action is in the audit log.
 */
let dir: string;
let central: CentralProc | undefined;
let gateway: CliProcess | undefined;
let ca: Buffer;
let registryUrl: string;
let mqttPort: number;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sec-registry-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  ca = await fs.readFile(path.join(dir, 'cert.pem'));
  const creds = path.join(dir, 'credentials.json');
  await fs.writeFile(creds, JSON.stringify({ clients: [] }));
  mqttPort = await freePort();
  gateway = spawnCli(['gateway', '--credentials', creds, '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(await freePort())]);
  await gateway.waitForLine(/gateway listening/, 30_000);
  // A port free a moment ago can be taken by another test's process before central binds it: try again on new ports then.
  for (let attempt = 1; ; attempt++) {
    const regPort = await freePort();
    registryUrl = `https://127.0.0.1:${regPort}`;
    try {
      central = await startCentralProc({ cps: ['CP-777'], args: ['--credentials', creds, '--registry-port', String(regPort), '--registry-tls-cert', path.join(dir, 'cert.pem'), '--registry-tls-key', path.join(dir, 'key.pem')] });
      break;
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
    }
  }
}, 90_000);
afterAll(async () => { await gateway?.kill('SIGKILL'); await central?.stop(); await fs.rm(dir, { recursive: true, force: true }); });

function reg(method: string, route: string, body?: unknown, token: string | null = central!.token): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(`${registryUrl}${route}`, {
      method, ca, agent: false,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(data ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      let t = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: t ? JSON.parse(t) : {} }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const connect = (id: string, secret: string) => new Promise<mqtt.MqttClient>((resolve, reject) => {
  const c = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 5_000 });
  c.once('connect', () => resolve(c));
  c.once('error', (err) => { c.end(true); reject(err); });
});

describe('registry: issue and revoke credentials', () => {
  it('needs the admin token and speaks HTTPS only', async () => {
    expect((await reg('GET', '/registry/clients', undefined, null)).status).toBe(401);
    expect((await reg('GET', '/registry/clients', undefined, 'wrong-token-x')).status).toBe(401);
    await expect(fetch(registryUrl.replace('https', 'http') + '/registry/clients')).rejects.toThrow();
  });

  it('registers, connects, revokes: the revoked CP is kicked at once, refused again, and out of service', async () => {
    const cp = await reg('POST', '/registry/clients', { id: 'CP-777', role: 'cp' });
    expect(cp.status).toBe(201);
    expect(cp.body).toMatchObject({ id: 'CP-777', role: 'cp', revoked: false, secret: expect.any(String) });
    const mon = await reg('POST', '/registry/clients', { id: 'monitor-CP-777', role: 'monitor' });
    expect(mon.body.token).toBe(`monitor-CP-777:${mon.body.secret}`);
    // Stored hashed: the file never holds a secret.
    const file = await fs.readFile(path.join(dir, 'credentials.json'), 'utf8');
    expect(file).not.toContain(cp.body.secret);
    expect(file).not.toContain(mon.body.secret);
    // Listed without secrets; an id is issued once.
    const list = await reg('GET', '/registry/clients');
    expect(list.body.clients.map((c: any) => c.id).sort()).toEqual(['CP-777', 'monitor-CP-777']);
    expect(JSON.stringify(list.body)).not.toMatch(/secret|hash|salt/);
    expect((await reg('POST', '/registry/clients', { id: 'CP-777', role: 'cp' })).status).toBe(409);
    expect((await reg('POST', '/registry/clients', { id: 'a/b', role: 'cp' })).status).toBe(400);
    expect((await reg('POST', '/registry/clients', { id: 'root', role: 'admin' })).status).toBe(400);

    // The gateway admits the new identity as soon as it sees the file; the monitor reports.
    const client = await waitFor(() => connect('CP-777', cp.body.secret).catch(() => undefined), { timeoutMs: 15_000, what: 'CP-777 admitted by the gateway' });
    const report = { v: PROTOCOL_VERSION, cp_id: 'CP-777', monitor_id: 'x', kind: 'heartbeat', engine_ok: true, ts: Date.now() };
    expect((await request(central!.url, 'POST', '/monitor/report', report, { authorization: `Bearer ${mon.body.token}` })).status).toBe(202);

    let closed = false;
    client.on('close', () => { closed = true; });
    const rv = await reg('POST', '/registry/clients/CP-777/revoke');
    expect(rv.body).toMatchObject({ id: 'CP-777', revoked: true });
    await waitFor(() => closed, { timeoutMs: 10_000, what: 'revoked CP disconnected by the gateway' });
    client.end(true);
    await expect(connect('CP-777', cp.body.secret)).rejects.toThrow(/Not authorized|Bad username or password|Connection refused/i);
    // Out of service at central: stopped, so no driver request is taken for it.
    expect((await get(central!.url, '/cp/CP-777')).body).toMatchObject({ admin_stopped: true });

    await reg('POST', '/registry/clients/monitor-CP-777/revoke');
    await waitFor(async () => (await request(central!.url, 'POST', '/monitor/report', report, { authorization: `Bearer ${mon.body.token}` })).status === 401, { what: 'revoked monitor refused' });
    // A revoked id is not reissued.
    expect((await reg('POST', '/registry/clients', { id: 'CP-777', role: 'cp' })).status).toBe(409);
  }, 60_000);

  it('every registry action, and every refused one, is in the audit log with who and from where', async () => {
    const a = await get(central!.url, '/audit?action=registry', { authorization: `Bearer ${central!.token}` });
    const rows = a.body.entries.map((e: any) => [e.action, e.outcome, e.params?.id ?? null]);
    expect(rows).toEqual(expect.arrayContaining([
      ['registry.auth', 'refused', null], ['registry.register', 'ok', 'CP-777'], ['registry.register', 'ok', 'monitor-CP-777'],
      ['registry.revoke', 'ok', 'CP-777'], ['registry.revoke', 'ok', 'monitor-CP-777'], ['registry.register', 'refused', 'CP-777'],
    ]));
    for (const e of a.body.entries) expect(e).toMatchObject({ at: expect.any(String), source: '127.0.0.1', identity: expect.stringMatching(/^(admin|anonymous)$/) });
    const stop = (await get(central!.url, '/audit?action=cp.stop', { authorization: `Bearer ${central!.token}` })).body.entries;
    expect(stop).toEqual([]); // the revocation stopped the CP through central itself, not an admin call
  });
});
