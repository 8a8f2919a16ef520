import { Readable } from 'node:stream';
import aedesPersistence from 'aedes-persistence';

// A CommonJS module whose typings say `export default`: on Node its default import is the factory itself.
const memoryPersistence = aedesPersistence as unknown as () => object;

/**
 * aedes' in-memory persistence, with retained messages found by exact topic. The stock one
 * tests every retained message against every new subscription: each CP keeps its status
 * retained and subscribes to its own `cp/<id>/cmd` on every connect, so connecting 10,000 CPs
 * was 100 million topic tests (most of the gateway's time while a fleet connects, and the
 * reason reconnects snowballed under load). A filter without wildcards matches at most the
 * one topic it names: that is a map lookup. Filters with `+` or `#` (and shared ones) still go
 * the stock way.
 */
type Packet = { topic: string; payload: Buffer | string } & Record<string, unknown>;
interface RetainedStreams {
  storeRetained(p: Packet, cb?: (err: Error | null) => void): Promise<void> | undefined;
  createRetainedStreamCombi(patterns: string[]): Readable;
  createRetainedStream(pattern: string): Readable;
}

export const isExactFilter = (f: string): boolean => !f.includes('+') && !f.includes('#') && !f.startsWith('$share/');

export function persistenceWithRetainedIndex<P extends object>(p: P = memoryPersistence() as P): P {
  const base = p as unknown as RetainedStreams;
  const retained = new Map<string, Packet>();
  const storeRetained = base.storeRetained.bind(base);
  const combi = base.createRetainedStreamCombi.bind(base);
  const single = base.createRetainedStream.bind(base);
  base.storeRetained = (pkt, cb) => {
    // As the stock store: an empty payload clears the topic, anything else replaces it (a copy).
    if (pkt.payload.length === 0) retained.delete(pkt.topic); else retained.set(pkt.topic, { ...pkt });
    return storeRetained(pkt, cb);
  };
  const exact = (filters: string[]) => filters.flatMap((f) => { const m = retained.get(f); return m ? [m] : []; });
  base.createRetainedStreamCombi = (patterns) => (patterns.every(isExactFilter) ? Readable.from(exact(patterns)) : combi(patterns));
  base.createRetainedStream = (pattern) => (isExactFilter(pattern) ? Readable.from(exact([pattern])) : single(pattern));
  return p;
}
