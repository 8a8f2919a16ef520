import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';

/** Every long-running service on a taken port: one line naming where, exit 2, no stack trace. */
describe('a taken port is one line and exit 2 for every service (real processes)', () => {
  const procs: CliProcess[] = [];
  const blockers: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
    for (const b of blockers.splice(0)) b.close();
  });

  async function taken(): Promise<number> {
    const b = net.createServer();
    blockers.push(b);
    await new Promise<void>((r) => b.listen(0, '127.0.0.1', () => r()));
    return (b.address() as net.AddressInfo).port;
  }

  async function expectOneLine(args: string[], pattern: RegExp): Promise<void> {
    const p = spawnCli(args);
    procs.push(p);
    const { code } = await p.exited;
    const out = p.lines.filter(Boolean);
    expect(code, out.join('\n')).toBe(2);
    expect(out.at(-1)).toMatch(pattern);
    expect(out.filter((l) => /^\s+at\s/.test(l) || /"stack"/.test(l)), 'no stack traces').toEqual([]);
    expect(out.filter((l) => l.startsWith('evcharging:'))).toHaveLength(1);
  }

  it('gateway: MQTT port taken', async () => {
    const port = await taken();
    await expectOneLine(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(port), '--http-port', String(await freePort())],
      new RegExp(`^evcharging: .*:${port}: already in use`));
  });

  it('gateway: HTTP port taken', async () => {
    const port = await taken();
    await expectOneLine(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(await freePort()), '--http-port', String(port)],
      new RegExp(`^evcharging: .*:${port}: already in use`));
  });

  it('central: HTTP port taken', async () => {
    const port = await taken();
    const dir = path.join(os.tmpdir(), `taken-port-${process.pid}-${Date.now()}`);
    await expectOneLine(['central', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dir, '--admin-token', 'taken-port-token', '--bus-mqtt', `mqtt://127.0.0.1:${await freePort()}`],
      new RegExp(`^evcharging: bad configuration: --port ${port}.*in use`));
  });

  it('cp: health port taken', async () => {
    const port = await taken();
    await expectOneLine(['cp', '--id', 'CP-1', '--health-port', String(port), '--health-host', '127.0.0.1'],
      new RegExp(`^evcharging: bad configuration: --health-port ${port}: already in use`));
  });
});
