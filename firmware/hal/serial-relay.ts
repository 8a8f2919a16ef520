import { LCUS_STATUS_QUERY, encodeLcusCommand, parseLcusStatus } from './serial-frames.js';
import type { SerialLine, Take } from './serial-line.js';

export interface RelayCounters { commands: number; queries: number; timeouts: number; mismatches: number }

export type RelayPoll =
  | { ok: true; closed: boolean }
  | { ok: false; why: 'timeout' | 'closed' };

/**
 * An LCUS-type USB relay board on one serial line. Commands are fire-and-forget (the board never
 * answers them); the feedback is the board's status query, retried on timeout.
 */
export class LcusRelay {
  readonly counters: RelayCounters = { commands: 0, queries: 0, timeouts: 0, mismatches: 0 };

  constructor(private readonly line: SerialLine, private readonly o: { channel: number; timeoutMs: number; retries: number }) {}

  async command(closed: boolean): Promise<boolean> {
    this.counters.commands++;
    return this.line.send(encodeLcusCommand(this.o.channel, closed));
  }

  async query(): Promise<RelayPoll> {
    const take = (rx: Buffer): Take<boolean> => {
      const state = parseLcusStatus(rx.toString('latin1'), this.o.channel);
      return state === undefined ? { done: false, consumed: 0 } : { done: true, value: state, consumed: rx.length };
    };
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      this.counters.queries++;
      const r = await this.line.transact(LCUS_STATUS_QUERY, take, this.o.timeoutMs);
      if (r.ok) return { ok: true, closed: r.value };
      if (r.why === 'closed') return { ok: false, why: 'closed' };
      this.counters.timeouts++;
    }
    return { ok: false, why: 'timeout' };
  }
}
