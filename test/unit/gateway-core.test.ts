import { describe, expect, it } from 'vitest';
import { mayPublish, maySubscribe } from '../../gateway/acl.js';
import { ForwardBuffer, laneOf, type Pending } from '../../gateway/forward-buffer.js';
import { startForwarder } from '../../gateway/kafka-forwarder.js';
import type { Logger } from '../../lib/log.js';
import { waitFor } from '../helpers/wait.js';
import { hashSecret, verifySecret, verifySecretAsync, VerifiedSecrets } from '../../registry/credentials.js';

describe('gateway ACL', () => {
  const cp = { id: 'CP-001', role: 'cp' as const };
  const svc = { id: 'central', role: 'central' as const };
  it('lets a CP publish only under its own topics and never cmd', () => {
    expect(mayPublish(cp, 'cp/CP-001/status')).toBe(true);
    expect(mayPublish(cp, 'cp/CP-001/telemetry')).toBe(true);
    expect(mayPublish(cp, 'cp/CP-002/status')).toBe(false);
    expect(mayPublish(cp, 'cp/CP-001/cmd')).toBe(false);
    expect(mayPublish(cp, 'bus/cp.status/CP-001')).toBe(false);
  });
  it('lets a CP subscribe only to its own commands', () => {
    expect(maySubscribe(cp, 'cp/CP-001/cmd')).toBe(true);
    expect(maySubscribe(cp, 'cp/+/cmd')).toBe(false);
    expect(maySubscribe(cp, '#')).toBe(false);
    expect(maySubscribe(cp, 'bus/#')).toBe(false);
  });
  it('keeps services on bus/ and off the CP-sourced topics', () => {
    expect(mayPublish(svc, 'bus/central.commands/CP-001')).toBe(true);
    expect(mayPublish(svc, 'bus/cp.status/CP-001')).toBe(false);
    expect(mayPublish(svc, 'cp/CP-001/cmd')).toBe(false);
    expect(maySubscribe(svc, 'bus/#')).toBe(true);
    expect(maySubscribe(svc, 'cp/#')).toBe(false);
  });
});

describe('forward buffer', () => {
  const item = (n: number, droppable: boolean) => ({ topic: 't', key: 'k', value: Buffer.from(String(n)), droppable });
  const values = (ps: Pending[]) => ps.map((p) => p.value.toString());
  it('sheds the oldest telemetry first and keeps every critical message in order', () => {
    const b = new ForwardBuffer(3);
    b.push(item(1, true)); b.push(item(2, false)); b.push(item(3, true)); b.push(item(4, false)); b.push(item(5, false));
    expect(b.shed).toBe(2);
    expect(values(b.take(10))).toEqual(['2', '4', '5']);
    b.ack();
    b.push(item(6, false)); b.push(item(7, false)); b.push(item(8, false)); b.push(item(9, false));
    expect(b.size).toBe(4); // critical data may exceed the bound rather than be lost
    expect(values(b.take(2))).toEqual(['6', '7']);
    b.ack();
    expect(values(b.take(10))).toEqual(['8', '9']);
  });

  it('never sheds the batch in flight and never acknowledges what arrived after it', () => {
    // The old bug: shedding in-flight telemetry shifted indexes, so ack(n) dropped unsent statuses.
    const b = new ForwardBuffer(4);
    b.push(item(1, true)); b.push(item(2, false)); b.push(item(3, true)); b.push(item(4, false));
    expect(values(b.take(10))).toEqual(['1', '2', '3', '4']);
    b.push(item(5, false)); b.push(item(6, true)); b.push(item(7, false));
    expect(b.shed).toBe(1); // telemetry 6 (queued), not 1 or 3 (in flight)
    expect(values(b.take(10))).toEqual(['1', '2', '3', '4']); // same batch until acked
    b.ack();
    expect(values(b.take(10))).toEqual(['5', '7']);
  });

  it('hands out batches in arrival order across kinds, and under a long outage keeps every critical entry and only the newest telemetry', () => {
    const b = new ForwardBuffer(1000);
    for (let i = 0; i < 50_000; i++) b.push(item(i, i % 10 !== 0)); // every 10th critical
    expect(b.size).toBe(5000); // 5,000 critical exceed the bound; all telemetry shed
    expect(b.shed).toBe(45_000);
    const out: number[] = [];
    for (let batch = b.take(500); batch.length; batch = b.take(500)) { out.push(...batch.map((p) => Number(p.value))); b.ack(); }
    expect(out).toEqual([...Array(5000).keys()].map((k) => k * 10));
    const c = new ForwardBuffer(6);
    for (let i = 0; i < 10; i++) c.push(item(i, i % 3 !== 0)); // critical 0, 3, 6, 9
    expect(values(c.take(10))).toEqual(['0', '3', '6', '7', '8', '9']); // the two newest telemetry survive, interleaved by arrival
  });

  describe('waitingSince (the door supersedes a CP\'s reading while its previous one waits)', () => {
    const reading = (key: string, n: number, at: number): Pending => ({ topic: 'cp.telemetry', key, value: Buffer.from(`${key}:${n}`), droppable: true, at });
    const status = (key: string, n: number): Pending => ({ topic: 'cp.status', key, value: Buffer.from(`${key}:s${n}`), droppable: false });

    it('is the arrival of the newest reading of a key still queued, and forgotten once it is in flight', () => {
      const b = new ForwardBuffer(100);
      expect(b.waitingSince('A')).toBeUndefined();
      b.push(reading('A', 1, 1000)); b.push(status('A', 1)); b.push(reading('B', 1, 1005));
      expect(b.waitingSince('A')).toBe(1000);
      expect(b.waitingSince('B')).toBe(1005);
      b.push(reading('A', 2, 1010));
      expect(b.waitingSince('A')).toBe(1010);
      expect(values(b.take(2))).toEqual(['A:1', 'A:s1']);
      expect(b.waitingSince('A')).toBe(1010); // A:2 still queued
      expect(values(b.take(10))).toEqual(['A:1', 'A:s1']); // same batch until acked
      b.ack();
      expect(values(b.take(10))).toEqual(['B:1', 'A:2']);
      expect(b.waitingSince('A')).toBeUndefined(); // in flight: it may already be on the bus
      expect(b.waitingSince('B')).toBeUndefined();
    });

    it('forgets a shed reading, and a status never counts as one', () => {
      const b = new ForwardBuffer(2);
      b.push(reading('A', 1, 1)); b.push(reading('B', 1, 2)); b.push(reading('C', 1, 3)); // A shed
      expect(b.shed).toBe(1);
      expect(b.waitingSince('A')).toBeUndefined();
      expect(b.waitingSince('C')).toBe(3);
      b.push(status('D', 1));
      expect(b.waitingSince('D')).toBeUndefined();
    });

    it('is restored for nothing after a failed send: the released readings are retried, the door sees none waiting', () => {
      const b = new ForwardBuffer(100);
      b.push(reading('A', 1, 1));
      b.take(10);
      b.release();
      expect(b.waitingSince('A')).toBeUndefined();
      expect(values(b.take(10))).toEqual(['A:1']);
    });
  });

  it('puts a failed batch back at the head, in order, where telemetry may be shed again', () => {
    const b = new ForwardBuffer(3);
    b.push(item(1, true)); b.push(item(2, false));
    b.take(10);
    b.push(item(3, false));
    b.release();
    expect(b.inFlight).toBe(0);
    b.push(item(4, false));
    expect(b.shed).toBe(1);
    expect(values(b.take(10))).toEqual(['2', '3', '4']);
  });
});

describe('kafka forwarder', () => {
  const lines = () => {
    const out: Array<{ level: string; msg: string }> = [];
    const mk = (level: string) => (_o: unknown, msg?: string) => { out.push({ level, msg: msg ?? String(_o) }); };
    return { out, log: { warn: mk('warn'), info: mk('info'), error: mk('error'), debug: () => undefined } as unknown as Logger };
  };
  const item = (key: string, n: number, droppable = false) => ({ topic: droppable ? 'cp.telemetry' : 'cp.status', key, value: Buffer.from(`${key}:${n}`), droppable });

  it('delivers in order, retries a failed batch before anything newer, logs the outage once and its end once', async () => {
    const buffer = new ForwardBuffer(1000);
    const delivered: string[] = [];
    let failures = 3;
    const { out, log } = lines();
    const f = startForwarder({
      buffer, ready: Promise.resolve(), log, batchMax: 2,
      send: async (batch) => {
        if (failures > 0) { failures--; throw new Error('ECONNREFUSED'); }
        delivered.push(...batch.map((p) => p.value.toString()));
      },
    });
    for (let i = 1; i <= 5; i++) { buffer.push(item('CP-1', i)); f.notify(); }
    await waitFor(() => delivered.length === 5, { timeoutMs: 20_000, what: 'delivery' });
    expect(delivered).toEqual(['CP-1:1', 'CP-1:2', 'CP-1:3', 'CP-1:4', 'CP-1:5']);
    expect(out.filter((l) => l.msg === 'kafka unavailable, buffering')).toHaveLength(1);
    expect(out.filter((l) => l.msg.startsWith('kafka reachable again'))).toHaveLength(1);
    expect(buffer.size).toBe(0);
    f.close();
  });

  it('counts a send left unanswered as an outage, and sends nothing before the producer is ready', async () => {
    const buffer = new ForwardBuffer(3);
    let release!: () => void; const hung = new Promise<void>((r) => { release = r; });
    let ready!: () => void; const readyP = new Promise<void>((r) => { ready = r; });
    const sent: string[][] = [];
    const states: boolean[] = [];
    const { out, log } = lines();
    const f = startForwarder({
      buffer, ready: readyP, log, stallMs: 50, onOutage: (d) => states.push(d),
      send: async (batch) => { sent.push(batch.map((p) => p.value.toString())); if (sent.length === 1) await hung; },
    });
    buffer.push(item('CP-1', 1)); f.notify();
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([]);
    ready();
    await waitFor(() => f.down, { what: 'stall detected' });
    // While the first batch hangs, telemetry is shed from the queue, statuses are kept.
    buffer.push(item('CP-1', 2, true)); buffer.push(item('CP-1', 3)); buffer.push(item('CP-1', 4, true)); buffer.push(item('CP-1', 5));
    expect(buffer.shed).toBe(2);
    release();
    await waitFor(() => sent.length === 2 && !f.down, { what: 'second batch' });
    expect(sent).toEqual([['CP-1:1'], ['CP-1:3', 'CP-1:5']]);
    expect(states).toEqual([true, false]);
    expect(out.filter((l) => l.level === 'warn')).toHaveLength(1);
    f.close();
  });

  it('lanes: several batches in flight, per-key order kept, a failing lane retried before anything newer of it', async () => {
    const buffer = new ForwardBuffer(100_000, 4);
    const keys = Array.from({ length: 20 }, (_, i) => `CP-${i}`);
    const badLane = laneOf('CP-3', 4);
    const delivered = new Map<string, number[]>(keys.map((k) => [k, []]));
    const ackedByDelivery: Pending[] = [];
    let inFlight = 0; let maxInFlight = 0; let failures = 3;
    const { out, log } = lines();
    const f = startForwarder({
      buffer, ready: Promise.resolve(), log, batchMax: 7,
      onDelivered: (batch) => ackedByDelivery.push(...batch),
      send: async (batch) => {
        inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await new Promise((r) => setTimeout(r, 1 + (batch.length % 3)));
          // One batch holds keys of one lane only.
          expect(new Set(batch.map((p) => laneOf(p.key, 4))).size).toBe(1);
          if (laneOf(batch[0]!.key, 4) === badLane && failures > 0) { failures--; throw new Error('NOT_LEADER_FOR_PARTITION'); }
          for (const p of batch) delivered.get(p.key)!.push(Number(p.value.toString().split(':')[1]));
        } finally { inFlight--; }
      },
    });
    for (let n = 1; n <= 30; n++) for (const k of keys) { buffer.push(item(k, n, n % 2 === 0)); f.notify(); }
    await waitFor(() => buffer.size === 0, { timeoutMs: 30_000, what: 'everything delivered' });
    for (const k of keys) expect(delivered.get(k)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // Each entry acknowledged once, none twice, none that was not delivered.
    expect(ackedByDelivery).toHaveLength(600);
    expect(new Set(ackedByDelivery).size).toBe(600);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(failures).toBe(0); // all three failures happened
    expect(out.filter((l) => l.msg === 'kafka unavailable, buffering')).toHaveLength(1);
    expect(out.filter((l) => l.msg.startsWith('kafka reachable again'))).toHaveLength(1);
    expect(f.down).toBe(false);
    f.close();
  });
});

describe('forward buffer lanes', () => {
  const item = (key: string, n: number, droppable: boolean) => ({ topic: 't', key, value: Buffer.from(`${key}:${n}`), droppable });
  const values = (ps: Pending[]) => ps.map((p) => p.value.toString());
  const twoLaneKeys = () => {
    const a = 'CP-A';
    let b = 0; while (laneOf(`CP-${b}`, 2) === laneOf(a, 2)) b++;
    return [a, `CP-${b}`] as const;
  };

  it('acks and releases only the lane named; the bound and the shedding order are global', () => {
    const [a, b] = twoLaneKeys();
    const la = laneOf(a, 2); const lb = laneOf(b, 2);
    const buf = new ForwardBuffer(4, 2);
    buf.push(item(a, 1, true)); buf.push(item(b, 1, true)); buf.push(item(a, 2, false)); buf.push(item(b, 2, false));
    expect(values(buf.take(10, la))).toEqual([`${a}:1`, `${a}:2`]);
    expect(values(buf.take(10, lb))).toEqual([`${b}:1`, `${b}:2`]);
    expect(buf.inFlight).toBe(4);
    buf.release(lb);
    buf.ack(la);
    expect(buf.size).toBe(2);
    expect(buf.inFlight).toBe(0);
    expect(values(buf.take(10, la))).toEqual([]);
    buf.ack(la); // nothing in flight there: acknowledges nothing
    expect(buf.size).toBe(2);
    // Full: the oldest droppable of any lane goes first (b:1 is older than a:3), in-flight entries never.
    for (let n = 3; n <= 6; n++) buf.push(item(a, n, true));
    expect(buf.shed).toBe(2);
    expect(values(buf.take(10, lb))).toEqual([`${b}:2`]);
    expect(values(buf.take(10, la))).toEqual([`${a}:4`, `${a}:5`, `${a}:6`]);
  });

  it('an urgent entry (the beat) goes ahead of a full backlog, is never shed, and after a failed send still goes first', () => {
    const buf = new ForwardBuffer(3);
    for (let n = 1; n <= 3; n++) buf.push(item('CP-1', n, n !== 2));
    buf.push({ ...item('gw', 1, false), urgent: true });
    for (let n = 4; n <= 6; n++) buf.push(item('CP-1', n, true));
    expect(buf.size).toBe(3);
    expect(buf.shed).toBe(4); // telemetry made room for it, oldest first
    expect(values(buf.take(2))).toEqual(['gw:1', 'CP-1:2']);
    buf.release();
    expect(values(buf.take(10))).toEqual(['gw:1', 'CP-1:2', 'CP-1:6']);
  });
});

describe('credentials', () => {
  it('verifies the right secret only', () => {
    const e = hashSecret('CP-001', 'cp', 's3cret');
    expect(verifySecret(e, 's3cret')).toBe(true);
    expect(verifySecret(e, 'nope')).toBe(false);
    expect(e.hash).not.toContain('s3cret');
  });
  it('verifies off the event loop too, and remembers only a secret that passed', async () => {
    const e = hashSecret('CP-001', 'cp', 's3cret');
    expect(await verifySecretAsync(e, 's3cret')).toBe(true);
    expect(await verifySecretAsync(e, 's3creT')).toBe(false);
    const v = new VerifiedSecrets();
    expect(v.has(e, 's3cret')).toBe(false);
    v.add(e, 's3cret');
    expect(v.has(e, 's3cret')).toBe(true);
    expect(v.has(e, 'other')).toBe(false);
    expect(v.has(hashSecret('CP-001', 'cp', 's3cret'), 's3cret')).toBe(false); // a replaced entry needs scrypt again
  });
});
