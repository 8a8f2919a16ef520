/**
 * The embedded bus's hold for messages nobody subscribes to yet. The broker keeps its sessions
 * in memory, so after a gateway restart the consumers' subscriptions are gone until they
 * reconnect and subscribe again; a producer reconnecting first (a driver's STOP resent by its
 * MQTT client) would publish into the void. Such messages are held, and published again as
 * soon as a matching subscription appears, or dropped with a count when their deadline
 * (`expires_at` in the payload, else `holdMs`) passes. Pure: the server does the broker I/O.
 */
export interface HeldMessage { topic: string; payload: Buffer; until: number }

/** MQTT filter match (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/'); const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** A payload's own deadline, if it carries one (requests and commands do). */
function deadlineOf(payload: Buffer): number | undefined {
  if (payload.length > 64 * 1024) return undefined;
  try {
    const v = (JSON.parse(payload.toString('utf8')) as { expires_at?: unknown }).expires_at;
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  } catch { return undefined; }
}

export class BusHold {
  private held: HeldMessage[] = [];
  constructor(private readonly holdMs = 60_000, private readonly max = 10_000, private readonly dropped: (n: number, why: 'expired' | 'overflow') => void = () => undefined) {}

  get size(): number { return this.held.length; }

  hold(topic: string, payload: Buffer, now: number): void {
    this.held.push({ topic, payload, until: deadlineOf(payload) ?? now + this.holdMs });
    if (this.held.length > this.max) { this.held.shift(); this.dropped(1, 'overflow'); }
  }

  /** A subscription appeared: the held messages it matches, in order, removed from the hold. */
  release(filters: readonly string[], now: number): HeldMessage[] {
    this.sweep(now);
    const out: HeldMessage[] = []; const keep: HeldMessage[] = [];
    for (const h of this.held) (filters.some((f) => topicMatches(f, h.topic)) ? out : keep).push(h);
    this.held = keep;
    return out;
  }

  sweep(now: number): void {
    const before = this.held.length;
    if (!before) return;
    this.held = this.held.filter((h) => now <= h.until);
    if (this.held.length < before) this.dropped(before - this.held.length, 'expired');
  }
}
