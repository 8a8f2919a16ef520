import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HEALTH_MAX_LINE } from '../../protocol/index.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/** Sends bytes on one connection and collects reply lines until `lines` arrived or the peer closed. */
function exchange(port: number, data: Buffer | string, lines: number): Promise<{ replies: string[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    let closed = false;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no ${lines} replies, got ${JSON.stringify(buf)}`)); }, 15_000);
    const finish = () => { clearTimeout(timer); sock.destroy(); resolve({ replies: buf.split('\n').filter(Boolean), closed }); };
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { buf += d; if (buf.split('\n').filter(Boolean).length >= lines) finish(); });
    sock.on('end', () => { closed = true; finish(); });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('connect', () => sock.write(data));
  });
}

describe('evcharging cp / fault (real process, real ports)', () => {
  const procs: CliProcess[] = [];
  afterEach(async () => { await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL'))); });

  /** An engine whose gateway is not there: it must still serve its health port. */
  async function engine(extra: string[] = []) {
    const port = await freePort();
    const dead = await freePort();
    const p = spawnCli(['cp', '--id', `CP-CLI-${process.pid}-${port}`, '--health-port', String(port), '--health-host', '127.0.0.1', '--mqtt', `mqtt://127.0.0.1:${dead}`, ...extra]);
    procs.push(p);
    await p.waitForLine(/"engine ready"/, 30_000);
    return { p, port };
  }

  it('garbage on the health port gets ERR and is counted; the port keeps answering PING', async () => {
    const { p, port } = await engine();
    const binary = await exchange(port, Buffer.from([0x00, 0xff, 0xfe, 0x01, 0x0a]), 1);
    expect(binary.replies).toEqual(['ERR non-ASCII bytes']);
    const unknown = await exchange(port, 'HELLO there\nPING\n', 2);
    expect(unknown.replies).toEqual([expect.stringMatching(/^ERR unknown request/), 'OK']);
    const oversize = await exchange(port, `${'A'.repeat(HEALTH_MAX_LINE * 8)}\nPING\n`, 2);
    expect(oversize.replies[0]).toMatch(/^ERR line too long/);
    expect(oversize.closed).toBe(true);
    expect(oversize.replies).toHaveLength(1); // the rest of that connection is dropped
    const noNewline = await exchange(port, 'B'.repeat(HEALTH_MAX_LINE + 10), 1);
    expect(noNewline.replies[0]).toMatch(/^ERR line too long/);
    // Others and later requests are still served.
    expect((await exchange(port, 'PING\n', 1)).replies).toEqual(['OK']);
    const status = (await exchange(port, 'STATUS\n', 1)).replies[0]!;
    const snap = JSON.parse(status.slice(3));
    expect(snap).toMatchObject({ state: 'DISCONNECTED', health_requests: { oversize: 2 } });
    expect(snap.health_requests.errors).toBeGreaterThanOrEqual(4);
    // Said once (the engine's first failed connect may come after the health port answers).
    await waitFor(() => p.logs().some((l) => l.msg === 'gateway not reachable, retrying'), { timeoutMs: 15_000, what: 'the one "gateway not reachable" line' });
    expect(p.logs().filter((l) => l.msg === 'gateway not reachable, retrying')).toHaveLength(1);
    expect(p.lines.some((l) => /\n\s+at /.test(l) || /^\s+at /.test(l))).toBe(false); // no stack traces
  });

  it('evcharging fault injects through the health port; PING turns KO, --repair brings OK back', async () => {
    const { port } = await engine();
    const inject = spawnCli(['fault', '--engine', `127.0.0.1:${port}`, '--kind', 'over_temperature']);
    expect((await inject.exited).code).toBe(0);
    expect(inject.lines).toContain('OK fault over_temperature injected');
    await waitFor(async () => (await exchange(port, 'PING\n', 1)).replies[0] === 'KO fault over_temperature', { timeoutMs: 10_000, what: 'KO' });
    const repair = spawnCli(['fault', '--engine', `127.0.0.1:${port}`, '--repair'], { env: {} });
    expect((await repair.exited).code).toBe(0);
    await waitFor(async () => (await exchange(port, 'PING\n', 1)).replies[0] === 'OK', { timeoutMs: 10_000, what: 'OK again' });
    const refused = spawnCli(['fault', '--engine', `127.0.0.1:${await freePort()}`, '--kind', 'ground_fault']);
    expect((await refused.exited).code).toBe(1);
    expect(refused.lines.join('\n')).toMatch(/connection refused/);
  });

  it('SIGTERM without a gateway still exits 0', async () => {
    const { p } = await engine();
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.logs().some((l) => l.msg === 'stopped')).toBe(true);
  });

  const badConfigs: Array<[string, string[], Record<string, string>, RegExp]> = [
    ['--health-port abc', ['--id', 'CP-1', '--health-port', 'abc'], {}, /health-port.*TCP port/],
    ['unknown profile', ['--id', 'CP-1', '--health-port', '0', '--profile', 'warp-drive'], {}, /warp-drive.*cannot read profile/],
    ['bad env var CP_ENGINE_KW', ['--id', 'CP-1', '--health-port', '0'], { CP_ENGINE_KW: '-5' }, /kw/i],
    ['missing --id', ['--health-port', '0'], {}, /--id \(CP_ENGINE_ID or CP_ENGINE_CP_ID\) is required/],
    ['bad --mqtt', ['--id', 'CP-1', '--health-port', '0', '--mqtt', 'http://x'], {}, /mqtt/],
  ];
  for (const [what, args, env, pattern] of badConfigs) {
    it(`bad config (${what}) -> one line, exit 2`, async () => {
      const p = spawnCli(['cp', ...args], { env });
      procs.push(p);
      expect((await p.exited).code).toBe(2);
      expect(p.lines.filter(Boolean)).toHaveLength(1);
      expect(p.lines[0]).toMatch(pattern);
    });
  }

  it('health port in use -> one line naming the option, exit 2', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const p = spawnCli(['cp', '--id', 'CP-1', '--health-port', String(port), '--health-host', '127.0.0.1']);
      procs.push(p);
      expect((await p.exited).code).toBe(2);
      expect(p.lines.filter(Boolean)).toEqual([`evcharging: bad configuration: --health-port ${port}: already in use`]);
    } finally {
      blocker.close();
    }
  });
});
