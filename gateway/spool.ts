import fs from 'node:fs';
import path from 'node:path';

/**
 * The gateway's durable queue on disk: critical CP messages (status, ack, session_end) that
 * were acknowledged to their CP but may not be on the bus yet. One append-only file of JSON
 * lines, `{"n":7,"t":"cp.status","k":"CP-001","v":"<payload>"}` for an entry and `{"a":[7,8]}`
 * once the bus has those.
 *
 * fsync policy: group commit. Appends are written at once (write(2)); one fsync at a time
 * covers everything written before it started, and an entry counts as durable — and its CP is
 * acknowledged — only when an fsync that covers it has completed. Ack lines are not fsynced: a
 * lost ack line means the entry is sent again after a crash (at least once; central is
 * idempotent). A torn last line (killed mid-write) is ignored on replay.
 *
 * Bounded by `maxEntries` pending: beyond it `append` refuses, and the caller holds the CP's
 * acknowledgement until the bus itself has the message (back-pressure, nothing dropped).
 * Replayed on start: the pending entries come back in order. The file is rewritten with only
 * what is pending when it has grown past `compactBytes` (write a temporary file, fsync, rename),
 * and removed on a clean close with nothing pending.
 */
export interface SpoolEntry { n: number; topic: string; key: string; value: Buffer }

export interface SpoolOptions { file: string; maxEntries?: number; compactBytes?: number }

export class Spool {
  private fd: number;
  private pending = new Map<number, SpoolEntry>();
  private next = 1;
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly compactBytes: number;
  /** Entries written but not yet covered by a completed fsync, with who waits for it. */
  private unsynced: Array<() => void> = [];
  private syncing = false;
  private closed = false;
  readonly replayed: SpoolEntry[];
  stats = { appended: 0, acked: 0, fsyncs: 0, refused: 0, compactions: 0, tornLines: 0 };

  constructor(o: SpoolOptions) {
    this.maxEntries = o.maxEntries ?? 100_000;
    this.compactBytes = o.compactBytes ?? 8 * 1024 * 1024;
    fs.mkdirSync(path.dirname(o.file), { recursive: true });
    this.replayed = this.load(o.file);
    this.fd = fs.openSync(o.file, 'a');
    this.file = o.file;
    // Start from a file holding only what is pending: the old acks are no longer needed.
    this.compact();
  }

  private readonly file: string;

  private load(file: string): SpoolEntry[] {
    let text: string;
    try { text = fs.readFileSync(file, 'utf8'); } catch { return []; }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (!line) continue;
      let rec: { n?: number; t?: string; k?: string; v?: string; a?: number[] };
      try { rec = JSON.parse(line); } catch { this.stats.tornLines++; continue; }
      if (Array.isArray(rec.a)) for (const n of rec.a) this.pending.delete(n);
      else if (typeof rec.n === 'number' && rec.t && rec.k !== undefined && typeof rec.v === 'string') {
        this.pending.set(rec.n, { n: rec.n, topic: rec.t, key: rec.k, value: Buffer.from(rec.v, 'utf8') });
        this.next = Math.max(this.next, rec.n + 1);
      }
    }
    return [...this.pending.values()];
  }

  get size(): number { return this.pending.size; }
  get full(): boolean { return this.pending.size >= this.maxEntries; }

  /**
   * Writes an entry; `durable` is called once an fsync covers it. Returns its number, or
   * undefined when the spool is full (nothing written).
   */
  append(topic: string, key: string, value: Buffer, durable: () => void): number | undefined {
    if (this.closed) return undefined;
    if (this.full) { this.stats.refused++; return undefined; }
    const n = this.next++;
    this.write(`${JSON.stringify({ n, t: topic, k: key, v: value.toString('utf8') })}\n`);
    this.pending.set(n, { n, topic, key, value });
    this.stats.appended++;
    this.unsynced.push(durable);
    this.sync();
    return n;
  }

  /** The bus has these entries. */
  ack(ns: readonly number[]): void {
    const done = ns.filter((n) => this.pending.delete(n));
    if (!done.length || this.closed) return;
    this.stats.acked += done.length;
    if (this.pending.size === 0 && this.bytes > 0 && !this.syncing) { this.truncate(); return; }
    this.write(`${JSON.stringify({ a: done })}\n`);
    if (this.bytes > this.compactBytes && !this.syncing) this.compact();
  }

  private write(line: string): void {
    const buf = Buffer.from(line);
    fs.writeSync(this.fd, buf);
    this.bytes += buf.length;
  }

  /** One fsync in flight; whatever was written meanwhile waits for the next. */
  private sync(): void {
    if (this.syncing || !this.unsynced.length || this.closed) return;
    this.syncing = true;
    const waiting = this.unsynced;
    this.unsynced = [];
    fs.fsync(this.fd, (err) => {
      this.syncing = false;
      this.stats.fsyncs++;
      if (err && !this.closed) { this.unsynced.unshift(...waiting); setTimeout(() => this.sync(), 50).unref(); return; }
      for (const w of waiting) w();
      this.sync();
    });
  }

  private truncate(): void {
    fs.ftruncateSync(this.fd, 0);
    this.bytes = 0;
  }

  /** Rewrites the file with only the pending entries (temporary file, fsync, rename, reopen). */
  private compact(): void {
    const tmp = `${this.file}.tmp`;
    const lines = [...this.pending.values()].map((e) => `${JSON.stringify({ n: e.n, t: e.topic, k: e.key, v: e.value.toString('utf8') })}\n`).join('');
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, lines);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, this.file);
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a');
    this.bytes = Buffer.byteLength(lines);
    this.stats.compactions++;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { fs.fsyncSync(this.fd); } catch { /* best effort: what was fsynced before is what counts */ }
    fs.closeSync(this.fd);
    // Nothing pending: leave no file behind (a gateway stopped cleanly with everything delivered).
    if (!this.pending.size) fs.rmSync(this.file, { force: true });
  }
}
