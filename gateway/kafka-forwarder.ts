import type { Logger } from '../lib/log.js';
import { errText } from '../lib/log.js';
import { backoffDelay, sleep } from '../lib/backoff.js';
import type { ForwardBuffer, Pending } from './forward-buffer.js';

export interface ForwarderOptions {
  buffer: ForwardBuffer;
  /** Delivers one batch (order kept per topic and key); throws when Kafka did not take it. */
  send(batch: Pending[]): Promise<void>;
  /** Resolves once the producer is connected; nothing is sent before (the bus says once that it waits). */
  ready: Promise<void>;
  log: Logger;
  onDelivered?(batch: Pending[]): void;
  /** Called with true when an outage starts and false when it ends (metrics). */
  onOutage?(down: boolean): void;
  batchMax?: number;
  /** A send unanswered this long counts as an outage (a hung broker never refuses, it just stops answering). */
  stallMs?: number;
  /** Fields the outage line carries so it names where Kafka is (bootstrap, advertised-address problem). */
  where?(): Record<string, unknown>;
}

export interface Forwarder {
  /** New data in the buffer. */
  notify(): void;
  readonly down: boolean;
  /** Resolves once the buffer is empty, or after `timeoutMs` with the number still held. */
  drain(timeoutMs: number): Promise<number>;
  close(): void;
}

/**
 * Drains the forward buffer into Kafka: one loop per lane of the buffer, each with one batch in
 * flight (so per-key order holds and a failed batch is retried before anything newer of its
 * lane), the lanes concurrently. An outage — a send that fails, or one left unanswered for
 * `stallMs` — is logged once, with the reason and no stack; its end once more, when no lane is
 * failing any longer.
 */
export function startForwarder(o: ForwarderOptions): Forwarder {
  const batchMax = o.batchMax ?? 500;
  const stallMs = o.stallMs ?? 3_000;
  const wakes: Array<(() => void) | undefined> = [];
  let closing = false;
  let down = false;
  let outageStart = 0;
  /** Lanes whose last send failed or hung. */
  const troubled = new Set<number>();

  const outage = (lane: number, reason: string) => {
    troubled.add(lane);
    if (down || closing) return;
    down = true;
    outageStart = Date.now();
    o.onOutage?.(true);
    o.log.warn({ reason, buffered: o.buffer.size, ...o.where?.() }, 'kafka unavailable, buffering');
  };
  const recovered = (lane: number) => {
    troubled.delete(lane);
    if (!down || troubled.size) return;
    down = false;
    o.onOutage?.(false);
    o.log.info({ buffered: o.buffer.size, outage_ms: Date.now() - outageStart }, 'kafka reachable again, delivering buffered messages');
  };

  const loop = async (lane: number) => {
    await o.ready;
    let attempt = 0;
    while (!closing) {
      const batch = o.buffer.take(batchMax, lane);
      if (!batch.length) {
        await new Promise<void>((r) => { wakes[lane] = r; });
        wakes[lane] = undefined;
        continue;
      }
      const stall = setTimeout(() => outage(lane, `no answer for ${stallMs} ms`), stallMs);
      try {
        await o.send(batch);
        o.buffer.ack(lane);
        o.onDelivered?.(batch);
        attempt = 0;
        recovered(lane);
      } catch (err) {
        o.buffer.release(lane);
        if (closing) break;
        outage(lane, errText(err));
        await sleep(backoffDelay(attempt++, 200, 5_000));
      } finally {
        clearTimeout(stall);
      }
    }
  };
  for (let lane = 0; lane < o.buffer.lanes; lane++) {
    void loop(lane).catch((err) => { if (!closing) o.log.error({ err: errText(err), lane }, 'kafka forwarder stopped'); });
  }
  const wakeAll = () => { for (const w of wakes) w?.(); };

  return {
    notify: wakeAll,
    get down() { return down; },
    async drain(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (o.buffer.size && Date.now() < deadline) await sleep(20);
      return o.buffer.size;
    },
    close() { closing = true; wakeAll(); },
  };
}
