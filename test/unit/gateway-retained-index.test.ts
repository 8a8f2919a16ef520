import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isExactFilter, persistenceWithRetainedIndex } from '../../gateway/retained-index.js';

/**
 * The gateway's aedes persistence finds retained messages for a filter without wildcards by
 * its topic: what a subscriber gets is the same as the stock persistence gives, for exact and
 * wildcard filters, after replacing and clearing.
 */
type P = { setup(b: unknown): Promise<void>; storeRetained(p: object): Promise<void>; createRetainedStreamCombi(f: string[]): Readable; createRetainedStream(f: string): Readable };
const pkt = (topic: string, payload: string) => ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: true, brokerId: 'b', brokerCounter: 1 });
const topicsOf = async (r: Readable) => { const out: string[] = []; for await (const p of r) out.push(`${(p as { topic: string }).topic}=${String((p as { payload: Buffer }).payload)}`); return out.sort(); };

describe('gateway retained index', () => {
  it('exact filters by lookup, wildcard ones as before; replaced and cleared like the stock store', async () => {
    const p = persistenceWithRetainedIndex() as unknown as P;
    await p.setup({ id: 'b', on() {}, subscribe(_t: string, _f: unknown, done: () => void) { done?.(); } });
    for (let i = 1; i <= 500; i++) await p.storeRetained(pkt(`cp/CP-${i}/status`, `s${i}`));
    await p.storeRetained(pkt('cp/CP-7/status', 'newer'));
    await p.storeRetained(pkt('cp/CP-8/status', '')); // cleared
    expect(await topicsOf(p.createRetainedStreamCombi(['cp/CP-7/status', 'cp/CP-8/status', 'cp/CP-9/cmd']))).toEqual(['cp/CP-7/status=newer']);
    expect(await topicsOf(p.createRetainedStream('cp/CP-3/status'))).toEqual(['cp/CP-3/status=s3']);
    expect(await topicsOf(p.createRetainedStreamCombi(['cp/CP-1/status']))).toEqual(['cp/CP-1/status=s1']);
    // Wildcards go the stock way, and see the same replacements and clears.
    const all = await topicsOf(p.createRetainedStreamCombi(['cp/+/status']));
    expect(all).toHaveLength(499);
    expect(all).toContain('cp/CP-7/status=newer');
    expect(all.some((x) => x.startsWith('cp/CP-8/'))).toBe(false);
    expect(await topicsOf(p.createRetainedStream('cp/CP-1/#'))).toEqual(['cp/CP-1/status=s1']);
  });
  it('a filter is exact only without + or # and when not shared', () => {
    expect(['cp/CP-1/cmd', 'cp/+/status', 'cp/#', '$share/g/cp/CP-1/cmd', 'bus/cp.status/CP-1'].map(isExactFilter)).toEqual([true, false, false, false, true]);
  });
});
