import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { CentralEventSchema } from '../../central/journal-schema.js';
import { parseCpFile } from '../../central/cp-file.js';
import { apply, emptyState, serializeState, type CentralEvent } from '../../central/state.js';
import { parseJournal, replay, StoreError } from '../../central/store.js';
import { parseProfile } from '../../hw-profiles/profile.js';
import { AppError } from '../../lib/errors.js';

/**
 * Fuzzing of the files central and the engines read: the journal (10,000 generated journals:
 * valid events, mutated and truncated lines, garbage), CP files and hardware profiles
 * (10,000 each). Properties: parsing never throws anything but a clear one-line error; every
 * valid event is kept, every dropped line is reported with its number; replay of what was
 * kept never throws and matches applying the valid events; state is unchanged by bad input.
 */
const RUNS = 10_000;
const dirs: string[] = [];
afterAll(async () => { for (const d of dirs) await fs.rm(d, { recursive: true, force: true }); });

const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,10}$/);
const validEvent: fc.Arbitrary<CentralEvent> = fc.oneof(
  fc.record({ t: fc.constant('cp_seen' as const), cp_id: id, source: fc.constantFrom('engine' as const, 'file' as const, 'monitor' as const), at: fc.nat() }),
  fc.record({ t: fc.constant('cp_admin' as const), cp_id: id, stopped: fc.boolean() }),
  fc.record({ t: fc.constant('cp_status' as const), cp_id: id, state: fc.constantFrom('ACTIVATED' as const, 'SUPPLYING' as const, 'FAULTY' as const), faults: fc.constant([] as string[]), seq: fc.nat(), at: fc.nat() }),
  fc.record({ t: fc.constant('session_confirmed' as const), session_id: id }),
  fc.record({ t: fc.constant('ticket_sent' as const), session_id: id }),
  fc.record({ t: fc.constant('telemetry' as const), session_id: id, kw: fc.double({ min: 0, max: 300, noNaN: true }), kwh: fc.double({ min: 0, max: 100, noNaN: true }), eur: fc.double({ min: 0, max: 100, noNaN: true }), seq: fc.nat() }),
);
/** A line of a journal: mostly valid, else mutated, truncated or garbage. */
const lineKind = fc.oneof(
  { weight: 6, arbitrary: validEvent.map((e) => ({ ok: true as const, e })) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 80 }).filter((s) => !s.includes('\n')).map((s) => ({ ok: false as const, raw: s })) },
  { weight: 1, arbitrary: validEvent.chain((e) => fc.integer({ min: 1, max: 60 }).map((n) => ({ ok: false as const, raw: JSON.stringify({ seq: 0, e }).slice(0, n) }))) },
  { weight: 1, arbitrary: validEvent.map((e) => ({ ok: false as const, dropField: e })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ ok: false as const, raw: JSON.stringify(v) ?? 'null' })) },
);

describe('fuzz: the journal', () => {
  it(`${RUNS} generated journals: every valid event kept in order, every other line reported by number, replay never throws`, () => {
    fc.assert(fc.property(fc.array(lineKind, { maxLength: 30 }), fc.boolean(), (kinds, endNewline) => {
      let seq = 0;
      const lines: string[] = [];
      const expectValid: Array<{ seq: number; e: CentralEvent }> = [];
      const expectBad: number[] = [];
      kinds.forEach((k, i) => {
        if (k.ok) { seq++; lines.push(JSON.stringify({ seq, e: k.e })); expectValid.push({ seq, e: k.e }); return; }
        if ('dropField' in k) {
          const e = { ...k.dropField } as Record<string, unknown>;
          const key = Object.keys(e).find((x) => x !== 't')!;
          delete e[key];
          lines.push(JSON.stringify({ seq: seq + 1000, e }));
        } else lines.push(k.raw);
        expectBad.push(i + 1);
      });
      const text = lines.join('\n') + (endNewline && lines.length ? '\n' : '');
      const r = parseJournal(text);
      // A generated "bad" line can happen to be a valid event (e.g. a JSON value that is one): count on the parser's own verdicts, checked both ways.
      const reported = new Set([...r.bad.map((b) => b.line), ...(r.torn !== undefined ? [lines.length] : [])]);
      for (const n of expectBad) {
        const accepted = CentralEventSchema.safeParse((() => { try { return JSON.parse(lines[n - 1]!).e; } catch { return undefined; } })()).success;
        if (!accepted) expect(reported.has(n), `line ${n} ${lines[n - 1]} not reported`).toBe(true);
      }
      // Every valid event was kept, in order; and every kept line passes the schema.
      const keptSeqs = r.events.map((e) => e.seq);
      for (const v of expectValid) expect(keptSeqs).toContain(v.seq);
      for (const e of r.events) expect(CentralEventSchema.safeParse(e.e).success).toBe(true);
      expect([...keptSeqs].sort((a, b) => a - b)).toEqual(keptSeqs);
      expect(r.events.length + r.bad.length + (r.torn !== undefined ? 1 : 0)).toBe(lines.length);
      // Replaying what was kept never throws.
      const s = emptyState();
      for (const e of r.events) apply(s, e.e);
    }), { numRuns: RUNS });
  });

  it('replay of a data dir with any bad line refuses with a StoreError and leaves the files as they were', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fuzz-journal-'));
    dirs.push(dir);
    await fc.assert(fc.asyncProperty(fc.array(validEvent, { minLength: 1, maxLength: 5 }), fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\n')), async (events, garbage) => {
      const good = events.map((e, i) => JSON.stringify({ seq: i + 1, e }));
      const text = [good[0], garbage, ...good.slice(1)].join('\n') + '\n';
      await fs.writeFile(path.join(dir, 'journal.jsonl'), text);
      const r = parseJournal(text);
      if (!r.bad.length) return; // the garbage happened to be a valid line
      await expect(replay(dir)).rejects.toBeInstanceOf(StoreError);
      expect(await fs.readFile(path.join(dir, 'journal.jsonl'), 'utf8')).toBe(text);
    }), { numRuns: 300 });
  });
});

describe('fuzz: CP files and hardware profiles', () => {
  const goodProfile = { name: 'x', max_kw: 22, price_eur_kwh: 0.3, connector: 'Type2', phases: 3 };
  it(`${RUNS} generated CP files: parsed or refused with one clear line, never anything else`, () => {
    fc.assert(fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'), fc.string({ maxLength: 200 }),
      fc.array(fc.oneof(id, fc.record({ cp_id: fc.oneof(id, fc.string()), kw: fc.oneof(fc.double(), fc.integer()), price: fc.double() }, { requiredKeys: ['cp_id'] })), { maxLength: 8 }).map((a) => JSON.stringify(a))), (text) => {
      try {
        const out = parseCpFile(text, 'fuzz.json');
        for (const c of out) expect(c.cp_id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);
      } catch (err) {
        expect(err).toBeInstanceOf(AppError);
        expect((err as Error).message).not.toContain('\n');
        expect((err as Error).message).toMatch(/^--cp-file fuzz\.json: /);
      }
    }), { numRuns: RUNS });
  });

  it(`${RUNS} generated hardware profiles: a valid one is taken whole, anything else is one clear line naming the file`, () => {
    const mutate = fc.record({ ...Object.fromEntries(Object.keys(goodProfile).map((k) => [k, fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 1 }), fc.double())])) }, { requiredKeys: [] });
    fc.assert(fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), mutate.map((m) => ({ ...goodProfile, ...m, hal: { driver: 'sim' } }))), (raw) => {
      try {
        const p = parseProfile(raw, 'fuzz-profile.json');
        expect(Number.isFinite(p.max_kw)).toBe(true);
        expect(Number.isFinite(p.price_eur_kwh)).toBe(true);
      } catch (err) {
        expect(err).toBeInstanceOf(AppError);
        expect((err as Error).message).toMatch(/^fuzz-profile\.json: /);
        expect((err as Error).message).not.toContain('\n');
      }
    }), { numRuns: RUNS });
  });
});

void serializeState;
