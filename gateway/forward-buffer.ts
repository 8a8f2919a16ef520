/**
 * Store-and-forward queue between the bridge and Kafka. Bounded: when full, the oldest
 * droppable (telemetry) entry is shed first; critical entries (status, acks, session_end) are
 * kept, so the queue may exceed the bound only with critical data. Pure: no I/O, no timers.
 */
export interface Pending { topic: string; key: string; value: Buffer; droppable: boolean }

export class ForwardBuffer {
  private items: Pending[] = [];
  shed = 0;
  constructor(private readonly max: number) {}

  push(p: Pending): void {
    this.items.push(p);
    while (this.items.length > this.max) {
      const i = this.items.findIndex((x) => x.droppable);
      if (i < 0) break;
      this.items.splice(i, 1);
      this.shed++;
    }
  }

  /** The next batch, oldest first; call `ack(n)` after it was delivered. */
  peek(n: number): Pending[] { return this.items.slice(0, n); }
  ack(n: number): void { this.items.splice(0, n); }
  get size(): number { return this.items.length; }
}
