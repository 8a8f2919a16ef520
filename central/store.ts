import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { apply, deserializeState, emptyState, serializeState, type CentralEvent, type CentralState } from './state.js';
import { StoreError } from '../lib/errors.js';

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

export interface ReplayReport { snapshotSeq: number; replayed: number; tornTail: boolean; badLines: number }

export interface StoreOptions { compactEvery?: number }

export class Store {
  private seq = 0;
  private fd: number | undefined;
  private pending: Array<(err?: Error) => void> = [];
  private buffered = '';
  private writing: Promise<void> | undefined;
  private linesInJournal = 0;
  private last: Promise<void> = Promise.resolve();
  private closed = false;
  readonly counters = { appended: 0, fsyncs: 0, compactions: 0 };

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
    const probe = new Store(dir, emptyState(), { compactEvery: opts.compactEvery ?? 20_000 });
    let replayed: Awaited<ReturnType<typeof replay>>;
    try { replayed = await replay(dir); } catch (err) {
      fs.rmSync(path.join(dir, LOCK_FILE), { force: true });
      throw err;
    }
    const { state, report, lines } = replayed;
    const store = new Store(dir, state, probe.opts);
    store.seq = Math.max(report.snapshotSeq, lastSeq(lines));
    store.linesInJournal = lines.length;
    if (report.tornTail) await store.rewriteJournal(lines);
    store.fd = fs.openSync(store.journalFile, 'a');
    return { store, report };
  }

  /** Applies the events to the state at once and resolves when they are durable. */
  append(events: CentralEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store closed'));
    if (!events.length) return Promise.resolve();
    for (const e of events) {
      apply(this.state, e);
      this.buffered += `${JSON.stringify({ seq: ++this.seq, e })}\n`;
      this.linesInJournal++;
      this.counters.appended++;
    }
    const p = new Promise<void>((resolve, reject) => this.pending.push((err) => (err ? reject(err) : resolve())));
    this.last = p;
    this.kick();
    return p;
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
          for (const w of waiters) w(err as Error);
        }
        if (this.linesInJournal >= this.opts.compactEvery) await this.compact();
      }
      this.writing = undefined;
    })();
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

/** Pure-ish replay of a data dir: snapshot, then journal lines above its seq. */
export async function replay(dir: string): Promise<{ state: CentralState; report: ReplayReport; lines: string[] }> {
  let state = emptyState();
  let snapshotSeq = 0;
  try {
    const snap = JSON.parse(await fsp.readFile(path.join(dir, 'snapshot.json'), 'utf8')) as { seq: number; state: unknown };
    state = deserializeState(snap.state);
    snapshotSeq = snap.seq;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError(`central snapshot ${path.join(dir, 'snapshot.json')} is unreadable: ${(err as Error).message}`);
  }
  let text = '';
  try { text = await fsp.readFile(path.join(dir, 'journal.jsonl'), 'utf8'); } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { events, lines, tornTail, badLines } = parseJournal(text);
  let replayed = 0;
  for (const { seq, e } of events) {
    if (seq <= snapshotSeq) continue;
    apply(state, e);
    replayed++;
  }
  return { state, report: { snapshotSeq, replayed, tornTail, badLines }, lines };
}

/**
 * Parses journal text. The last line may be torn by a crash mid-write (no trailing newline or
 * not JSON): it is dropped. A bad line elsewhere is skipped and counted.
 */
export function parseJournal(text: string): { events: Array<{ seq: number; e: CentralEvent }>; lines: string[]; tornTail: boolean; badLines: number } {
  const raw = text.split('\n');
  const endsClean = text.endsWith('\n') || text === '';
  if (raw[raw.length - 1] === '') raw.pop();
  const events: Array<{ seq: number; e: CentralEvent }> = [];
  const lines: string[] = [];
  let tornTail = false;
  let badLines = 0;
  raw.forEach((line, i) => {
    const last = i === raw.length - 1;
    let parsed: { seq?: unknown; e?: unknown } | undefined;
    try { parsed = JSON.parse(line) as { seq?: unknown; e?: unknown }; } catch { parsed = undefined; }
    const ok = parsed && typeof parsed.seq === 'number' && parsed.e && typeof (parsed.e as { t?: unknown }).t === 'string';
    if (last && !endsClean) tornTail = true; // rewritten on open so the next line starts clean
    if (!ok) { if (last) tornTail = true; else badLines++; return; }
    events.push({ seq: parsed!.seq as number, e: parsed!.e as CentralEvent });
    lines.push(line);
  });
  return { events, lines, tornTail, badLines };
}
export { StoreError };
