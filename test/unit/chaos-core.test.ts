import { describe, expect, it } from 'vitest';
import { isProblemLine, verdict, type Observations } from '../../chaos/invariants.js';
import { lastRecovery, makeSchedule, rng, type Target } from '../../chaos/schedule.js';

const targets: Target[] = [
  { name: 'gateway', kind: 'gateway' }, { name: 'central', kind: 'central' },
  { name: 'CP-001', kind: 'engine' }, { name: 'monitor-CP-001', kind: 'monitor' }, { name: 'driver-alice', kind: 'driver' },
];

describe('chaos schedule (pure, seeded)', () => {
  it('the same seed gives the same schedule; another seed another one', () => {
    const o = { seed: 7, durationMs: 120_000, targets, kafka: true, links: ['cps'], meanGapMs: 2_000 };
    expect(makeSchedule(o)).toEqual(makeSchedule(o));
    expect(makeSchedule({ ...o, seed: 8 })).not.toEqual(makeSchedule(o));
    expect(rng(1)()).toBe(rng(1)());
  });

  it('faults lie inside the duration, about duration/gap of them, every kind drawn, a target never faulted while it is down', () => {
    const f = makeSchedule({ seed: 3, durationMs: 600_000, targets, kafka: true, links: ['cps', 'drivers'], meanGapMs: 2_500 });
    expect(f.length).toBeGreaterThan(150);
    expect(f.length).toBeLessThan(350);
    expect(f.every((x) => x.at >= 0 && x.at < 600_000 && x.downMs >= 500 && x.downMs <= 6_000)).toBe(true);
    expect(new Set(f.map((x) => x.kind))).toEqual(new Set(['kill', 'pause-kafka', 'cut-link']));
    expect(new Set(f.filter((x) => x.kind === 'kill').map((x) => x.target))).toEqual(new Set(targets.map((t) => t.name)));
    const downUntil = new Map<string, number>();
    for (const x of f) {
      expect(x.at).toBeGreaterThan(downUntil.get(x.target) ?? -1);
      downUntil.set(x.target, x.at + x.downMs);
    }
    expect(lastRecovery(f)).toBe(Math.max(...f.map((x) => x.at + x.downMs)));
  });

  it('no Kafka, no links: only kills', () => {
    const f = makeSchedule({ seed: 1, durationMs: 60_000, targets, kafka: false, links: [], meanGapMs: 1_000 });
    expect(f.every((x) => x.kind === 'kill')).toBe(true);
  });
});

describe('chaos verdict (pure)', () => {
  const clean = (): Observations => ({
    records: [{ cp_id: 'CP-001', session_id: 'S1', kwh: 1.2344, eur: 0.4321, reason: 'driver_stop', at: 1000 }],
    supplies: [{ cp_id: 'CP-001', session_id: 'S1', driver_id: 'd', firstSeen: 0, lastSeen: 9_000 }],
    sessions: [{ session_id: 'S1', cp_id: 'CP-001', driver_id: 'd', status: 'COMPLETED', started_at: 0, ticket: { kwh: 1.2344, eur: 0.43, reason: 'driver_stop', interrupted: false } }],
    deaths: [{ name: 'CP-001', at: 5, how: 'SIGKILL', expected: true }],
    logProblems: [], drivers: [{ name: 'd', alive: true, lastProgressAt: 99_000, following: true }],
    convergence: [{ cp_id: 'CP-001', ms: 300 }], at: 100_000,
  });
  const bounds = { supplyMs: 30_000, stuckMs: 30_000, convergeMs: 20_000 };

  it('a clean run: every invariant holds, with figures', () => {
    const v = verdict(clean(), bounds);
    expect(v.violations).toEqual([]);
    expect(v.invariants).toHaveLength(6);
    expect(v.invariants.every((i) => i.ok && i.figures.length > 0)).toBe(true);
    expect(v.invariants[3]!.figures).toMatch(/p50 0\.30 s, p99 0\.30 s/);
  });

  it('each broken invariant is a violation with its moment', () => {
    const o = clean();
    o.sessions[0]!.ticket = { kwh: 1.1, eur: 0.39, reason: 'driver_stop', interrupted: false }; // billed ≠ metered
    o.supplies.push({ cp_id: 'CP-002', session_id: 'S2', firstSeen: 10_000, lastSeen: 90_000 }); // orphan, unknown to central
    o.sessions.push({ session_id: 'S3', cp_id: 'CP-003', driver_id: 'e', status: 'ACTIVE', started_at: 50_000, ticket: null });
    o.drivers.push({ name: 'e', alive: true, lastProgressAt: 20_000, following: false });
    o.convergence.push({ cp_id: 'CP-002', ms: null });
    o.deaths.push({ name: 'gateway', at: 70_000, how: 'code 1', expected: false });
    o.logProblems.push({ name: 'central', at: 80_000, line: '{"level":50,"msg":"journal write failed"}' });
    const v = verdict(o, bounds);
    const kinds = v.violations.map((x) => x.invariant);
    expect(new Set(kinds)).toEqual(new Set(['billing', 'orphan', 'driver', 'convergence', 'death', 'log']));
    expect(v.invariants.filter((i) => !i.ok)).toHaveLength(6);
    expect(v.violations.find((x) => x.invariant === 'orphan')).toMatchObject({ at: 40_000 });
    expect(v.violations.map((x) => x.at)).toEqual([...v.violations.map((x) => x.at)].sort((a, b) => a - b));
  });

  it('an interrupted ticket with a reason may differ from the record; a supply without a record needs an interrupted ticket', () => {
    const o = clean();
    o.sessions[0]!.ticket = { kwh: 1.0, eur: 0.35, reason: 'unreachable', interrupted: true };
    o.records = [];
    expect(verdict(o, bounds).violations).toEqual([]);
    o.sessions[0]!.ticket = { kwh: 1.0, eur: 0.35, reason: 'full', interrupted: false };
    expect(verdict(o, bounds).violations.map((x) => x.invariant)).toEqual(['billing']);
  });

  it('problem lines: pino error/fatal, stack frames, uncaught errors and node warnings; not info lines or driver output', () => {
    expect(isProblemLine('{"level":50,"msg":"x"}')).toBe(true);
    expect(isProblemLine('{"level":60,"msg":"x"}')).toBe(true);
    expect(isProblemLine('{"level":40,"msg":"x"}')).toBe(false);
    expect(isProblemLine('    at Object.<anonymous> (/app/x.js:10:5)')).toBe(true);
    expect(isProblemLine('TypeError: cannot read x')).toBe(true);
    expect(isProblemLine('(node:123) MaxListenersExceededWarning: Possible EventTarget memory leak detected.')).toBe(true);
    expect(isProblemLine('driver-alice CP-001 INTERRUPTED 1.00 kWh 0.35 € reason fault')).toBe(false);
  });
});
