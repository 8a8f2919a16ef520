import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type mqtt from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { connect, rawSocket, startGw, statusMsg, type Gw } from './harness.js';

const sockets: net.Socket[] = [];
const clients: mqtt.MqttClient[] = [];
let gw: Gw | undefined;
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of clients.splice(0)) c.end(true);
  await gw?.stop(); gw = undefined;
});
afterAll(async () => { await gw?.stop(); });

const closedPromise = (s: net.Socket) => new Promise<void>((r) => { if (s.destroyed) r(); else s.once('close', () => r()); });

/** Writes `total` bytes in 64 KiB chunks while the peer keeps the connection; resolves with what was written. */
async function pour(s: net.Socket, total: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  let sent = 0;
  while (sent < total && !s.destroyed) {
    if (!s.write(chunk)) await new Promise<void>((r) => { s.once('drain', r); s.once('close', r); });
    sent += chunk.length;
  }
  return sent;
}

describe('MQTT edge limits (a real gateway process)', () => {
  it('4 sockets announcing a huge remaining length before CONNECT are closed at once; RSS does not grow', async () => {
    gw = await startGw([{ id: 'CP-001', role: 'cp' }]);
    const before = gw.rssMb();
    const attackers = await Promise.all([0, 1, 2, 3].map(() => rawSocket(gw!.mqttPort)));
    sockets.push(...attackers);
    // CONNECT fixed header with remaining length 268,435,455 (the MQTT maximum), then 64 MB of body each.
    const poured = await Promise.all(attackers.map((s) => { s.on('error', () => undefined); s.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])); return pour(s, 64 * 1024 * 1024); }));
    await Promise.all(attackers.map(closedPromise));
    // The gateway closed them long before they could deliver their 64 MB.
    for (const n of poured) expect(n).toBeLessThan(32 * 1024 * 1024);
    expect(gw.rssMb() - before).toBeLessThan(64);
    expect(await gw.metric('gateway_refused_connections_total{reason="packet_too_large"}')).toBe(4);
    // And it keeps serving.
    const cp = await connect(gw.url, { username: 'CP-001', clientId: 'CP-001' }); clients.push(cp);
    await cp.publishAsync('cp/CP-001/status', statusMsg('CP-001', 1), { qos: 1 });
  }, 120_000);

  it('a packet over --max-packet-bytes after CONNECT closes that connection only; others keep going', async () => {
    gw = await startGw([{ id: 'CP-001', role: 'cp' }, { id: 'CP-002', role: 'cp' }]);
    const big = await connect(gw.url, { username: 'CP-001', clientId: 'CP-001' }); clients.push(big);
    const ok = await connect(gw.url, { username: 'CP-002', clientId: 'CP-002' }); clients.push(ok);
    const closed = new Promise<void>((r) => big.once('close', () => r()));
    big.publish('cp/CP-001/telemetry', Buffer.alloc(1024 * 1024, 0x41));
    await closed;
    expect(await gw.metric('gateway_refused_connections_total{reason="packet_too_large"}')).toBe(1);
    await ok.publishAsync('cp/CP-002/status', statusMsg('CP-002', 1), { qos: 1 });
    expect(ok.connected).toBe(true);
  }, 120_000);

  it('idle sockets from one address cannot exhaust the gateway\'s descriptors: a CP still connects', async () => {
    // 1,024 descriptors for the gateway; the attacker (127.0.0.2) opens 1,500 sockets that never send CONNECT.
    gw = await startGw([{ id: 'CP-001', role: 'cp' }], [], { nofile: 1024 });
    const tries = await Promise.allSettled(Array.from({ length: 1500 }, () => rawSocket(gw!.mqttPort, '127.0.0.2')));
    for (const t of tries) if (t.status === 'fulfilled') { sockets.push(t.value); t.value.on('error', () => undefined); }
    await waitFor(async () => (await gw!.metric('gateway_refused_connections_total{reason="pending_per_address"}')) > 0, { what: 'pending cap reached' });
    const cp = await connect(gw.url, { username: 'CP-001', clientId: 'CP-001' }); clients.push(cp);
    await cp.publishAsync('cp/CP-001/status', statusMsg('CP-001', 1), { qos: 1 });
    const h = await gw.health();
    expect(h.status).toBe('ok');
    expect((h.edge as { pending: number }).pending).toBeLessThanOrEqual(512);
    // The idle ones are closed by the CONNECT timeout (10 s by default).
    await waitFor(async () => ((await gw!.health()).edge as { pending: number }).pending === 0, { timeoutMs: 25_000, what: 'no pending connections left' });
  }, 120_000);

  it('a storm of refused connections from one credential writes a bounded log', async () => {
    gw = await startGw([{ id: 'CP-001', role: 'cp' }]);
    const linesBefore = gw.proc.lines.length;
    // A few wrong secrets (each costs a scrypt), many unknown usernames, many client ids not bound to the credential.
    for (let i = 0; i < 5; i++) {
      await connect(gw.url, { username: 'CP-001', clientId: 'CP-001', password: 'wrong' }).then((c) => c.end(true), () => undefined);
    }
    for (let i = 0; i < 100; i++) {
      await connect(gw.url, { username: 'CP-404', clientId: 'CP-404', password: 'x' }).then((c) => c.end(true), () => undefined);
      await connect(gw.url, { username: 'CP-001', clientId: `CP-${i}` }).then((c) => c.end(true), () => undefined);
    }
    // And 100 take-overs of the CP's own connection (the same credential reconnecting in a loop).
    for (let i = 0; i < 100; i++) {
      const c = await connect(gw.url, { username: 'CP-001', clientId: 'CP-001', password: 'secret-CP-001' });
      c.end(true);
    }
    await waitFor(async () => (await gw!.metric('gateway_auth_failed_total')) >= 205, { what: 'refusals counted' });
    const written = gw.proc.lines.slice(linesBefore);
    expect(written.length).toBeLessThan(40);
    expect(written.join('\n').length).toBeLessThan(16 * 1024);
  }, 120_000);

  it('MQTT 5: a clear refusal (CONNACK "unsupported protocol version", one log line) and no docs claiming it', async () => {
    gw = await startGw('dev');
    await expect(connect(gw.url, { clientId: 'v5-client', protocolVersion: 5 })).rejects.toThrow(/protocol/i);
    await gw.proc.waitForLine(/MQTT 5 client refused/);
    expect(await gw.metric('gateway_refused_connections_total{reason="mqtt5"}')).toBe(1);
    for (const f of ['README.md', 'docs/gateway.md']) {
      const text = fs.readFileSync(path.join(REPO_ROOT, f), 'utf8');
      expect(text, f).not.toMatch(/MQTT 3\.1\.1 ?(\/|and) ?5/);
    }
    // MQTT 3.1.1 is served.
    const c = await connect(gw.url, { clientId: 'v4-client' }); clients.push(c);
  }, 120_000);
});
