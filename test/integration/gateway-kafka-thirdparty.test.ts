import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { hashSecret, loadCredentials, upsertCredential } from '../../registry/credentials.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { waitFor } from '../helpers/wait.js';

/** A child process whose stdout is collected; the gateway runs in this process, so nothing here may block. */
function run(cmd: string, args: string[], input?: string) {
  const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let out = ''; let err = '';
  child.stdout!.on('data', (d) => { out += d.toString(); });
  child.stderr!.on('data', (d) => { err += d.toString(); });
  if (input !== undefined) child.stdin!.end(input);
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, err: () => err, done };
}

describe('third-party clients on both sides: mosquitto clients on MQTT, kcat on Kafka', () => {
  let mock: KafkaMock; let gw: RunningGateway; let dir: string;
  const children: ChildProcess[] = [];
  const cpId = `CP-K${process.pid % 10000}`;
  const auth = ['-u', cpId, '-P', `secret-${cpId}`];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-kcat-'));
    const file = path.join(dir, 'credentials.json');
    upsertCredential(file, hashSecret(cpId, 'cp', `secret-${cpId}`));
    mock = await startKafkaMock(1);
    gw = await startGateway({ host: '127.0.0.1', mqttPort: 0, httpPort: 0, credentials: loadCredentials(file), bufferMax: 1000,
      kafka: { kafkaBootstrap: mock.bootstrap, mqttUrl: 'mqtt://unused:1', clientId: 'gw-kcat' } }, silentLogger);
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await gw?.close(); await mock?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kcat -C reads, keyed by CP, the status mosquitto_pub published through the gateway', async () => {
    const consumer = run('kcat', ['-C', '-b', mock.bootstrap.join(','), '-t', 'cp.status', '-o', 'beginning', '-u', '-f', '%k\t%s\n']);
    children.push(consumer.child);
    const status = { v: 1, type: 'status', cp_id: cpId, state: 'ACTIVATED', seq: 41, ts: Date.now() };
    const pub = run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), ...auth, '-i', cpId, '-t', `cp/${cpId}/status`, '-q', '1', '-m', JSON.stringify(status)]);
    expect(await pub.done).toBe(0);
    const line = await waitFor(() => consumer.out().split('\n').find((l) => l.startsWith(`${cpId}\t`)), { timeoutMs: 30_000, what: `kcat output; so far: ${consumer.out()}${consumer.err()}` });
    expect(JSON.parse(line.slice(line.indexOf('\t') + 1))).toMatchObject({ cp_id: cpId, state: 'ACTIVATED', seq: 41, source: 'engine' });
  });

  it('a command produced with kcat -P to central.commands reaches mosquitto_sub on that CP\'s command topic', async () => {
    const sub = run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.mqttPort), ...auth, '-i', cpId, '-t', `cp/${cpId}/cmd`, '-q', '1', '-C', '1']);
    children.push(sub.child);
    const cmd = { v: 1, command_id: `kcat-${Date.now()}`, cp_id: cpId, command: 'STOP_CP', ts: Date.now() };
    // The gateway's consumer joins its group asynchronously: produce until the command arrives.
    await waitFor(async () => {
      const p = run('kcat', ['-P', '-b', mock.bootstrap.join(','), '-t', 'central.commands', '-k', cpId], `${JSON.stringify(cmd)}\n`);
      if ((await p.done) !== 0) throw new Error(`kcat -P failed: ${p.err()}`);
      return waitFor(() => sub.out().includes(cmd.command_id), { timeoutMs: 3_000 }).catch(() => false);
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'command at mosquitto_sub' });
    expect(JSON.parse(sub.out().trim().split('\n')[0]!)).toMatchObject({ command_id: cmd.command_id, cp_id: cpId, command: 'STOP_CP' });
    expect(await sub.done).toBe(0); // -C 1: exactly one message, then a clean exit
  });
});
