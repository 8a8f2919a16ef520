import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBus } from '../../bus/create.js';
import type { Bus } from '../../bus/types.js';
import { silentLogger } from '../../lib/log.js';
import { PROTOCOL_VERSION, type DriverUpdateMsg } from '../../protocol/index.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Defect 5: a central SIGKILLed on Kafka left its group member behind; the restarted central
 * read nothing until that member's session timed out (10 s here, about 24 s with kafkajs's
 * defaults), so requests sent meanwhile waited. Now each start joins a fresh group generation
 * resuming at the committed offsets: a request sent while central was dead is answered within
 * a few seconds of the restart, well inside the dead member's session timeout (10 s).
 */
describe('central on Kafka (kcat mock cluster): SIGKILL and restart', () => {
  let mock: KafkaMock;
  let dir: string;
  let client: Bus;
  const updates: DriverUpdateMsg[] = [];
  const procs: CliProcess[] = [];
  let port: number;

  beforeAll(async () => {
    mock = await startKafkaMock(1);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'central-kafka-restart-'));
    port = await freePort();
    // Consumers join only once their topics exist: create both with a warm-up record first.
    const warm = createBus({ kafkaBootstrap: mock.bootstrap, mqttUrl: 'mqtt://unused:1', clientId: `kr-warm-${process.pid}` }, silentLogger);
    await warm.start();
    await warm.publish('driver.updates', 'topic-warmup', { v: PROTOCOL_VERSION, driver_id: 'topic-warmup', status: 'REJECTED', reason: 'warm-up', ts: Date.now() });
    await warm.publish('driver.requests', 'topic-warmup', { v: PROTOCOL_VERSION, driver_id: 'topic-warmup', request_id: 'warm', action: 'QUERY', ts: Date.now() });
    await warm.close();
    client = createBus({ kafkaBootstrap: mock.bootstrap, mqttUrl: 'mqtt://unused:1', clientId: `kr-test-${process.pid}` }, silentLogger);
    client.subscribe('driver.updates', (m) => { updates.push(m); }, { group: `kr-test-${process.pid}-${Date.now()}`, fromBeginning: true });
    await client.start();
    await waitFor(() => client.health().consumer === 'connected', { timeoutMs: 30_000, what: 'test consumer joined' });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await client?.close();
    await mock?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const startCentral = () => {
    const p = spawnCli(['central', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dir, '--admin-token', 'test-token-kr', '--kafka-bootstrap', mock.bootstrap.join(',')]);
    procs.push(p);
    return p;
  };
  const query = (id: string) => client.publish('driver.requests', 'driver-kr', { v: PROTOCOL_VERSION, request_id: id, driver_id: 'driver-kr', action: 'QUERY', ts: Date.now() });
  const answered = (id: string) => updates.find((u) => u.request_id === id);

  it('a request sent while central was dead is answered within seconds of the restart', async () => {
    const c1 = startCentral();
    // First boot: topics are created on the first publish; ask until central answers.
    let n = 0;
    await waitFor(async () => { const id = `q-warm-${++n}`; await query(id); await new Promise((r) => setTimeout(r, 500)); return updates.some((u) => u.request_id?.startsWith('q-warm-')); },
      { timeoutMs: 60_000, intervalMs: 500, what: 'first central answers a QUERY' }).catch((err: Error) => { throw new Error(`${err.message}; central:\n${c1.lines.slice(-15).join('\n')}`); });
    await c1.kill('SIGKILL');

    await query('q-while-dead');
    const c2 = startCentral();
    await c2.waitForLine(/central ready/, 30_000);
    // The dead member's session (10 s) has not timed out yet when this deadline passes.
    const a = await waitFor(() => answered('q-while-dead'), { timeoutMs: 7_000, what: `answer after the restart; central:\n${c2.lines.slice(-10).join('\n')}` });
    expect(a).toMatchObject({ status: 'REJECTED', reason: 'no session', driver_id: 'driver-kr' });
    expect(c2.logs().some((l) => l.msg === 'kafka consumer joins a fresh group generation' && l.group === 'evcharging-central.1')).toBe(true);
    // And again: the generation after that one.
    await c2.kill('SIGKILL');
    await query('q-while-dead-2');
    const c3 = startCentral();
    await c3.waitForLine(/central ready/, 30_000);
    await waitFor(() => answered('q-while-dead-2'), { timeoutMs: 7_000, what: 'answer after the second restart' });
    expect(c3.logs().some((l) => l.msg === 'kafka consumer joins a fresh group generation' && l.group === 'evcharging-central.2')).toBe(true);
    // Resumed at the committed offsets: the first boot's warm-up QUERYs are not answered again.
    expect(updates.filter((u) => u.request_id === 'q-warm-1').length).toBeLessThanOrEqual(2);
  }, 150_000);
});
