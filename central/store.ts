import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { apply, deserializeState, emptyState, serializeState, type CentralEvent, type CentralState } from './state.js';
import { StoreError } from '../lib/errors.js';
import { lineProblem, SnapshotSchema } from './journal-schema.js';

/**
 * Central's durable state: an append-only JSON-lines journal of events (`journal.jsonl`,
 * one `{"seq":N,"e":{...}}` a line) plus a snapshot (`snapshot.json`, the state after event
 * `seq`). Writes are group-committed: every line queued while a write+fsync is in flight goes
 * out in the next one, and `append` resolves once its line is on disk. When the journal grows
 * past `compactEvery` lines, the state is written to a new snapshot (temp file, fsync,
 * rename) and the journal starts afresh; replay skips journal lines the snapshot covers, so a
 * crash at any point of that loses nothing. A torn last line (crash mid-write) is dropped.
 */

/** The data dir cannot be used (unreadable snapshot, no permission): a configuration problem. */

export interface ReplayReport { snapshotSeq: number; replayed: number; tornTail: boolean; badLines: number; /** Where the bytes of a torn last line were kept. */ tornSavedTo?: string }

export interface StoreOptions {
  compactEvery?: number;
  /**
   * A running session's meter reading (a `telemetry` event) is applied to the state at once but
   * written at most this often, the latest one winning: at 1 Hz from thousands of CPs one line
   * and fsync share per reading was central's largest cost after parsing. A crash loses at most
   * this much of central's own estimate; the CP's session_end carries the true meter. Pending
   * readings are written before any other event, so the journal keeps each session's order.
   * 0: every reading is written.
   */
  meterEveryMs?: number;
}

export class Store {
  private seq = 0;
  private fd: number | undefined;
  private pending: Array<(err?: Error) => void> = [];
  private buffered = '';
  private writing: Promise<void> | undefined;
  private linesInJournal = 0;
  private last: Promise<void> = Promise.resolve();
  private closed = false;
  readonly counters = { appended: 0, fsyncs: 0, compactions: 0, write_failures: 0, refused_appends: 0, meters_superseded: 0 };
  /** Meter readings applied but not yet written, the latest per session. */
  private readonly meters = new Map<string, CentralEvent>();
  private meterTimer: NodeJS.Timeout | undefined;
  /** The first write that failed (ENOSPC, EIO, …): from then on nothing is appended, central reports itself unhealthy and refuses new work. */
  failure: Error | undefined;
  private failureListeners: Array<(err: Error) => void> = [];

  private constructor(readonly dir: string, readonly state: CentralState, private readonly opts: Required<StoreOptions>) {}

  get journalFile() { return path.join(this.dir, 'journal.jsonl'); }
  get snapshotFile() { return path.join(this.dir, 'snapshot.json'); }

  /** Opens (creating) the data dir and rebuilds the state from snapshot + journal. */
  static async open(dir: string, opts: StoreOptions = {}): Promise<{ store: Store; report: ReplayReport }> {
    try {
      await fsp.mkdir(dir, { recursive: true });
      await fsp.access(dir, fs.constants.W_OK);
    } catch (err) { throw new StoreError(`${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`); }
    lockDir(dir);
    const probe = new Store(dir, emptyState(), { compactEvery: opts.compactEvery ?? 20_000, meterEveryMs: opts.meterEveryMs ?? 5_000 });
    let replayed: Awaited<ReturnType<typeof replay>>;
    try { replayed = await replay(dir); } catch (err) {
      fs.rmSync(path.join(dir, LOCK_FILE), { force: true });
      throw err;
    }
    const { state, report, lines } = replayed;
    const store = new Store(dir, state, probe.opts);
    store.seq = Math.max(report.snapshotSeq, lastSeq(lines));
    store.linesInJournal = lines.length;
    if (report.tornTail) {
      // The torn bytes are kept beside the journal, never silently deleted.
      if (replayed.torn !== undefined) {
        report.tornSavedTo = path.join(dir, `journal.torn-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
        await fsp.writeFile(report.tornSavedTo, `${replayed.torn}\n`, { mode: 0o600 });
      }
      await store.rewriteJournal(lines);
    }
    store.fd = fs.openSync(store.journalFile, 'a');
    return { store, report };
  }

  /** Applies the events to the state at once and resolves when they are durable. */
  append(events: CentralEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store closed'));
    if (!events.length) return Promise.resolve();
    if (this.failure) {
      // Not applied either: the state must never run ahead of what a restart would rebuild.
      this.counters.refused_appends++;
      return Promise.reject(new Error(`journal write failed earlier (${this.failure.message}); event refused`));
    }
    let written = false;
    for (const e of events) {
      apply(this.state, e);
      if (e.t === 'telemetry' && this.opts.meterEveryMs > 0) { this.holdMeter(e.session_id, e); continue; }
      if (!written) { this.bufferMeters(); written = true; }
      this.bufferLine(e);
    }
    if (!written) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.pending.push((err) => (err ? reject(err) : resolve())));
    this.last = p;
    this.kick();
    return p;
  }

  private bufferLine(e: CentralEvent): void {
    this.buffered += `${JSON.stringify({ seq: ++this.seq, e })}\n`;
    this.linesInJournal++;
    this.counters.appended++;
  }

  private holdMeter(sessionId: string, e: CentralEvent): void {
    if (this.meters.delete(sessionId)) this.counters.meters_superseded++;
    this.meters.set(sessionId, e);
    this.meterTimer ??= setTimeout(() => {
      this.meterTimer = undefined;
      if (!this.closed) this.flushMeters();
    }, this.opts.meterEveryMs).unref();
  }

  /** Writes the held readings on their own (the timer, close). */
  private flushMeters(): void {
    if (!this.meters.size || this.failure) return;
    this.bufferMeters();
    this.last = new Promise<void>((resolve) => this.pending.push(() => resolve()));
    this.kick();
  }

  private bufferMeters(): void {
    for (const e of this.meters.values()) this.bufferLine(e);
    this.meters.clear();
  }

  /** Resolves when everything appended so far is on disk (batches complete in order). */
  durable(): Promise<void> { return this.last; }

  private kick(): void {
    if (this.writing) return;
    this.writing = (async () => {
      while (this.buffered) {
        const data = this.buffered;
        const waiters = this.pending;
        this.buffered = '';
        this.pending = [];
        try {
          await writeAll(this.fd!, data);
          await new Promise<void>((res, rej) => fs.fdatasync(this.fd!, (err) => (err ? rej(err) : res())));
          this.counters.fsyncs++;
          for (const w of waiters) w();
        } catch (err) {
          this.counters.write_failures++;
          this.fail(err as Error);
          for (const w of waiters) w(err as Error);
          this.buffered = '';
          for (const w of this.pending.splice(0)) w(err as Error);
          break;
        }
        if (this.linesInJournal >= this.opts.compactEvery) {
          try { await this.compact(); } catch (err) { this.counters.write_failures++; this.fail(err as Error); }
        }
      }
      this.writing = undefined;
    })();
  }

  /** Called once, on the first failed write. */
  onFailure(fn: (err: Error) => void): void { this.failureListeners.push(fn); }
  get healthy(): boolean { return !this.failure; }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = Object.assign(new Error(`${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`), { code: (err as NodeJS.ErrnoException).code });
    for (const l of this.failureListeners) l(this.failure);
  }

  /** Writes the whole state as a snapshot and starts an empty journal. */
  async compact(): Promise<void> {
    const tmp = `${this.snapshotFile}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify({ seq: this.seq, state: serializeState(this.state) }));
    const h = await fsp.open(tmp, 'r+');
    await h.datasync();
    await h.close();
    await fsp.rename(tmp, this.snapshotFile);
    await fsyncDir(this.dir);
    // Lines still buffered are written after the truncation; their seq is above the snapshot's.
    fs.closeSync(this.fd!);
    this.fd = fs.openSync(this.journalFile, 'w');
    fs.fdatasyncSync(this.fd);
    this.linesInJournal = this.buffered ? this.buffered.split('\n').length - 1 : 0;
    this.counters.compactions++;
  }

  private async rewriteJournal(lines: string[]): Promise<void> {
    const tmp = `${this.journalFile}.tmp`;
    await fsp.writeFile(tmp, lines.map((l) => `${l}\n`).join(''));
    const h = await fsp.open(tmp, 'r+');
    await h.datasync();
    await h.close();
    await fsp.rename(tmp, this.journalFile);
    await fsyncDir(this.dir);
  }

  /** Waits for queued writes, then closes the journal and releases the data dir. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flushMeters();
    clearTimeout(this.meterTimer);
    while (this.writing) await this.writing;
    this.closed = true;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    try { fs.unlinkSync(path.join(this.dir, LOCK_FILE)); } catch { /* already gone */ }
  }
}

const LOCK_FILE = 'central.lock';

/**
 * One central per data dir: two writers would interleave their journals. The lock holds the
 * owner's pid; a lock whose pid is gone (a crash) or is our own (a container restarted with
 * the same pid) is taken over.
 */
function lockDir(dir: string): void {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError(`${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const owner = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && pidAlive(owner)) {
      throw new StoreError(`${dir} is in use by another central (pid ${owner}); remove ${file} if that is wrong`);
    }
    fs.rmSync(file, { force: true });
  }
  throw new StoreError(`${dir}: cannot take the lock ${file}`);
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM'; }
  // Where /proc tells, a reused pid that is not a central does not hold the lock.
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('central'); } catch { return true; }
}

async function writeAll(fd: number, data: string): Promise<void> {
  let buf = Buffer.from(data);
  while (buf.length) {
    const n = await new Promise<number>((res, rej) => fs.write(fd, buf, 0, buf.length, null, (err, written) => (err ? rej(err) : res(written))));
    buf = buf.subarray(n);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const h = await fsp.open(dir, 'r');
    await h.sync().catch(() => undefined);
    await h.close();
  } catch { /* some file systems cannot open a directory; the rename is still atomic */ }
}

function lastSeq(lines: string[]): number {
  for (let i = lines.length - 1; i >= 0; i--) {
    try { return (JSON.parse(lines[i]!) as { seq: number }).seq; } catch { /* skip */ }
  }
  return 0;
}

/** Pure-ish replay of a data dir: snapshot, then journal lines above its seq. Any bad line stops it with a StoreError naming the file and line. */
export async function replay(dir: string): Promise<{ state: CentralState; report: ReplayReport; lines: string[]; torn?: string }> {
  let state = emptyState();
  let snapshotSeq = 0;
  const snapFile = path.join(dir, 'snapshot.json');
  let snapText: string | undefined;
  try { snapText = await fsp.readFile(snapFile, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError(`central snapshot ${snapFile} is unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (snapText !== undefined) {
    let raw: unknown;
    try { raw = JSON.parse(snapText); } catch { throw new StoreError(`central snapshot ${snapFile} is unreadable: not JSON`); }
    const r = SnapshotSchema.safeParse(raw);
    if (!r.success) throw new StoreError(`central snapshot ${snapFile} is invalid: ${r.error.issues[0]?.path.join('.') || '(root)'}: ${r.error.issues[0]?.message ?? 'invalid'}`);
    state = deserializeState((raw as { state: unknown }).state);
    snapshotSeq = r.data.seq;
  }
  const file = path.join(dir, 'journal.jsonl');
  let text = '';
  try { text = await fsp.readFile(file, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError(`central journal ${file} is unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { events, lines, tornTail, badLines, bad, torn } = parseJournal(text);
  if (bad.length) {
    const b = bad[0]!;
    throw new StoreError(`journal ${file} line ${b.line}: ${b.problem}${bad.length > 1 ? ` (and ${bad.length - 1} more bad line${bad.length > 2 ? 's' : ''})` : ''}; nothing was changed: run \`evcharging central journal check --data-dir ${dir}\` to see them and \`journal repair\` to keep every valid event`);
  }
  let replayed = 0;
  for (const { seq, e } of events) {
    if (seq <= snapshotSeq) continue;
    apply(state, e);
    replayed++;
  }
  return { state, report: { snapshotSeq, replayed, tornTail, badLines }, lines, torn };
}

export interface BadLine { line: number; problem: string; text: string }

/**
 * Parses and validates journal text. The last line may be torn by a crash mid-write (no
 * trailing newline, not a whole event): it is set aside as `torn` (the store keeps its bytes
 * in a side file, never deletes them). Any other line that is not a valid event, with a seq
 * above the line before, is listed in `bad`.
 */
export function parseJournal(text: string): { events: Array<{ seq: number; e: CentralEvent }>; lines: string[]; tornTail: boolean; badLines: number; bad: BadLine[]; torn?: string } {
  const raw = text.split('\n');
  const endsClean = text.endsWith('\n') || text === '';
  if (raw[raw.length - 1] === '') raw.pop();
  const events: Array<{ seq: number; e: CentralEvent }> = [];
  const lines: string[] = [];
  const bad: BadLine[] = [];
  let tornTail = false;
  let torn: string | undefined;
  let prevSeq = 0;
  raw.forEach((line, i) => {
    const unterminated = i === raw.length - 1 && !endsClean;
    if (unterminated) tornTail = true; // rewritten on open so the next line starts clean
    const r = lineProblem(line, prevSeq);
    if ('problem' in r) {
      if (unterminated) torn = line;
      else bad.push({ line: i + 1, problem: r.problem, text: line.slice(0, 10_000) });
      return;
    }
    prevSeq = r.seq;
    events.push({ seq: r.seq, e: r.e as CentralEvent });
    lines.push(line);
  });
  return { events, lines, tornTail, badLines: bad.length, bad, ...(torn !== undefined ? { torn } : {}) };
}

export interface JournalCheck { file: string; lines: number; valid: number; bad: BadLine[]; torn?: string; snapshot: 'none' | 'ok' | string }

/** `evcharging central journal check`: what replay would say, line by line, changing nothing. */
export async function checkJournal(dir: string): Promise<JournalCheck> {
  const file = path.join(dir, 'journal.jsonl');
  let text = '';
  try { text = await fsp.readFile(file, 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError(`central journal ${file} is unreadable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const p = parseJournal(text);
  let snapshot = 'none';
  try {
    const raw = await fsp.readFile(path.join(dir, 'snapshot.json'), 'utf8');
    let json: unknown;
    try { json = JSON.parse(raw); } catch { json = undefined; }
    const r = SnapshotSchema.safeParse(json);
    snapshot = r.success ? 'ok' : `invalid: ${json === undefined ? 'not JSON' : `${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`}`;
  } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') snapshot = `unreadable: ${(err as NodeJS.ErrnoException).code}`; }
  return { file, lines: p.lines.length + p.bad.length + (p.torn !== undefined ? 1 : 0), valid: p.events.length, bad: p.bad, ...(p.torn !== undefined ? { torn: p.torn } : {}), snapshot };
}

export interface JournalRepair extends JournalCheck { backup?: string; rejected?: string }

/**
 * `evcharging central journal repair`: keeps every valid event, in order, and moves every
 * line it drops (bad or torn) into `journal.rejected-<time>.jsonl` with its line number and
 * why; the original journal is kept as `journal.jsonl.bak-<time>`. Refused while a central
 * holds the data dir.
 */
export async function repairJournal(dir: string, now = new Date()): Promise<JournalRepair> {
  lockDir(dir);
  try {
    const c = await checkJournal(dir);
    const dropped = [...c.bad, ...(c.torn !== undefined ? [{ line: c.lines, problem: 'torn last line (crash mid-write)', text: c.torn }] : [])];
    if (!dropped.length) return c;
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    const backup = `${c.file}.bak-${stamp}`;
    const rejected = path.join(dir, `journal.rejected-${stamp}.jsonl`);
    await fsp.copyFile(c.file, backup);
    await writeDurably(rejected, dropped.map((d) => `${JSON.stringify(d)}\n`).join(''));
    const text = await fsp.readFile(c.file, 'utf8');
    await writeDurably(c.file, `${parseJournal(text).lines.join('\n')}${c.valid ? '\n' : ''}`);
    await fsyncDir(dir);
    return { ...c, backup, rejected };
  } finally {
    fs.rmSync(path.join(dir, LOCK_FILE), { force: true });
  }
}

async function writeDurably(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp`;
  await fsp.writeFile(tmp, data, { mode: 0o600 });
  const h = await fsp.open(tmp, 'r+');
  await h.datasync();
  await h.close();
  await fsp.rename(tmp, file);
}
export { StoreError };
