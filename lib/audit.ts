import fs from 'node:fs';
import path from 'node:path';

/**
 * The audit log: who did what, from where, when. Every admin, registry and revocation action
 * and every refused forged or unauthenticated message is one JSON line
 * `{"at","identity","source","action","outcome","params"}` appended to a file opened in append
 * mode (O_APPEND: no write ever lands anywhere but the end) and fsynced before `record`
 * returns, so an action acknowledged to its caller is on disk. Refusals from one source are
 * rate-limited (an attacker must not fill the disk): past `burst` a minute per source and
 * action, they are counted and the count is written with the next one let through.
 * The last `keep` entries are also held in memory for `GET /audit`.
 */
export interface AuditEntry {
  at: string;
  identity: string;
  source: string;
  action: string;
  outcome: 'ok' | 'refused';
  params?: Record<string, unknown>;
  /** Refusals like this one from the same source not written since the last entry. */
  suppressed?: number;
}

export interface AuditOptions { file: string; keep?: number; burst?: number; now?: () => number }

export class AuditLog {
  private fd: number;
  private readonly recent: AuditEntry[] = [];
  private readonly buckets = new Map<string, { windowStart: number; n: number; suppressed: number }>();
  readonly counters = { written: 0, suppressed: 0, write_errors: 0 };
  private readonly keep: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(readonly o: AuditOptions) {
    fs.mkdirSync(path.dirname(o.file), { recursive: true });
    this.fd = fs.openSync(o.file, 'a', 0o600);
    this.keep = o.keep ?? 1_000;
    this.burst = o.burst ?? 20;
    this.now = o.now ?? Date.now;
    // What earlier runs wrote is still shown at GET /audit (the tail of the file).
    for (const e of readAudit(o.file).slice(-this.keep)) this.recent.push(e);
  }

  /** Appends one entry (durably). A refusal over its source's rate is only counted; returns whether it was written. */
  record(e: Omit<AuditEntry, 'at' | 'suppressed'>): boolean {
    const now = this.now();
    let suppressed: number | undefined;
    if (e.outcome === 'refused') {
      const key = `${e.source}\0${e.action}`;
      let b = this.buckets.get(key);
      if (!b || now - b.windowStart >= 60_000) {
        suppressed = b?.suppressed || undefined;
        b = { windowStart: now, n: 0, suppressed: 0 };
        if (this.buckets.size > 10_000) this.buckets.clear(); // bounded even under a spray of sources
        this.buckets.set(key, b);
      }
      if (++b.n > this.burst) { b.suppressed++; this.counters.suppressed++; return false; }
    }
    const entry: AuditEntry = { at: new Date(now).toISOString(), ...e, ...(suppressed ? { suppressed } : {}) };
    try {
      fs.writeSync(this.fd, `${JSON.stringify(entry)}\n`);
      fs.fdatasyncSync(this.fd);
      this.counters.written++;
    } catch {
      this.counters.write_errors++;
      throw new Error(`audit log ${this.o.file}: write failed`);
    }
    this.recent.push(entry);
    if (this.recent.length > this.keep) this.recent.splice(0, this.recent.length - this.keep);
    return true;
  }

  /** Newest last; filtered by action prefix or identity when given. */
  list(f: { action?: string; identity?: string; limit?: number } = {}): AuditEntry[] {
    const out = this.recent.filter((e) => (!f.action || e.action.startsWith(f.action)) && (!f.identity || e.identity === f.identity));
    return out.slice(-(f.limit ?? 200));
  }

  close(): void {
    try { fs.closeSync(this.fd); } catch { /* closed already */ }
  }
}

/** Every well-formed line of an audit file (a torn last line from a crash is skipped). */
export function readAudit(file: string): AuditEntry[] {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return []; }
  return text.split('\n').flatMap((l) => {
    if (!l) return [];
    try {
      const e = JSON.parse(l) as AuditEntry;
      return typeof e === 'object' && e && typeof e.action === 'string' ? [e] : [];
    } catch { return []; }
  });
}
