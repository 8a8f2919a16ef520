import mqtt from 'mqtt';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { forwardPort, readTopics, startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const status = (cp: string, seq: number) => JSON.stringify({ v: 1, type: 'status', cp_id: cp, state: 'ACTIVATED', seq, ts: Date.now() });

describe('gateway started before Kafka', () => {
  let gw: CliProcess | undefined; let mock: KafkaMock | undefined;
  let fwd: { close(): Promise<void> } | undefined; let client: mqtt.MqttClient | undefined;
  let reader: Awaited<ReturnType<typeof readTopics>> | undefined;
  afterAll(async () => {
    await client?.endAsync(true); await reader?.stop(); await gw?.kill('SIGKILL'); await fwd?.close(); await mock?.stop();
  });

  it('serves MQTT at once, says once that it waits for Kafka, delivers what it held when Kafka appears on the configured port, and commands sent meanwhile (not stale ones)', async () => {
    const kafkaPort = await freePort(); // nothing listens here yet
    const [mqttPort, httpPort] = [await freePort(), await freePort()];
    const cpId = `CP-W${process.pid}`;
    gw = spawnCli(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort),
      '--kafka-bootstrap', `127.0.0.1:${kafkaPort}`]);
    await gw.waitForLine(/"gateway listening"/, 30_000);
    await gw.waitForLine(/kafka not reachable yet, retrying with backoff/, 30_000);

    client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: cpId, reconnectPeriod: 500 });
    for (let seq = 1; seq <= 3; seq++) await client.publishAsync(`cp/${cpId}/status`, status(cpId, seq), { qos: 1 });
    const health = await waitFor(async () => {
      const h = await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json() as { buffered: number; kafka_up: boolean };
      return h.buffered === 3 ? h : undefined;
    }, { timeoutMs: 15_000, what: '3 statuses buffered' });
    expect(health.kafka_up).toBe(false);

    // Central already wrote two commands before the gateway could read: a fresh one (delivered: the gateway's group
    // starts at the earliest offset) and one ten minutes old (dropped and counted, never sent to the CP).
    const commands: string[] = [];
    client.on('message', (_t, p) => commands.push(String(JSON.parse(p.toString()).command_id)));
    await client.subscribeAsync(`cp/${cpId}/cmd`, { qos: 1 });
    mock = await startKafkaMock(1);
    const producer = new Kafka({ brokers: mock.bootstrap, clientId: 'central-early', logLevel: logLevel.NOTHING }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: 'central.commands', messages: [
      { key: cpId, value: JSON.stringify({ v: 1, command_id: 'old-1', cp_id: cpId, command: 'STOP_CP', ts: Date.now() - 600_000 }) },
      { key: cpId, value: JSON.stringify({ v: 1, command_id: 'fresh-1', cp_id: cpId, command: 'RESUME_CP', ts: Date.now() }) },
      { key: cpId, value: '{"not a command' },
    ] });
    await producer.disconnect();

    // Kafka appears on the port the gateway was given.
    fwd = await forwardPort(kafkaPort, mock.bootstrap[0]!);
    await gw.waitForLine(/"kafka reachable, connected"/, 45_000);
    reader = await readTopics(mock.bootstrap, ['cp.status']);
    await waitFor(() => reader!.of('cp.status', cpId).length >= 3, { timeoutMs: 45_000, what: 'buffered statuses on Kafka' });
    await client.publishAsync(`cp/${cpId}/status`, status(cpId, 4), { qos: 1 });
    await waitFor(() => reader!.of('cp.status', cpId).length >= 4, { timeoutMs: 30_000, what: 'a live status on Kafka' });
    expect(reader.of('cp.status', cpId).map((r) => r.value.seq)).toEqual([1, 2, 3, 4]);

    await waitFor(() => commands.includes('fresh-1'), { timeoutMs: 45_000, what: 'the command central sent before the gateway joined' });
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toContain('gateway_rejected_total{reason="stale"} 1');
    expect(metrics).toContain('gateway_kafka_invalid_total 1');
    expect(commands).toEqual(['fresh-1']);
    await gw.waitForLine(/stale command dropped/);

    const logs = gw.logs();
    expect(logs.filter((l) => /kafka not reachable yet/.test(String(l.msg)))).toHaveLength(1);
    expect(logs.filter((l) => l.msg === 'kafka unavailable, buffering')).toHaveLength(0);
    expect(gw.lines.every((l) => { try { JSON.parse(l); return true; } catch { return false; } })).toBe(true);
    expect(gw.lines.some((l) => /\n\s+at |"stack"/.test(l))).toBe(false);
    expect(logs.filter((l) => Number(l.level) >= 50)).toEqual([]);

    // Kafka hangs; a status is held; SIGTERM: a clean exit that says what was not delivered.
    mock.pause();
    await client.publishAsync(`cp/${cpId}/status`, status(cpId, 5), { qos: 1 });
    // Held with it: the gateway's own beats of the seconds before it calls Kafka down (so at least one).
    await waitFor(async () => ((await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json()) as { buffered: number }).buffered >= 1, { timeoutMs: 15_000, what: 'the status held' });
    await gw.kill('SIGTERM');
    expect((await gw.exited).code, gw.lines.slice(-5).join('\n')).toBe(0);
    const said = gw.logs().find((l) => l.msg === 'stopping with messages not delivered to Kafka') as { undelivered?: number } | undefined;
    expect(said?.undelivered).toBeGreaterThanOrEqual(1);
    expect(reader.of('cp.status', cpId).map((r) => r.value.seq)).toEqual([1, 2, 3, 4]);
    mock.resume();
  });
});
