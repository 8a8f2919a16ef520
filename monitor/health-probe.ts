import net from 'node:net';
import { HEALTH_MAX_LINE, parseHealthReply } from '../protocol/index.js';
import type { PollResult } from './watchdog.js';

export interface HealthProbe {
  /** Sends `PING` on the kept-open connection (connecting first if needed) and classifies the answer. Never throws. */
  ping(): Promise<PollResult>;
  /** Called when the kept-open connection closes by itself (engine gone): poll again now instead of at the next tick. */
  onDrop(listener: () => void): void;
  close(): void;
}

/**
 * The edge to the engine's health port. One TCP connection stays open between polls so an
 * engine killed with SIGKILL shows up as a closed connection at once, not as a timeout later.
 */
export function createHealthProbe(host: string, port: number, timeoutMs: number): HealthProbe {
  let sock: net.Socket | undefined;
  let connected = false;
  let buf = '';
  let waiter: ((r: PollResult) => void) | undefined;
  let closed = false;
  const dropListeners: Array<() => void> = [];

  const settle = (r: PollResult) => { const w = waiter; waiter = undefined; w?.(r); };
  const drop = (s: net.Socket) => { if (sock === s) { sock = undefined; connected = false; buf = ''; } s.destroy(); };

  function open(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port });
      s.setNoDelay(true);
      s.setEncoding('latin1');
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect timed out after ${timeoutMs} ms`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); resolve(s); });
      s.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message)));
        settle({ kind: 'miss', reason: `connection error ${err.code ?? err.message}` });
      });
      s.on('close', () => {
        const wasCurrent = sock === s && connected;
        drop(s);
        settle({ kind: 'miss', reason: 'connection closed' });
        if (wasCurrent && !closed) for (const l of dropListeners) l();
      });
      s.on('data', (d: string) => {
        if (sock !== s) return;
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) {
          if (buf.length > HEALTH_MAX_LINE) { settle({ kind: 'miss', reason: 'bad reply: line too long' }); drop(s); }
          return;
        }
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (!waiter) return; // an unasked line (late reply after a timeout): ignored
        const reply = parseHealthReply(line);
        if (reply.ok) settle({ kind: 'ok' });
        else if (line.trim().startsWith('KO')) settle({ kind: 'ko', reason: reply.reason });
        else { settle({ kind: 'miss', reason: reply.reason }); drop(s); } // garbage: resynchronise on a fresh connection
      });
    });
  }

  return {
    async ping() {
      if (closed) return { kind: 'miss', reason: 'probe closed' };
      if (!sock || !connected) {
        try {
          const s = await open();
          if (closed) { s.destroy(); return { kind: 'miss', reason: 'probe closed' }; }
          sock = s;
          connected = true;
        } catch (err) {
          return { kind: 'miss', reason: (err as Error).message };
        }
      }
      const s = sock!;
      buf = ''; // whatever arrived unasked since the last poll is stale
      return new Promise<PollResult>((resolve) => {
        const timer = setTimeout(() => { settle({ kind: 'miss', reason: `no reply within ${timeoutMs} ms` }); drop(s); }, timeoutMs);
        waiter = (r) => { clearTimeout(timer); resolve(r); };
        s.write('PING\n');
      });
    },
    onDrop(listener) { dropListeners.push(listener); },
    close() { closed = true; if (sock) drop(sock); settle({ kind: 'miss', reason: 'probe closed' }); },
  };
}
