/**
 * One timer for a whole fleet: members are spread over `slots` buckets, one bucket runs per
 * `periodMs / slots`, so each member ticks once a period and the work is even over time
 * instead of 1,000 timers firing in a burst. Each tick gets the wall time since its last one.
 */
export class TickScheduler {
  private readonly buckets: Array<Map<number, { fn: (dtMs: number, now: number) => void; last: number }>>;
  private next = 0;
  private cursor = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly periodMs: number, private readonly slots = 10, private readonly clock: () => number = Date.now) {
    this.buckets = Array.from({ length: slots }, () => new Map());
  }

  /** Adds a member to the emptiest bucket; returns a handle for `remove`. */
  add(fn: (dtMs: number, now: number) => void): number {
    const id = this.next++;
    const bucket = this.buckets.reduce((a, b) => (b.size < a.size ? b : a));
    bucket.set(id, { fn, last: this.clock() });
    return id;
  }

  remove(id: number): void { for (const b of this.buckets) b.delete(id); }

  get size(): number { return this.buckets.reduce((n, b) => n + b.size, 0); }

  /** Runs the next bucket (the timer calls this; tests call it directly). */
  runSlot(): void {
    const bucket = this.buckets[this.cursor]!;
    this.cursor = (this.cursor + 1) % this.slots;
    const now = this.clock();
    for (const m of bucket.values()) {
      const dt = now - m.last;
      m.last = now;
      m.fn(dt, now);
    }
  }

  start(): void {
    this.timer ??= setInterval(() => this.runSlot(), this.periodMs / this.slots);
  }

  stop(): void { clearInterval(this.timer); this.timer = undefined; }
}
