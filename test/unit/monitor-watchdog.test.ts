import { describe, expect, it } from 'vitest';
import { initialWatchdog, onAcked, onPoll, type PollResult, type WatchdogState } from '../../monitor/watchdog.js';

const OK: PollResult = { kind: 'ok' };
const MISS: PollResult = { kind: 'miss', reason: 'connection refused' };
const KO: PollResult = { kind: 'ko', reason: 'fault ground_fault' };

/** Feeds polls, acknowledging every report as central would when it is up. */
function run(polls: PollResult[], max = 2, centralUp = true) {
  let s: WatchdogState = initialWatchdog();
  const out = [];
  for (const p of polls) {
    const d = onPoll(s, p, max);
    s = centralUp && d.report ? onAcked(d.state, d.report) : d.state;
    out.push({ kind: d.report?.kind ?? 'none', engine_ok: d.report?.engine_ok, transition: d.transition, reason: d.report?.reason });
  }
  return { out, state: s };
}

describe('monitor watchdog (pure)', () => {
  it('healthy engine: a heartbeat with engine_ok every poll', () => {
    const { out } = run([OK, OK, OK]);
    expect(out.map((o) => [o.kind, o.engine_ok, o.transition])).toEqual([['heartbeat', true, undefined], ['heartbeat', true, undefined], ['heartbeat', true, undefined]]);
  });

  it('one miss is below the threshold: still a healthy heartbeat; the second miss reports the fault', () => {
    const { out } = run([OK, MISS, MISS]);
    expect(out[1]).toMatchObject({ kind: 'heartbeat', engine_ok: true, transition: undefined });
    expect(out[2]).toMatchObject({ kind: 'fault', engine_ok: false, transition: 'fault', reason: 'connection refused' });
  });

  it('KO polls count like misses, and the reason says KO', () => {
    const { out } = run([OK, KO, KO]);
    expect(out[1]).toMatchObject({ kind: 'heartbeat', engine_ok: true });
    expect(out[2]).toMatchObject({ kind: 'fault', engine_ok: false, reason: 'KO fault ground_fault', transition: 'fault' });
  });

  it('just started, no OK yet: no report below the threshold (neither KO nor vouching); the first OK is a plain healthy heartbeat, not a recovery', () => {
    const { out } = run([MISS, OK, OK]);
    expect(out[0]).toMatchObject({ kind: 'none', engine_ok: undefined });
    expect(out[1]).toMatchObject({ kind: 'heartbeat', engine_ok: true, transition: undefined });
    expect(run([MISS, MISS]).out[1]).toMatchObject({ kind: 'fault', engine_ok: false, transition: 'fault' });
  });

  it('a mix of miss and KO reaches the threshold; an OK in between resets the count', () => {
    expect(run([OK, MISS, KO]).out[2]!.kind).toBe('fault');
    const reset = run([OK, MISS, OK, MISS, OK, KO]).out;
    expect(reset.every((o) => o.kind === 'heartbeat' && o.engine_ok)).toBe(true);
  });

  it('after the fault: heartbeats with engine_ok false (no repeated fault reports), then one OK reports recovery', () => {
    const { out, state } = run([OK, MISS, MISS, MISS, KO, OK, OK]);
    expect(out.map((o) => o.kind)).toEqual(['heartbeat', 'heartbeat', 'fault', 'heartbeat', 'heartbeat', 'recovered', 'heartbeat']);
    expect(out[3]!.engine_ok).toBe(false);
    expect(out[4]).toMatchObject({ engine_ok: false, reason: 'KO fault ground_fault' });
    expect(out[5]).toMatchObject({ engine_ok: true, transition: 'recovered' });
    expect(state).toMatchObject({ faulty: false, bad: 0, acked: 'ok' });
  });

  it('threshold is configurable: 1 faults at once, 3 needs three', () => {
    expect(run([OK, MISS], 1).out[1]!.kind).toBe('fault');
    expect(run([OK, MISS, MISS, MISS], 3).out.map((o) => o.kind)).toEqual(['heartbeat', 'heartbeat', 'heartbeat', 'fault']);
  });

  it('central down during the fault: the fault report repeats until central accepts one, then heartbeats', () => {
    let s = initialWatchdog();
    const kinds: string[] = [];
    for (const [p, up] of [[OK, true], [MISS, false], [MISS, false], [MISS, false], [MISS, true], [MISS, true]] as const) {
      const d = onPoll(s, p, 2);
      kinds.push(d.report!.kind);
      s = up ? onAcked(d.state, d.report!) : d.state;
    }
    expect(kinds).toEqual(['heartbeat', 'heartbeat', 'fault', 'fault', 'fault', 'heartbeat']);
  });

  it('fault and recovery both happened while central was down: central only hears the current state (healthy)', () => {
    let s = onAcked(onPoll(initialWatchdog(), OK, 2).state, { kind: 'heartbeat', engine_ok: true });
    for (const p of [MISS, MISS, OK]) s = onPoll(s, p, 2).state;
    expect(onPoll(s, OK, 2).report).toEqual({ kind: 'heartbeat', engine_ok: true });
  });

  it('central knew of a fault, lost contact, engine recovered: the next report is recovered', () => {
    let s: WatchdogState = initialWatchdog();
    for (const p of [OK, MISS, MISS]) { const d = onPoll(s, p, 2); s = onAcked(d.state, d.report!); }
    expect(s.acked).toBe('fault');
    const d1 = onPoll(s, OK, 2); // not delivered
    const d2 = onPoll(d1.state, OK, 2);
    expect(d2.report!.kind).toBe('recovered');
    expect(d2.transition).toBeUndefined(); // the transition was logged once, at d1
  });
});
