/**
 * Store-and-forward queue between the bridge and Kafka. Bounded: when full, the oldest queued
 * droppable (telemetry) entry is shed first; critical entries (status, acks, session_end) are
 * kept, so the queue may exceed the bound only with critical data. Pure: no I/O, no timers.
 *
 * A batch handed to the sender with `take()` is in flight: it is never shed (it may already be
 * on Kafka) and stays at the head until `ack()` (delivered) or `release()` (failed, retry it).
 */
export interface Pending { topic: string; key: string; value: Buffer; droppable: boolean }

export class ForwardBuffer {
  private queued: Pending[] = [];
  private inflight: Pending[] = [];
  shed = 0;
  constructor(private readonly max: number) {}

  push(p: Pending): void {
    this.queued.push(p);
    while (this.size > this.max) {
      const i = this.queued.findIndex((x) => x.droppable);
      if (i < 0) break;
      this.queued.splice(i, 1);
      this.shed++;
    }
  }

  /** Up to `n` entries, oldest first, now in flight. The same batch again while one is unacknowledged. */
  take(n: number): Pending[] {
    if (!this.inflight.length) this.inflight = this.queued.splice(0, n);
    return this.inflight;
  }

  /** The batch in flight was delivered. */
  ack(): void { this.inflight = []; }

  /** The batch in flight failed: back to the head of the queue, in order. */
  release(): void { this.queued.unshift(...this.inflight); this.inflight = []; }

  get size(): number { return this.queued.length + this.inflight.length; }
  get inFlight(): number { return this.inflight.length; }
}
