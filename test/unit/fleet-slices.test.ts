import { describe, expect, it } from 'vitest';
import { slices, workerNodeFlags } from '../../fleet/workers.js';

describe('fleet slices', () => {
  it('splits CPs into contiguous, even slices that cover every number once', () => {
    expect(slices(1, 10, 3)).toEqual([{ first: 1, count: 4 }, { first: 5, count: 3 }, { first: 8, count: 3 }]);
    const s = slices(7, 10_001, 4);
    expect(s.reduce((n, x) => n + x.count, 0)).toBe(10_001);
    for (let i = 1; i < s.length; i++) expect(s[i]!.first).toBe(s[i - 1]!.first + s[i - 1]!.count);
    expect(Math.max(...s.map((x) => x.count)) - Math.min(...s.map((x) => x.count))).toBeLessThanOrEqual(1);
  });
  it('never makes more workers than CPs, nor fewer than one', () => {
    expect(slices(1, 2, 8)).toEqual([{ first: 1, count: 1 }, { first: 2, count: 1 }]);
    expect(slices(1, 5, 0)).toEqual([{ first: 1, count: 5 }]);
  });
  it("workers take the fleet's node flags, but not its debugger port", () => {
    expect(workerNodeFlags(['--max-old-space-size=512', '--inspect=9229', '--cpu-prof', '--cpu-prof-dir', '/p', '--inspect-brk'])).toEqual(['--max-old-space-size=512', '--cpu-prof', '--cpu-prof-dir', '/p']);
  });
});
