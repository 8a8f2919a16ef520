import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode, type CentralCommandMsg } from '../../protocol/index.js';
import { readTopics, startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A gateway SIGKILLed on Kafka left its central.commands group member behind, and its restart
 * read no command until that member's session timed out (10 s): back-to-back gateway kills in
 * chaos delayed a driver's STOP by 26 s while the CP kept supplying. Each start now joins a
 * fresh group generation resuming at the committed offsets, like central and the driver: a
 * command sent after two quick kills reaches its CP well inside the dead member's session.
 */
describe('gateway on Kafka (kcat mock cluster): SIGKILL and restart', () => {
  let mock: KafkaMock; let dir: string; let producer: Producer; let engine: CliProcess;
  let reader: Awaited<ReturnType<typeof readTopics>>;
  const gateways: CliProcess[] = [];
  const cpId = `CP-R${process.pid % 10000}`;
  let mqttPort: number; let httpPort: number;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-kafka-restart-'));
    mock = await startKafkaMock(1);
    [mqttPort, httpPort] = [await freePort(), await freePort()];
    producer = new Kafka({ brokers: mock.bootstrap, clientId: 'central-test', logLevel: logLevel.NOTHING })
      .producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    reader = await readTopics(mock.bootstrap, ['cp.status']);
  }, 60_000);
  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    await reader?.stop();
    await engine?.kill('SIGKILL');
    await Promise.all(gateways.map((g) => g.kill('SIGKILL')));
    await mock?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const startGateway = () => {
    const g = spawnCli(['gateway', '--dev', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort), '--gateway-id', 'gw-r',
      '--state-dir', dir, '--kafka-bootstrap', mock.bootstrap.join(',')]);
    gateways.push(g);
    return g;
  };
  const send = (msg: CentralCommandMsg) => producer.send({ topic: 'central.commands', messages: [{ key: cpId, value: encode(msg) }] });
  const acked = (commandId: string) => reader.of('cp.status', cpId).find((r) => r.value.type === 'ack' && r.value.command_id === commandId);
  const command = (n: string): CentralCommandMsg => ({ v: 1, command_id: `k-${n}-${Date.now()}`, cp_id: cpId, command: 'STOP_CP', ts: Date.now() });

  it('a command sent after two quick kills reaches its CP within seconds of the restart', async () => {
    const g1 = startGateway();
    await g1.waitForLine(/"gateway listening"/, 30_000);
    engine = spawnCli(['cp', '--id', cpId, '--health-port', String(await freePort()), '--health-host', '127.0.0.1', '--mqtt', `mqtt://127.0.0.1:${mqttPort}`]);
    await waitFor(() => reader.of('cp.status', cpId).some((r) => r.value.type === 'status' && r.value.state === 'ACTIVATED'), { timeoutMs: 45_000, what: 'CP ACTIVATED on Kafka' });
    // The first gateway's consumer has joined once a command gets through (the topic may be created by this very send).
    const first = command('stop');
    await waitFor(async () => { await send({ ...first, ts: Date.now() }); return waitFor(() => acked(first.command_id), { timeoutMs: 2_000 }).catch(() => undefined); },
      { timeoutMs: 60_000, intervalMs: 100, what: 'first command acknowledged' });

    await g1.kill('SIGKILL');
    const g2 = startGateway();
    await g2.waitForLine(/"gateway listening"/, 30_000);
    // Killed in a quiet moment once its consumer is in its group: it has read (and committed) nothing.
    await waitFor(async () => ((await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json()) as { kafka: { consumer: string } }).kafka.consumer === 'connected',
      { timeoutMs: 20_000, what: 'the second gateway joined its group' });
    await g2.kill('SIGKILL');
    const g3 = startGateway();
    await g3.waitForLine(/"gateway listening"/, 30_000);
    const again = command('stop');
    await send(again);
    // Both dead members' sessions (10 s) are still open when this deadline passes.
    await waitFor(() => engine.lines.filter((l) => l.includes('+ STOP_CP -> STOPPED')).length === 2, { timeoutMs: 7_000, what: () => `the engine gets the command; gateway:\n${g3.lines.slice(-10).join('\n')}\nengine:\n${engine.lines.slice(-6).join('\n')}` });
    const ack = await waitFor(() => acked(again.command_id), { timeoutMs: 30_000, what: () => `its ack on Kafka; gateway:\n${g3.lines.slice(-10).join('\n')}` });
    // The CP reconnected as ACTIVATED (its STOPPED did not outlive the link), so the STOP applies.
    expect(ack.value, JSON.stringify(ack.value)).toMatchObject({ ok: true, state: 'STOPPED' });
    expect(g3.logs().some((l) => l.msg === 'kafka consumer joins a fresh group generation' && String(l.group).startsWith('evcharging-gateway-gw-r.'))).toBe(true);
  });
});
