/**
 * What the deployment docs rely on at start-up: central in dev mode stays on loopback unless the
 * lab asks for the network (CENTRAL_DEV_PUBLIC=true, then every address, as docs/deployment.md
 * section 4a starts it), and a gateway whose state dir cannot be written says so in one line
 * (the image once ran it in a root-owned /app: a stack trace and a restart loop).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

let dir: string;
const procs: CliProcess[] = [];
const start = (args: string[], env: Record<string, string>) => { const p = spawnCli(args, { env, cwd: dir }); procs.push(p); return p; };

beforeAll(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'evcharging-listen-')); });
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await fs.rm(dir, { recursive: true, force: true });
});

/** The address central's dev-mode warning says it listens on. */
async function centralHost(env: Record<string, string>): Promise<unknown> {
  const c = start(['central'], { CENTRAL_PORT: '18000', CENTRAL_DATA_DIR: path.join(dir, `c-${procs.length}`), ...env });
  await c.waitForLine(/DEV MODE/, 20_000);
  const host = c.logs().find((l) => String(l.msg).startsWith('DEV MODE'))?.host;
  await c.kill('SIGTERM');
  return host;
}

describe('listen addresses and state dirs at start-up', () => {
  it('central without credentials listens on loopback; CENTRAL_DEV_PUBLIC=true alone puts it on every address', async () => {
    expect(await centralHost({})).toBe('127.0.0.1');
    expect(await centralHost({ CENTRAL_DEV_PUBLIC: 'true' })).toBe('0.0.0.0');
  }, 40_000);

  it('a gateway whose state dir cannot be made exits with one configuration line, no stack trace', async () => {
    const file = path.join(dir, 'not-a-dir');
    await fs.writeFile(file, '');
    const g = start(['gateway'], { GATEWAY_DEV_MODE: 'true', GATEWAY_MQTT_PORT: '0', GATEWAY_HTTP_PORT: '0', GATEWAY_STATE_DIR: path.join(file, 'gateway') });
    const { code } = await g.exited;
    expect(code).not.toBe(0);
    expect(g.lines.join('\n')).toMatch(/bad configuration: --state-dir .*not-a-dir\/gateway \(GATEWAY_STATE_DIR\) is not writable/);
    expect(g.lines.join('\n')).not.toMatch(/^\s+at /m);
  }, 20_000);
});
