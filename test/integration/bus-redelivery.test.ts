import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { createBus } from '../../bus/create.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import { silentLogger } from '../../lib/log.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Embedded bus, at least once: a consumer process killed with SIGKILL while its handler runs
 * gets that message again when it comes back (the broker holds it until the handler is done),
 * and messages published while it was away follow in order.
 */
const children: ReturnType<typeof spawn>[] = [];
afterAll(() => { for (const c of children) c.kill('SIGKILL'); });

function consumer(mqttUrl: string, group: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx/esm', 'test/integration/fixtures/bus-consumer.ts', mqttUrl, group], {
    cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); } });
  return { child, lines };
}

describe('embedded bus redelivery', () => {
  let gw: RunningGateway | undefined;
  afterAll(async () => { await gw?.close(); });

  it('a message whose handler was cut short by SIGKILL is delivered again, before what was published meanwhile', async () => {
    gw = await startGateway({ host: '127.0.0.1', mqttPort: 0, httpPort: 0, credentials: null, bufferMax: 1000 }, silentLogger);
    const url = `mqtt://127.0.0.1:${gw.mqttPort}`;
    const group = `redeliver-${process.pid}-${Date.now()}`;
    const producer = createBus({ mqttUrl: url, clientId: `${group}-producer` }, silentLogger);
    await producer.start();
    const send = (id: string) => producer.publish('central.commands', 'CP-001', { v: 1, command_id: id, cp_id: 'CP-001', command: 'STOP_SUPPLY', ts: Date.now() });
    try {
      const first = consumer(url, group);
      await waitFor(() => first.lines.includes('ready'), { timeoutMs: 30_000, what: 'first consumer ready' });
      await send('ok-1');
      await send('hang-1');
      await waitFor(() => first.lines.includes('got hang-1'), { timeoutMs: 20_000, what: 'hang-1 in the handler' });
      expect(first.lines).toContain('done ok-1');
      first.child.kill('SIGKILL');
      await new Promise((r) => first.child.once('exit', r));
      await send('after-1');

      const second = consumer(url, group, { NO_HANG: '1' });
      await waitFor(() => second.lines.includes('done after-1'), { timeoutMs: 30_000, what: `after-1 handled; got ${JSON.stringify(second.lines)}` });
      const handled = second.lines.filter((l) => l.startsWith('done ')).map((l) => l.slice(5));
      expect(handled).toEqual(['hang-1', 'after-1']); // ok-1 was finished, so it is not seen again
      second.child.kill('SIGKILL');
    } finally { await producer.close(); }
  });
});
