import fs from 'node:fs';
import path from 'node:path';

/**
 * The embedded bus's durable sessions survive a gateway restart: the subscriptions of every
 * persistent-session client (the bus consumers: clean=false, fixed client id) are written to a
 * small file and put back into the broker before it listens. After a restart a producer that
 * reconnects first (a driver's STOP resent by its MQTT client, a CP's session_end) is then
 * queued for its consumers as if the broker had never gone, instead of being published to
 * nobody. Only subscriptions are kept, not queued messages: what the broker had accepted but
 * not yet delivered when it was SIGKILLed is the producer's to resend (QoS 1, unacknowledged
 * ones are resent), and commands carry their own deadline.
 *
 * Writes are coalesced (one write per turn of the event loop at most) and atomic (temporary
 * file, rename): a killed gateway leaves the previous or the next version, never half of one.
 */
export interface SessionSubscription { topic: string; qos: 0 | 1 | 2 }

export class DurableSessions {
  private readonly sessions = new Map<string, Map<string, 0 | 1 | 2>>();
  private dirty = false;

  constructor(private readonly file: string) {
    try {
      const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, SessionSubscription[]>;
      for (const [id, subs] of Object.entries(saved)) {
        if (Array.isArray(subs)) this.sessions.set(id, new Map(subs.filter((s) => typeof s?.topic === 'string').map((s) => [s.topic, s.qos ?? 1])));
      }
    } catch { /* no file yet, or unreadable: start without sessions */ }
  }

  /** Client id → its subscriptions, as loaded (to hand to the broker's persistence before it listens). */
  saved(): Array<[string, SessionSubscription[]]> {
    return [...this.sessions].map(([id, subs]) => [id, [...subs].map(([topic, qos]) => ({ topic, qos }))]);
  }

  subscribed(clientId: string, subs: readonly SessionSubscription[]): void {
    let m = this.sessions.get(clientId);
    if (!m) this.sessions.set(clientId, m = new Map());
    for (const s of subs) m.set(s.topic, s.qos);
    this.save();
  }

  unsubscribed(clientId: string, topics: readonly string[]): void {
    const m = this.sessions.get(clientId);
    if (!m) return;
    for (const t of topics) m.delete(t);
    if (!m.size) this.sessions.delete(clientId);
    this.save();
  }

  /** A client connected with a clean session: the broker dropped its old one, so do we. */
  cleared(clientId: string): void {
    if (this.sessions.delete(clientId)) this.save();
  }

  get size(): number { return this.sessions.size; }

  private save(): void {
    if (this.dirty) return;
    this.dirty = true;
    setImmediate(() => {
      this.dirty = false;
      const obj = Object.fromEntries(this.saved());
      const tmp = `${this.file}.tmp`;
      try {
        fs.mkdirSync(path.dirname(this.file), { recursive: true });
        fs.writeFileSync(tmp, JSON.stringify(obj));
        fs.renameSync(tmp, this.file);
      } catch { /* the next change writes again; a lost write costs only a resubscribe after a restart */ }
    });
  }
}
