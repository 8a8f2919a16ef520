import { describe, expect, it } from 'vitest';
import { TickScheduler } from '../../fleet/scheduler.js';

describe('fleet tick scheduler', () => {
  it('spreads members evenly over the slots and ticks each once a period with the elapsed time', () => {
    let now = 0;
    const sched = new TickScheduler(1_000, 10, () => now);
    const ticks = new Map<number, number[]>();
    for (let i = 0; i < 1_000; i++) sched.add((dt) => ticks.set(i, [...(ticks.get(i) ?? []), dt]));
    expect(sched.size).toBe(1_000);
    const perSlot: number[] = [];
    for (let slot = 0; slot < 10; slot++) {
      now += 100;
      const before = [...ticks.values()].reduce((n, t) => n + t.length, 0);
      sched.runSlot();
      perSlot.push([...ticks.values()].reduce((n, t) => n + t.length, 0) - before);
    }
    expect(perSlot).toEqual(Array(10).fill(100)); // 100 members a slot: no burst of 1,000
    expect([...ticks.values()].every((t) => t.length === 1)).toBe(true);
    for (let slot = 0; slot < 10; slot++) { now += 100; sched.runSlot(); }
    // The second tick of every member reports one full period since its first.
    expect([...ticks.values()].every((t) => t[1] === 1_000)).toBe(true);
  });

  it('removes members, and a new member goes to the emptiest slot', () => {
    let now = 0;
    const sched = new TickScheduler(100, 2, () => now);
    const seen: string[] = [];
    const a = sched.add(() => seen.push('a'));
    sched.add(() => seen.push('b'));
    sched.remove(a);
    sched.add(() => seen.push('c')); // fills the slot 'a' left
    now = 50; sched.runSlot();
    now = 100; sched.runSlot();
    expect(seen.sort()).toEqual(['b', 'c']);
    expect(sched.size).toBe(2);
  });
});
