import type { Logger } from '../lib/log.js';
import { errText } from '../lib/log.js';
import { BUS_SCHEMAS, type BusMessage, type BusTopic } from '../protocol/index.js';
import { decode, type DecodeResult } from '../protocol/index.js';
import type { BusHandler, SubscribeOptions } from './types.js';

/** A subscription as the adapters keep it. */
export interface Sub { topic: BusTopic; handler: BusHandler<BusTopic>; opts: SubscribeOptions }

/** Validates an outgoing bus message; throws so the caller learns about its own bug at once. */
export function checkOutgoing<T extends BusTopic>(topic: T, value: BusMessage<T>): void {
  const r = BUS_SCHEMAS[topic].safeParse(value);
  if (!r.success) throw new Error(`invalid ${topic} message: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
}

/** Decodes a received payload against the topic's schema. */
export function decodeIncoming<T extends BusTopic>(topic: T, payload: Buffer | string): DecodeResult<BusMessage<T>> {
  if (!(topic in BUS_SCHEMAS)) return { ok: false, error: 'schema', detail: `unknown topic ${String(topic)}` };
  return decode(BUS_SCHEMAS[topic] as never, payload) as DecodeResult<BusMessage<T>>;
}

/**
 * Hands one received message to the subscriptions that want it, in order, after validating it:
 * an invalid one is counted and logged once, never handed on; a failing handler is logged and
 * does not stop the others. Both adapters deliver through here.
 */
export async function deliver(subs: readonly Sub[], topic: BusTopic, key: string, payload: Buffer | string,
  counts: { received: number; invalid: number }, log: Logger): Promise<void> {
  const matching = subs.filter((s) => s.topic === topic && (!s.opts.key || s.opts.key === key));
  if (!matching.length) return;
  const r = decodeIncoming(topic, payload);
  if (!r.ok) {
    counts.invalid++;
    log.warn({ topic, key, error: r.error, detail: r.detail }, 'invalid bus message skipped');
    return;
  }
  counts.received++;
  for (const s of matching) {
    try { await s.handler(r.value as never, { topic, key }); } catch (err) { log.error({ topic, key, err: errText(err) }, 'bus handler failed'); }
  }
}
