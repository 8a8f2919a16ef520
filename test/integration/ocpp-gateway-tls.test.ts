import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRpcClient, type RpcClient } from '../../lib/ocpp.js';
import { OcppNetwork } from '../helpers/ocpp-network.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Security profile 2 at the gateway: OCPP-J over TLS (a certificate made with openssl) with
 * HTTP Basic auth. An ocpp-rpc strict client that trusts the certificate boots; a wrong password
 * is refused over TLS too. And the project's own firmware (`evcharging cp --ocpp wss://…
 * --ocpp-ca … --secret …`) boots at the gateway over TLS and is announced on the bus.
 */
let dir = '';
let net: OcppNetwork | undefined;
let cp: CliProcess | undefined;
const clients: RpcClient[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ocpp-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  net = await OcppNetwork.start({ cps: { 'CP-TLS1': 'tls-secret-1', 'CP-TLS2': 'tls-secret-2' }, tls: { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') }, central: false });
}, 120_000);
afterAll(async () => {
  await cp?.kill('SIGKILL');
  for (const c of clients) await c.close({ force: true }).catch(() => undefined);
  await net?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

const wss = () => `wss://127.0.0.1:${net!.ports.ocppTls}/ocpp`;
const ca = () => fs.readFileSync(path.join(dir, 'cert.pem'));

describe('gateway OCPP over TLS (security profile 2)', () => {
  it('admits a charge point with its password over TLS and refuses a wrong one', async () => {
    const good = newRpcClient({ endpoint: wss(), identity: 'CP-TLS1', password: 'tls-secret-1', protocols: ['ocpp2.0.1'], strictMode: true, reconnect: false, wsOpts: { ca: ca(), minVersion: 'TLSv1.2' } });
    clients.push(good);
    await good.connect();
    const boot = await good.call('BootNotification', { reason: 'PowerUp', chargingStation: { model: 'TlsModel', vendorName: 'TlsVendor' } }) as { status: string };
    expect(boot.status).toBe('Accepted');
    await waitFor(() => net!.of('cp.status', 'CP-TLS1').some((m) => m.type === 'announce'), { timeoutMs: 10_000, what: 'announce on the bus' });

    const bad = newRpcClient({ endpoint: wss(), identity: 'CP-TLS2', password: 'wrong', protocols: ['ocpp2.0.1'], strictMode: true, reconnect: false, wsOpts: { ca: ca() } });
    clients.push(bad);
    await expect(bad.connect()).rejects.toThrow(/Unauthorized|401/);
    // A client that does not trust the certificate does not get through at all.
    const untrusting = newRpcClient({ endpoint: wss(), identity: 'CP-TLS2', password: 'tls-secret-2', protocols: ['ocpp2.0.1'], reconnect: false });
    clients.push(untrusting);
    await expect(untrusting.connect()).rejects.toThrow();
  }, 30_000);

  it('the firmware boots at the gateway over wss with its secret', async () => {
    const healthPort = await freePort();
    cp = spawnCli(['cp', '--id', 'CP-TLS2', '--ocpp', wss(), '--ocpp-version', '1.6', '--ocpp-ca', path.join(dir, 'cert.pem'), '--secret', 'tls-secret-2',
      '--health-port', String(healthPort), '--health-host', '127.0.0.1']);
    await waitFor(() => net!.of('cp.status', 'CP-TLS2').some((m) => m.type === 'status' && m.state === 'ACTIVATED'), { timeoutMs: 30_000, what: `CP-TLS2 ACTIVATED on the bus\n${cp.lines.slice(-5).join('\n')}` });
    expect(net!.of('cp.status', 'CP-TLS2').find((m) => m.type === 'announce')).toMatchObject({ profile: { hal: 'ocpp', name: 'evcharging ac-22kw' } });
  }, 60_000);
});
