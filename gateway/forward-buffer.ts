/**
 * Store-and-forward queue between the bridge and Kafka. Bounded: when full, the oldest queued
 * droppable (telemetry) entry is shed first; critical entries (status, acks, session_end) are
 * kept, so the queue may exceed the bound only with critical data. Pure: no I/O, no timers.
 *
 * Split into lanes by a hash of the key, so several batches can be in flight while per-key
 * order holds: a key always lands in the same lane, and each lane has at most one batch in
 * flight. A batch handed to the sender with `take(n, lane)` is in flight: it is never shed (it
 * may already be on Kafka) and stays at the head of its lane until `ack(lane)` (delivered) or
 * `release(lane)` (failed, retry it before anything newer of that lane). The bound and the
 * shedding order are global: the oldest droppable entry of any lane goes first.
 *
 * Critical and droppable entries wait in two FIFOs per lane (so shedding is O(lanes) even with
 * 100,000 waiting); `take()` merges them back in arrival order. Urgent entries (the gateway's
 * beat) wait in a third and go before both: behind a full buffer a beat would arrive as late as
 * the backlog is long, and central takes a late beat for a dead gateway.
 *
 * Each key's droppable entry still waiting (queued, not in flight) is known with the time it
 * arrived (`waitingSince`): the gateway drops a CP's newer reading at the door while its older
 * one has waited too long (server.ts, docs/gateway.md), so behind a backlog at most one
 * reading per CP waits.
 */
export interface Pending {
  topic: string; key: string; value: Buffer; droppable: boolean;
  /** Ahead of everything queued in its lane, never shed (its key must have nothing else queued whose order matters). */
  urgent?: boolean;
  /** Called once the bus has it (the sink acknowledges the CP then). */
  onBus?: () => void;
  /** When it arrived (ms), for `waitingSince`. */
  at?: number;
  /** Its number in the spool on disk, if it was spooled. */
  spooled?: number;
}

interface Entry extends Pending { n: number }

/** An array queue with a moving head: O(1) amortised push and shift. */
class Fifo {
  private items: Entry[] = [];
  private head = 0;
  get length(): number { return this.items.length - this.head; }
  peek(): Entry | undefined { return this.items[this.head]; }
  push(e: Entry): void { this.items.push(e); }
  shift(): Entry | undefined {
    const e = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) { this.items = this.items.slice(this.head); this.head = 0; }
    return e;
  }
  /** Back to the front, in order (rare: after a failed send). */
  unshift(es: Entry[]): void { this.items = es.concat(this.items.slice(this.head)); this.head = 0; }
}

interface Lane { urgent: Fifo; critical: Fifo; droppable: Fifo; inflight: Entry[] }

/** The FIFO an entry waits in: urgent, droppable, or else critical (status, acks, session_end). */
function fifoOf(l: Lane, p: Pending): Fifo { return p.urgent ? l.urgent : p.droppable ? l.droppable : l.critical; }

/** FNV-1a: cheap, stable, spreads CP ids evenly. */
export function laneOf(key: string, lanes: number): number {
  if (lanes === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

export class ForwardBuffer {
  private readonly lane: Lane[];
  private arrivals = 0;
  private total = 0;
  private flying = 0;
  /** Per key, its newest droppable entry still waiting. */
  private readonly waiting = new Map<string, Entry>();
  shed = 0;
  constructor(private readonly max: number, lanes = 1) {
    this.lane = Array.from({ length: Math.max(1, lanes) }, () => ({ urgent: new Fifo(), critical: new Fifo(), droppable: new Fifo(), inflight: [] }));
  }

  get lanes(): number { return this.lane.length; }

  /** Since when (its `at`) a droppable entry of `key` has waited, queued and not in flight; undefined if none does. */
  waitingSince(key: string): number | undefined { return this.waiting.get(key)?.at; }

  /** Takes `p` over (numbered in place, not copied: a copy per message was a measurable part of the gateway's garbage). */
  push(p: Pending): void {
    const e = p as Entry;
    e.n = this.arrivals++;
    const l = this.lane[laneOf(p.key, this.lane.length)]!;
    fifoOf(l, p).push(e);
    if (p.droppable && !p.urgent) this.waiting.set(p.key, e);
    this.total++;
    while (this.total > this.max && this.shedOldest()) { this.shed++; this.total--; }
  }

  /** An entry leaves the queue (shed, or taken): if it was its key's waiting reading, none waits now. */
  private left(e: Entry | undefined): Entry | undefined {
    if (e && this.waiting.get(e.key) === e) this.waiting.delete(e.key);
    return e;
  }

  /** Drops the oldest queued droppable entry of any lane; false when there is none. */
  private shedOldest(): boolean {
    let oldest: Lane | undefined;
    for (const l of this.lane) {
      const d = l.droppable.peek();
      if (d && (!oldest || d.n < oldest.droppable.peek()!.n)) oldest = l;
    }
    return this.left(oldest?.droppable.shift()) !== undefined;
  }

  /** Up to `n` entries of `lane`, oldest first, now in flight. The same batch again while it is unacknowledged. */
  take(n: number, lane = 0): Pending[] {
    const l = this.lane[lane]!;
    if (!l.inflight.length) {
      while (l.inflight.length < n && l.urgent.length) l.inflight.push(l.urgent.shift()!);
      while (l.inflight.length < n) {
        const c = l.critical.peek(); const d = l.droppable.peek();
        if (!c && !d) break;
        l.inflight.push(this.left((!d || (c && c.n < d.n) ? l.critical : l.droppable).shift())!);
      }
      this.flying += l.inflight.length;
    }
    return l.inflight;
  }

  /** The batch in flight on `lane` was delivered. */
  ack(lane = 0): void {
    const l = this.lane[lane]!;
    this.total -= l.inflight.length;
    this.flying -= l.inflight.length;
    l.inflight = [];
  }

  /** The batch in flight on `lane` failed: back to the head of its lane, in order. */
  release(lane = 0): void {
    const l = this.lane[lane]!;
    if (!l.inflight.length) return;
    for (const f of [l.urgent, l.critical, l.droppable]) f.unshift(l.inflight.filter((e) => fifoOf(l, e) === f));
    this.flying -= l.inflight.length;
    l.inflight = [];
  }

  get size(): number { return this.total; }
  get inFlight(): number { return this.flying; }
}
