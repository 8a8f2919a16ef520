import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseJournal, replay, Store, StoreError } from '../../central/store.js';
import { serializeState, type CentralEvent } from '../../central/state.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
const tmp = async () => { const d = await fs.mkdtemp(path.join(os.tmpdir(), 'central-store-')); dirs.push(d); return d; };
afterEach(async () => { await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true }))); });

const seen = (id: string): CentralEvent => ({ t: 'cp_seen', cp_id: id, source: 'file', at: 1 });
const line = (seq: number, e: CentralEvent) => JSON.stringify({ seq, e });

describe('central journal parsing', () => {
  it('drops a torn last line (no newline, half a JSON object)', () => {
    const text = `${line(1, seen('CP-001'))}\n${line(2, seen('CP-002'))}\n{"seq":3,"e":{"t":"cp_se`;
    const r = parseJournal(text);
    expect(r.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(r.tornTail).toBe(true);
    expect(r.badLines).toBe(0);
  });
  it('keeps a complete last line that only lacks its newline, and asks for a rewrite', () => {
    const r = parseJournal(`${line(1, seen('CP-001'))}\n${line(2, seen('CP-002'))}`);
    expect(r.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(r.tornTail).toBe(true);
  });
  it('lists every bad line in the middle with its number and why', () => {
    const r = parseJournal(`${line(1, seen('CP-001'))}\ngarbage\n{"seq":"x"}\n${line(4, seen('CP-004'))}\n`);
    expect(r.events.map((e) => e.seq)).toEqual([1, 4]);
    expect(r.badLines).toBe(2);
    expect(r.bad.map((b) => [b.line, b.problem])).toEqual([[2, 'not JSON'], [3, expect.stringMatching(/^not a journal entry/)]]);
    expect(r.tornTail).toBe(false);
  });
  it('validates every field an event needs, and the order of seqs', () => {
    const r = parseJournal([
      line(1, seen('CP-001')),
      JSON.stringify({ seq: 2, e: { t: 'session_ended', session_id: 's1' } }),
      JSON.stringify({ seq: 3, e: { t: 'telemetry', session_id: 's1', kw: 1, kwh: null, eur: 0, seq: 1 } }),
      JSON.stringify({ seq: 4, e: { t: 'made_up' } }),
      line(1, seen('CP-002')),
    ].join('\n') + '\n');
    expect(r.bad.map((b) => [b.line, b.problem])).toEqual([
      [2, expect.stringMatching(/^event session_ended: ticket/)],
      [3, expect.stringMatching(/^event telemetry: kwh/)],
      [4, 'unknown event type "made_up"'],
      [5, 'seq 1 is not above the previous line\'s 1'],
    ]);
  });
  it('an empty journal is fine', () => {
    expect(parseJournal('')).toEqual({ events: [], lines: [], tornTail: false, badLines: 0, bad: [] });
  });
});

describe('central store', () => {
  it('what was appended is there after reopening', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir);
    await store.append([seen('CP-001'), seen('CP-002')]);
    await store.append([{ t: 'cp_admin', cp_id: 'CP-002', stopped: true }]);
    await store.close();
    const again = await Store.open(dir);
    expect([...again.store.state.cps.keys()]).toEqual(['CP-001', 'CP-002']);
    expect(again.store.state.cps.get('CP-002')!.admin_stopped).toBe(true);
    expect(again.report).toMatchObject({ replayed: 3, tornTail: false, badLines: 0 });
    await again.store.close();
  });

  it('many concurrent appends are group-committed (fewer fsyncs than appends) and all durable', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir);
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.append([seen(`CP-${i}`)])));
    expect(store.counters.appended).toBe(200);
    expect(store.counters.fsyncs).toBeLessThan(200);
    await store.close();
    const { state } = await replay(dir);
    expect(state.cps.size).toBe(200);
  });

  it('durable() resolves once everything appended before it is on disk', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir);
    void store.append([seen('CP-A')]);
    void store.append([seen('CP-B')]);
    await store.durable();
    const { state } = await replay(dir);
    expect([...state.cps.keys()]).toEqual(['CP-A', 'CP-B']);
    await store.close();
  });

  it('replays a journal whose last line was torn by a crash, and appends cleanly after it', async () => {
    const dir = await tmp();
    await fs.writeFile(path.join(dir, 'journal.jsonl'), `${line(1, seen('CP-001'))}\n${line(2, seen('CP-002'))}\n{"seq":3,"e":{"t":"cp_seen","cp_id":"CP-0`);
    const { store, report } = await Store.open(dir);
    expect(report).toMatchObject({ tornTail: true, replayed: 2 });
    // The torn bytes are kept beside the journal, not deleted.
    expect(await fs.readFile(report.tornSavedTo!, 'utf8')).toBe('{"seq":3,"e":{"t":"cp_seen","cp_id":"CP-0\n');
    await store.append([seen('CP-003')]);
    await store.close();
    const text = await fs.readFile(path.join(dir, 'journal.jsonl'), 'utf8');
    const r = parseJournal(text);
    expect(r).toMatchObject({ tornTail: false, badLines: 0 });
    expect(r.events.map((e) => [e.seq, (e.e as { cp_id: string }).cp_id])).toEqual([[1, 'CP-001'], [2, 'CP-002'], [3, 'CP-003']]);
  });

  it('compacts into a snapshot and replays snapshot + newer journal lines', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir, { compactEvery: 10 });
    for (let i = 0; i < 25; i++) await store.append([seen(`CP-${i}`)]);
    await store.close();
    expect(store.counters.compactions).toBeGreaterThanOrEqual(2);
    const journalLines = (await fs.readFile(path.join(dir, 'journal.jsonl'), 'utf8')).split('\n').filter(Boolean).length;
    expect(journalLines).toBeLessThan(10);
    const { state, report } = await replay(dir);
    expect(state.cps.size).toBe(25);
    expect(report.snapshotSeq).toBeGreaterThan(0);
  });

  it('a crash between writing the snapshot and emptying the journal applies nothing twice', async () => {
    const dir = await tmp();
    // The snapshot covers seq 1-2 (CP-001 stopped); the journal still holds 1-3 and seq 2 would re-stop, seq 3 resumes.
    const { store } = await Store.open(dir);
    await store.append([seen('CP-001'), { t: 'cp_admin', cp_id: 'CP-001', stopped: true }]);
    const snap = JSON.stringify({ seq: 2, state: serializeState(store.state) });
    await store.append([{ t: 'cp_admin', cp_id: 'CP-001', stopped: false }]);
    await store.close();
    await fs.writeFile(path.join(dir, 'snapshot.json'), snap);
    const { state, report } = await replay(dir);
    expect(report).toMatchObject({ snapshotSeq: 2, replayed: 1 });
    expect(state.cps.get('CP-001')!.admin_stopped).toBe(false);
  });

  it('one central per data dir: a live owner is refused, a dead one taken over, closing releases it', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir);
    expect(await fs.readFile(path.join(dir, 'central.lock'), 'utf8')).toBe(String(process.pid));
    await store.close();
    // A lock held by a live central is respected.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'central'], { stdio: 'ignore' });
    try {
      await fs.writeFile(path.join(dir, 'central.lock'), String(other.pid));
      await expect(Store.open(dir)).rejects.toThrow(/in use by another central/);
    } finally { other.kill('SIGKILL'); }
    // A live process that is not a central (a reused pid) does not hold it.
    const stranger = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await fs.writeFile(path.join(dir, 'central.lock'), String(stranger.pid));
      await (await Store.open(dir)).store.close();
    } finally { stranger.kill('SIGKILL'); }
    // A lock left by a crashed process (a pid that does not exist) is taken over.
    await fs.writeFile(path.join(dir, 'central.lock'), '999999999');
    const again = await Store.open(dir);
    await again.store.close();
    await expect(fs.stat(path.join(dir, 'central.lock'))).rejects.toThrow();
  });

  it('a bad line in the middle stops the open with one line naming the file and line; repair keeps every valid event and says what it dropped', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'journal.jsonl');
    const text = `${line(1, seen('CP-001'))}\n{"seq":2,"e":{"t":"cp_se\n${line(3, seen('CP-003'))}\n`;
    await fs.writeFile(file, text);
    await expect(Store.open(dir)).rejects.toThrow(new RegExp(`^journal ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 2: not JSON; nothing was changed`));
    expect(await fs.readFile(file, 'utf8')).toBe(text); // untouched
    await expect(fs.stat(path.join(dir, 'central.lock'))).rejects.toThrow(); // released
    const { checkJournal, repairJournal } = await import('../../central/store.js');
    expect(await checkJournal(dir)).toMatchObject({ lines: 3, valid: 2, bad: [{ line: 2, problem: 'not JSON' }] });
    const r = await repairJournal(dir);
    expect(r.rejected).toBeDefined();
    expect(JSON.parse((await fs.readFile(r.rejected!, 'utf8')).trim())).toEqual({ line: 2, problem: 'not JSON', text: '{"seq":2,"e":{"t":"cp_se' });
    expect(await fs.readFile(r.backup!, 'utf8')).toBe(text);
    const { store } = await Store.open(dir);
    expect([...store.state.cps.keys()]).toEqual(['CP-001', 'CP-003']);
    await store.close();
  });

  it('an unreadable snapshot or data dir is a clear StoreError', async () => {
    const dir = await tmp();
    await fs.writeFile(path.join(dir, 'snapshot.json'), '{not json');
    await expect(Store.open(dir)).rejects.toBeInstanceOf(StoreError);
    const file = path.join(dir, 'a-file');
    await fs.writeFile(file, 'x');
    await expect(Store.open(path.join(file, 'sub'))).rejects.toBeInstanceOf(StoreError);
  });
});

describe('central store: meter readings', () => {
  const started = (id: string): CentralEvent => ({ t: 'session_started', session: {
    session_id: id, cp_id: 'CP-001', driver_id: 'driver-kim', request_id: `r-${id}`, status: 'ACTIVE', started_at: 1, ended_at: null, kw: 0, kwh: 0, eur: 0,
    price_eur_kwh: 0.3, end_reason: null, interrupted: false, ticket: null, confirmed: true, ticket_sent: false, pending_end: null, telemetry_seq: 0,
  } });
  const meter = (id: string, seq: number): CentralEvent => ({ t: 'telemetry', session_id: id, kw: 11, kwh: seq / 100, eur: seq * 0.003, seq });
  const journalLines = async (dir: string) => (await fs.readFile(path.join(dir, 'journal.jsonl'), 'utf8')).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { e: CentralEvent }).e);

  it('are applied at once but written at most once an interval, the latest winning', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir, { meterEveryMs: 60_000 });
    await store.append([started('s1'), started('s2')]);
    for (let i = 1; i <= 50; i++) await store.append([meter('s1', i), meter('s2', i)]);
    expect(store.state.sessions.get('s1')).toMatchObject({ kwh: 0.5, telemetry_seq: 50 });
    expect((await journalLines(dir)).filter((e) => e.t === 'telemetry')).toHaveLength(0);
    expect(store.counters.meters_superseded).toBe(98);
    await store.close(); // close writes what it held
    expect((await journalLines(dir)).filter((e) => e.t === 'telemetry')).toEqual([meter('s1', 50), meter('s2', 50)]);
    const { store: again } = await Store.open(dir);
    expect(again.state.sessions.get('s2')).toMatchObject({ kwh: 0.5, telemetry_seq: 50 });
    await again.close();
  });

  it('held readings go to disk before any later event, so a crash replays the same session', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir, { meterEveryMs: 60_000 });
    await store.append([started('s1')]);
    await store.append([meter('s1', 1)]);
    await store.append([meter('s1', 2)]);
    await store.append([{ t: 'session_confirmed', session_id: 's1' }]);
    expect((await journalLines(dir)).map((e) => e.t)).toEqual(['session_started', 'telemetry', 'session_confirmed']);
    const { state } = await replay(dir); // as after a SIGKILL: the store was never closed
    expect(state.sessions.get('s1')).toMatchObject({ kwh: 0.02, telemetry_seq: 2 });
  });

  it('the interval timer writes them without any other event', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir, { meterEveryMs: 50 });
    await store.append([started('s1'), meter('s1', 7)]);
    await waitFor(async () => (await journalLines(dir)).some((e) => e.t === 'telemetry' && e.seq === 7), { timeoutMs: 5_000, what: 'the reading on disk' });
    await store.close();
  });

  it('meterEveryMs 0 writes every reading', async () => {
    const dir = await tmp();
    const { store } = await Store.open(dir, { meterEveryMs: 0 });
    await store.append([started('s1')]);
    for (let i = 1; i <= 5; i++) await store.append([meter('s1', i)]);
    expect((await journalLines(dir)).filter((e) => e.t === 'telemetry')).toHaveLength(5);
    await store.close();
  });
});

