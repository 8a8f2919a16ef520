import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../gateway/write-coalescer.js';
import { waitFor } from '../helpers/wait.js';

/** Real loopback sockets: what reaches the kernel (calls of the socket's own _write/_writev) per event-loop turn. */
type Counted = net.Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
const cleanup: Array<() => void> = [];
afterEach(() => { for (const c of cleanup.splice(0)) c(); });

async function pair(coalesce: boolean) {
  let received = '';
  const server = net.createServer((s) => { s.setEncoding('utf8'); s.on('data', (d: string) => { received += d; }); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1') as Counted;
  await new Promise<void>((r) => sock.once('connect', () => r()));
  cleanup.push(() => { sock.destroy(); server.close(); });
  if (coalesce) coalesceWrites(sock);
  const calls = { write: 0, writev: 0 };
  const [w, wv] = [sock._write, sock._writev];
  sock._write = function (...a: unknown[]) { calls.write++; return w.apply(this, a); };
  sock._writev = function (...a: unknown[]) { calls.writev++; return wv.apply(this, a); };
  return { sock, calls, received: () => received };
}

/** 200 packets in one turn, each from its own tick, as aedes writes one subscriber's deliveries. */
function burst(sock: net.Socket, n: number, prefix: string): void {
  for (let i = 0; i < n; i++) process.nextTick(() => sock.write(`${prefix}${i};`));
}
const expected = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i};`).join('');

describe('coalesceWrites', () => {
  it('one turn of writes leaves in one writev, in order; the next turn in another', async () => {
    const p = await pair(true);
    burst(p.sock, 200, 'a');
    await waitFor(() => p.received() === expected(200, 'a'), { timeoutMs: 5_000, what: 'the first burst received' });
    expect(p.calls).toEqual({ write: 0, writev: 1 });
    burst(p.sock, 200, 'b');
    await waitFor(() => p.received() === expected(200, 'a') + expected(200, 'b'), { timeoutMs: 5_000, what: 'the second burst received' });
    expect(p.calls).toEqual({ write: 0, writev: 2 });
  });

  it('without it, every tick is a syscall of its own (what the gateway did)', async () => {
    const p = await pair(false);
    burst(p.sock, 200, 'a');
    await waitFor(() => p.received() === expected(200, 'a'), { timeoutMs: 5_000, what: 'the burst received' });
    expect(p.calls.write + p.calls.writev).toBeGreaterThan(100);
  });

  it('a socket destroyed before the turn ends is left alone', async () => {
    const p = await pair(true);
    p.sock.write('x');
    p.sock.destroy();
    await new Promise((r) => setImmediate(r));
    expect(p.sock.destroyed).toBe(true);
  });
});
