import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret, upsertCredential } from '../../registry/credentials.js';
import { encode, type CentralCommandMsg } from '../../protocol/index.js';
import { readTopics, startKafkaMock, type KafkaMock, type KafkaRecord } from '../helpers/kafka-mock.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const increasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

/** Real firmware processes → a real `evcharging gateway` process (with credentials) → the kcat mock Kafka cluster, and back. */
describe('firmware engines through the gateway process to Kafka', () => {
  let mock: KafkaMock; let gw: CliProcess; let dir: string; let producer: Producer;
  let reader: Awaited<ReturnType<typeof readTopics>>;
  const engines = new Map<string, CliProcess>();
  const ids = [1, 2, 3].map((n) => `CP-F${process.pid % 10000}-${n}`);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-fw-'));
    const creds = path.join(dir, 'credentials.json');
    for (const id of ids) upsertCredential(creds, hashSecret(id, 'cp', `s-${id}`));
    mock = await startKafkaMock(1);
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    gw = spawnCli(['gateway', '--credentials', creds, '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort),
      '--kafka-bootstrap', mock.bootstrap.join(',')]);
    await gw.waitForLine(/"gateway listening"/, 30_000);
    reader = await readTopics(mock.bootstrap, ['cp.status', 'cp.telemetry']);
    for (const id of ids) {
      engines.set(id, spawnCli(['cp', '--id', id, '--secret', `s-${id}`, '--health-port', String(await freePort()), '--health-host', '127.0.0.1',
        '--mqtt', `mqtt://127.0.0.1:${mqttPort}`]));
    }
    producer = new Kafka({ brokers: mock.bootstrap, clientId: 'central-test', logLevel: logLevel.NOTHING })
      .producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  });
  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    await reader?.stop();
    await Promise.all([...engines.values()].map((e) => e.kill('SIGKILL')));
    await gw?.kill('SIGKILL');
    await mock?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const acks = (commandId: string) => reader.of('cp.status').filter((r) => r.value.type === 'ack' && r.value.command_id === commandId);
  /** Produces a command keyed by its CP until its ack is on cp.status (the gateway's consumer joins its group asynchronously). */
  async function command(cpId: string, command: CentralCommandMsg['command'], extra: Partial<CentralCommandMsg> = {}): Promise<KafkaRecord> {
    const msg: CentralCommandMsg = { v: 1, command_id: `k-${command}-${cpId}-${Date.now()}`, cp_id: cpId, command, ts: Date.now(), ...extra };
    return waitFor(async () => {
      await producer.send({ topic: 'central.commands', messages: [{ key: cpId, value: encode(msg) }] });
      return waitFor(() => acks(msg.command_id)[0], { timeoutMs: 3_000 }).catch(() => undefined);
    }, { timeoutMs: 60_000, intervalMs: 100, what: `ack of ${command} from ${cpId}` });
  }

  it('status and telemetry of three engines reach Kafka keyed by CP in per-CP order; a command reaches its CP and no other', async () => {
    for (const id of ids) {
      await waitFor(() => reader.of('cp.status', id).some((r) => r.value.type === 'status' && r.value.state === 'ACTIVATED'),
        { timeoutMs: 45_000, what: `${id} ACTIVATED on Kafka` });
      expect(reader.of('cp.status', id).some((r) => r.value.type === 'announce')).toBe(true);
    }

    // Two CPs supply; the third does not.
    for (const id of ids.slice(0, 2)) {
      const ack = await command(id, 'START_SUPPLY', { session_id: `S-${id}`, driver_id: 'driver-test' });
      expect(ack.key).toBe(id);
      expect(ack.value).toMatchObject({ cp_id: id, ok: true, state: 'SUPPLYING' });
    }
    for (const id of ids.slice(0, 2)) {
      await waitFor(() => reader.of('cp.telemetry', id).length >= 4, { timeoutMs: 30_000, what: `telemetry of ${id}` });
    }

    // STOP_CP to the third: its ack and STOPPED status come back under its key, nobody else acts on it.
    const target = ids[2]!;
    const ack = await command(target, 'STOP_CP');
    expect(ack.value).toMatchObject({ cp_id: target, ok: true, state: 'STOPPED' });
    await waitFor(() => reader.of('cp.status', target).some((r) => r.value.type === 'status' && r.value.state === 'STOPPED'), { timeoutMs: 20_000, what: 'STOPPED' });
    const commandId = ack.value.command_id as string;
    expect(acks(commandId).every((r) => r.key === target)).toBe(true);
    for (const id of ids.slice(0, 2)) {
      expect(engines.get(id)!.lines.some((l) => l.includes(commandId))).toBe(false);
      expect(reader.of('cp.status', id).some((r) => r.value.type === 'status' && r.value.state === 'STOPPED')).toBe(false);
    }
    expect(reader.of('cp.telemetry', target)).toEqual([]);

    // Every record is keyed by the CP it speaks for (the gateway's heartbeat by the gateway); per CP, status and telemetry seq only grow.
    for (const r of reader.records) expect(r.key).toBe(r.value.type === 'gateway' ? r.value.gateway_id : r.value.cp_id);
    expect(reader.records.some((r) => r.value.type === 'gateway')).toBe(true);
    for (const id of ids) {
      const statuses = reader.of('cp.status', id).filter((r) => r.value.type === 'status').map((r) => r.value.seq as number);
      expect(statuses.length).toBeGreaterThanOrEqual(2);
      expect(increasing(statuses), `${id} status seq ${statuses.join(',')}`).toBe(true);
      const telemetry = reader.of('cp.telemetry', id).map((r) => r.value.seq as number);
      expect(increasing(telemetry), `${id} telemetry seq ${telemetry.join(',')}`).toBe(true);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${(gw.logs().find((l) => l.msg === 'gateway listening')!.httpPort as number)}/metrics`)).text();
    expect(metrics).toMatch(/gateway_bridged_total\{topic="cp.telemetry"\} [1-9]/);
    expect(metrics).toMatch(/gateway_commands_total [1-9]/);
  });
});
