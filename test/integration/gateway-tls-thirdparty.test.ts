import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

describe('gateway TLS listener with mosquitto clients', () => {
  let gw: RunningGateway; let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    gw = await startGateway({ host: '127.0.0.1', mqttPort: 0, httpPort: 0, credentials: null, bufferMax: 100,
      tls: { port: await freePort(), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') } }, silentLogger);
  });
  afterAll(async () => { await gw?.close(); fs.rmSync(dir, { recursive: true, force: true }); });

  it('a status published by mosquitto_pub over TLS (verified against the test CA) reaches mosquitto_sub on the embedded bus', async () => {
    let out = '';
    // This CP's key only: the gateway's heartbeat rides cp.status too, keyed by the gateway.
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), '-t', 'bus/cp.status/CP-TLS', '-v', '-C', '1']);
    sub.stdout.on('data', (d) => { out += d.toString(); });
    try {
      const msg = JSON.stringify({ v: 1, type: 'status', cp_id: 'CP-TLS', state: 'ACTIVATED', seq: 1, ts: Date.now() });
      // The gateway runs in this process, so the client must not block the event loop.
      await waitFor(async () => {
        await promisify(execFile)('mosquitto_pub', ['-h', 'localhost', '-p', String(gw.tlsPort), '--cafile', path.join(dir, 'cert.pem'), '-t', 'cp/CP-TLS/status', '-q', '1', '-m', msg]);
        return out.includes('bus/cp.status/CP-TLS');
      }, { timeoutMs: 20_000, intervalMs: 500, what: 'status over TLS' });
      expect(out).toContain('"state":"ACTIVATED"');
    } finally { sub.kill('SIGKILL'); }
  });
});
