import { BUS_SCHEMAS, type BusMessage, type KafkaTopic } from '../../protocol/index.js';
import { decode, type DecodeResult } from '../../protocol/index.js';

/** Validates an outgoing bus message; throws so the caller learns about its own bug at once. */
export function checkOutgoing<T extends KafkaTopic>(topic: T, value: BusMessage<T>): void {
  const r = BUS_SCHEMAS[topic].safeParse(value);
  if (!r.success) throw new Error(`invalid ${topic} message: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
}

/** Decodes a received payload against the topic's schema. */
export function decodeIncoming<T extends KafkaTopic>(topic: T, payload: Buffer | string): DecodeResult<BusMessage<T>> {
  if (!(topic in BUS_SCHEMAS)) return { ok: false, error: 'schema', detail: `unknown topic ${String(topic)}` };
  return decode(BUS_SCHEMAS[topic] as never, payload) as DecodeResult<BusMessage<T>>;
}
