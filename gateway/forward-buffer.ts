/**
 * Store-and-forward queue between the bridge and Kafka. Bounded: when full, the oldest queued
 * droppable (telemetry) entry is shed first; critical entries (status, acks, session_end) are
 * kept, so the queue may exceed the bound only with critical data. Pure: no I/O, no timers.
 *
 * A batch handed to the sender with `take()` is in flight: it is never shed (it may already be
 * on Kafka) and stays at the head until `ack()` (delivered) or `release()` (failed, retry it).
 *
 * Critical and droppable entries wait in two FIFOs (so shedding is O(1) even with 100,000
 * waiting); `take()` merges them back in arrival order.
 */
export interface Pending {
  topic: string; key: string; value: Buffer; droppable: boolean;
  /** Status, ack, session_end: someone waits for it to be on the bus. */
  critical?: boolean;
  /** Called once the bus has it (the sink acknowledges the CP then). */
  onBus?: () => void;
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

export class ForwardBuffer {
  private critical = new Fifo();
  private droppable = new Fifo();
  private inflight: Entry[] = [];
  private arrivals = 0;
  shed = 0;
  constructor(private readonly max: number) {}

  push(p: Pending): void {
    const e: Entry = { ...p, n: this.arrivals++ };
    (p.droppable ? this.droppable : this.critical).push(e);
    while (this.size > this.max && this.droppable.length) {
      this.droppable.shift();
      this.shed++;
    }
  }

  /** Up to `n` entries, oldest first, now in flight. The same batch again while one is unacknowledged. */
  take(n: number): Pending[] {
    if (!this.inflight.length) {
      while (this.inflight.length < n) {
        const c = this.critical.peek(); const d = this.droppable.peek();
        if (!c && !d) break;
        this.inflight.push((!d || (c && c.n < d.n) ? this.critical : this.droppable).shift()!);
      }
    }
    return this.inflight;
  }

  /** The batch in flight was delivered. */
  ack(): void { this.inflight = []; }

  /** The batch in flight failed: back to the head of the queue, in order. */
  release(): void {
    this.critical.unshift(this.inflight.filter((e) => !e.droppable));
    this.droppable.unshift(this.inflight.filter((e) => e.droppable));
    this.inflight = [];
  }

  get size(): number { return this.critical.length + this.droppable.length + this.inflight.length; }
  get inFlight(): number { return this.inflight.length; }
}
