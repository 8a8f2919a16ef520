import type { CentralCommandMsg } from '../protocol/index.js';
import { routeCommand, type CpDelivery } from './bridge.js';

export type CommandDropReason = 'expired' | 'stale' | 'spoofed' | 'undeliverable' | 'overflow';

export interface CommandRouterOptions {
  /** Carries a command to a CP over MQTT. */
  publish(d: CpDelivery): void;
  /** Whether the CP listens for commands right now (subscribed to its cmd topic, or an adapter attached). */
  listening(cpId: string): boolean;
  dropped(reason: CommandDropReason, cpId: string, cmd: CentralCommandMsg, detail: string): void;
  /** Commands without a deadline and older than this are not sent (a long-stopped gateway must not replay them). */
  maxAgeMs: number;
  /** How long a command for a CP that is not listening is held, when it has no deadline of its own. */
  holdMs?: number;
  /** Most commands held at once (oldest dropped beyond, counted). */
  maxHeld?: number;
}

interface Held { cpId: string; cmd: CentralCommandMsg; until: number }

/**
 * Commands from central on their way to CPs. A command is never silently lost: it is sent at
 * once when its CP listens, else held until the CP (re)subscribes — a CP reconnecting after a
 * gateway restart gets what central sent meanwhile — and dropped with a reason and a count
 * when its deadline (`expires_at`, or `holdMs` without one) passes first. No sockets, no timers:
 * the server calls `sweep(now)` on its own interval.
 */
export class CommandRouter {
  private held: Held[] = [];
  /** An OCPP (or other) adapter takes the commands of the CPs it serves instead of MQTT. */
  private adapters = new Map<string, (cmd: CentralCommandMsg) => void>();
  constructor(private readonly o: CommandRouterOptions) {}

  get heldCount(): number { return this.held.length; }

  /** Registers a non-MQTT consumer of one CP's commands; returns its removal. */
  attach(cpId: string, deliver: (cmd: CentralCommandMsg) => void): () => void {
    this.adapters.set(cpId, deliver);
    return () => { if (this.adapters.get(cpId) === deliver) this.adapters.delete(cpId); };
  }

  isAttached(cpId: string): boolean { return this.adapters.has(cpId); }

  route(key: string, cmd: CentralCommandMsg, now: number): 'sent' | 'held' | CommandDropReason {
    const r = routeCommand(key, cmd, now, this.o.maxAgeMs);
    if (!r.ok) {
      const reason = r.reason === 'expired' || r.reason === 'stale' || r.reason === 'spoofed' ? r.reason : 'spoofed';
      this.o.dropped(reason, key, cmd, r.detail);
      return reason;
    }
    if (this.deliver(r, cmd)) return 'sent';
    this.held.push({ cpId: r.cpId, cmd, until: cmd.expires_at ?? now + (this.o.holdMs ?? 60_000) });
    const max = this.o.maxHeld ?? 10_000;
    while (this.held.length > max) {
      const old = this.held.shift()!;
      this.o.dropped('overflow', old.cpId, old.cmd, `more than ${max} commands held`);
    }
    return 'held';
  }

  private deliver(d: CpDelivery, cmd: CentralCommandMsg): boolean {
    const adapter = this.adapters.get(d.cpId);
    if (adapter) { adapter(cmd); return true; }
    if (!this.o.listening(d.cpId)) return false;
    this.o.publish(d);
    return true;
  }

  /** The CP listens again: send what was held for it, in order, unless expired meanwhile. */
  ready(cpId: string, now: number): number {
    let sent = 0;
    const keep: Held[] = [];
    for (const h of this.held) {
      if (h.cpId !== cpId) { keep.push(h); continue; }
      if (now > h.until) { this.o.dropped(h.cmd.expires_at !== undefined ? 'expired' : 'undeliverable', cpId, h.cmd, 'deadline passed while held'); continue; }
      const r = routeCommand(cpId, h.cmd, now, Number.MAX_SAFE_INTEGER);
      if (r.ok && this.deliver(r, h.cmd)) sent++; else keep.push(h);
    }
    this.held = keep;
    return sent;
  }

  /** Drops held commands whose deadline passed. */
  sweep(now: number): void {
    if (!this.held.length) return;
    const keep: Held[] = [];
    for (const h of this.held) {
      if (now > h.until) this.o.dropped(h.cmd.expires_at !== undefined ? 'expired' : 'undeliverable', h.cpId, h.cmd, 'deadline passed while held');
      else keep.push(h);
    }
    this.held = keep;
  }
}
