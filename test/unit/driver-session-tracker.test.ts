import { describe, expect, it } from 'vitest';
import { parseRequestFile } from '../../driver/request-file.js';
import {
  describeUpdate, initialTracker, invalidLines, onTick, onUpdate, queried, requested, stopSent, summaryLine, type TrackerState,
} from '../../driver/session-tracker.js';
import { PROTOCOL_VERSION, type DriverUpdateMsg, type Ticket } from '../../protocol/index.js';

const D = 'driver-alice';
const upd = (m: Partial<DriverUpdateMsg> & Pick<DriverUpdateMsg, 'status'>): DriverUpdateMsg => ({ v: PROTOCOL_VERSION, driver_id: D, ts: 0, ...m });
const ticket = (over: Partial<Ticket> = {}): Ticket => ({
  session_id: 'S1', cp_id: 'CP-001', driver_id: D, kwh: 3.2, eur: 1.12, price_eur_kwh: 0.35,
  started_at: 1000, ended_at: 121_000, duration_s: 120, reason: 'full', interrupted: false, ...over,
});
const LIM = { requestTimeoutMs: 5000, maxChargeMs: 10_000 };

describe('request file (pure)', () => {
  it('keeps CP ids in order, ignores blanks and comments, reports invalid lines with their numbers', () => {
    const r = parseRequestFile('# header\nCP-001\n\n  CP-002  # trailing comment\nCP 3\nCP/4\r\nCP-005\n');
    expect(r.requests).toEqual([{ line: 2, cpId: 'CP-001' }, { line: 4, cpId: 'CP-002' }, { line: 7, cpId: 'CP-005' }]);
    expect(r.invalid.map((i) => [i.line, i.text])).toEqual([[5, 'CP 3'], [6, 'CP/4']]);
    expect(r.invalid[0]!.reason).toBe('more than one word');
    expect(parseRequestFile('')).toEqual({ requests: [], invalid: [] });
  });
});

describe('driver session tracker (pure)', () => {
  const start = (): TrackerState => requested(initialTracker(D), 'R1', 'CP-001', 0);

  it('formats each update on one line', () => {
    expect(describeUpdate(upd({ status: 'IN_PROGRESS', cp_id: 'CP-001', kw: 11, kwh: 0.421, eur: 0.147 }))).toBe('CP-001 IN_PROGRESS 11.0 kW 0.42 kWh 0.15 €');
    expect(describeUpdate(upd({ status: 'ACCEPTED', cp_id: 'CP-001', session_id: 'S1' }))).toBe('CP-001 ACCEPTED session S1');
    expect(describeUpdate(upd({ status: 'REJECTED', cp_id: 'CP-001', reason: 'CP is FAULTY' }))).toBe('CP-001 REJECTED CP is FAULTY');
    expect(describeUpdate(upd({ status: 'COMPLETED', cp_id: 'CP-001', ticket: ticket() }))).toBe('CP-001 COMPLETED 3.20 kWh 1.12 € ticket S1: 0.35 €/kWh, 120 s, reason full');
    expect(describeUpdate(upd({ status: 'INTERRUPTED', kwh: 1, eur: 0.5, reason: 'fault' }))).toBe('- INTERRUPTED 1.00 kWh 0.50 € reason fault');
  });

  it('REQUEST → ACCEPTED → IN_PROGRESS → COMPLETED: one finished session in the totals, ticket amounts counted', () => {
    let s = start();
    let st = onUpdate(s, upd({ status: 'ACCEPTED', request_id: 'R1', cp_id: 'CP-001', session_id: 'S1' }), 100);
    s = st.state;
    expect(st.line).toBe(`${D} CP-001 ACCEPTED session S1`);
    expect(s.current).toMatchObject({ phase: 'charging', sessionId: 'S1', chargingSince: 100 });
    s = onUpdate(s, upd({ status: 'IN_PROGRESS', session_id: 'S1', cp_id: 'CP-001', kw: 11, kwh: 1, eur: 0.35 }), 1100).state;
    st = onUpdate(s, upd({ status: 'COMPLETED', session_id: 'S1', cp_id: 'CP-001', kwh: 9, eur: 9, ticket: ticket() }), 2000);
    expect(st.finished).toBe('completed');
    expect(st.state.current).toBeUndefined();
    expect(st.state.totals).toMatchObject({ requested: 1, sessions: 1, completed: 1, kwh: 3.2, eur: 1.12 });
    // A redelivered final update is neither printed nor counted again.
    const again = onUpdate(st.state, upd({ status: 'COMPLETED', session_id: 'S1', cp_id: 'CP-001', ticket: ticket() }), 2100);
    expect(again.line).toBeUndefined();
    expect(again.state.totals.sessions).toBe(1);
  });

  it('REJECTED while waiting ends the request as rejected; REJECTED of a STOP does not end the session', () => {
    const rej = onUpdate(start(), upd({ status: 'REJECTED', request_id: 'R1', cp_id: 'CP-001', reason: 'busy' }), 10);
    expect(rej.finished).toBe('rejected');
    expect(rej.state.totals.rejected).toBe(1);
    let s = onUpdate(start(), upd({ status: 'ACCEPTED', request_id: 'R1', session_id: 'S1' }), 10).state;
    s = stopSent(s, 'R2');
    const stopRej = onUpdate(s, upd({ status: 'REJECTED', request_id: 'R2', reason: 'not charging' }), 20);
    expect(stopRej.finished).toBeUndefined();
    expect(stopRej.state.current?.phase).toBe('stopping');
  });

  it('INTERRUPTED counts as an interrupted session', () => {
    let s = onUpdate(start(), upd({ status: 'ACCEPTED', request_id: 'R1', session_id: 'S1' }), 10).state;
    const st = onUpdate(s, upd({ status: 'INTERRUPTED', session_id: 'S1', ticket: ticket({ reason: 'fault', interrupted: true, kwh: 1, eur: 0.35 }) }), 20);
    s = st.state;
    expect(st.finished).toBe('interrupted');
    expect(s.totals).toMatchObject({ sessions: 1, interrupted: 1, completed: 0, kwh: 1 });
  });

  it("updates for other requests are printed but don't touch the current request", () => {
    const st = onUpdate(start(), upd({ status: 'COMPLETED', request_id: 'OLD', session_id: 'S0', ticket: ticket({ session_id: 'S0' }) }), 10);
    expect(st.line).toMatch(/COMPLETED/);
    expect(st.finished).toBeUndefined();
    expect(st.state.current?.requestId).toBe('R1');
    expect(st.state.totals.sessions).toBe(0);
  });

  it('no answer within the timeout: CANCEL and a QUERY, then "no session" from central finishes it as a timeout', () => {
    expect(onTick(start(), 4999, LIM).send).toBeUndefined();
    const t = onTick(start(), 5000, LIM);
    expect(t.finished).toBeUndefined();
    expect(t.line).toBe(`${D} CP-001 TIMEOUT no answer within 5000 ms, cancelling`);
    expect(t.send).toEqual([{ action: 'CANCEL', request_id: 'R1-cancel', cancels: 'R1', cp_id: 'CP-001' }, { action: 'QUERY', request_id: 'R1-q1' }]);
    expect(t.state.totals.timedOut).toBe(1);
    expect(onTick(t.state, 5100, LIM).send).toBeUndefined(); // cancelled once
    const a = onUpdate(t.state, upd({ status: 'REJECTED', request_id: 'R1-q1', reason: 'no session' }), 5200);
    expect(a.finished).toBe('timeout');
    expect(a.line).toBe(`${D} CP-001 no session started, moving on`);
    expect(a.state.current).toBeUndefined();
    // Accepted later after all (central was behind): nobody follows it, so it is stopped at once.
    const late = onUpdate(a.state, upd({ status: 'ACCEPTED', request_id: 'R1', cp_id: 'CP-001', session_id: 'S7' }), 9000);
    expect(late.send).toEqual([{ action: 'STOP', request_id: 'R1-late-stop', cp_id: 'CP-001' }]);
  });

  it('request timed out but central had accepted it: the QUERY names the running session, which is followed and stopped at the limit', () => {
    const t = onTick(start(), 5000, LIM);
    const a = onUpdate(t.state, upd({ status: 'IN_PROGRESS', request_id: 'R1-q1', cp_id: 'CP-001', session_id: 'S5', kw: 11, kwh: 1, eur: 0.35, started_at: 3000 }), 5100);
    expect(a.finished).toBeUndefined();
    expect(a.state.current).toMatchObject({ phase: 'charging', sessionId: 'S5', chargingSince: 3000, cancelled: false });
    expect(a.state.current?.check).toBeUndefined();
    const stop = onTick(a.state, 13_000, LIM);
    expect(stop.sendStop).toBe(true);
    const end = onUpdate(stopSent(stop.state, 'R2', 13_000), upd({ status: 'COMPLETED', request_id: 'R2', session_id: 'S5', ticket: ticket({ session_id: 'S5', reason: 'driver_stop' }) }), 13_500);
    expect(end.finished).toBe('completed');
    expect(end.state.totals).toMatchObject({ sessions: 1, completed: 1, timedOut: 1 });
  });

  it('a silent session is asked about, again until central answers (said once); an end it reports is printed once', () => {
    let s = onUpdate(start(), upd({ status: 'ACCEPTED', request_id: 'R1', session_id: 'S1' }), 1000).state;
    expect(onTick(s, 5999, LIM).send).toBeUndefined();
    const q = onTick(s, 6000, LIM);
    expect(q.line).toBe(`${D} CP-001 no update for 5000 ms, asking central`);
    expect(q.send).toEqual([{ action: 'QUERY', request_id: 'R1-q1' }]);
    expect(q.finished).toBeUndefined();
    const again = onTick(q.state, 11_000, LIM);
    expect(again.send).toEqual([{ action: 'QUERY', request_id: 'R1-q2' }]);
    expect(again.line).toMatch(/no answer from central within 5000 ms, asking again/);
    const third = onTick(again.state, 16_000, LIM);
    expect(third.send).toEqual([{ action: 'QUERY', request_id: 'R1-q3' }]);
    expect(third.line).toBeUndefined();
    s = third.state;
    const end = onUpdate(s, upd({ status: 'INTERRUPTED', request_id: 'R1-q3', session_id: 'S1', cp_id: 'CP-001', ticket: ticket({ reason: 'unreachable', interrupted: true }) }), 16_500);
    expect(end.finished).toBe('interrupted');
    expect(end.line).toMatch(/INTERRUPTED .* reason unreachable/);
    // The same end redelivered later (or an older check's answer) is not printed again.
    expect(onUpdate(end.state, upd({ status: 'INTERRUPTED', request_id: 'R1', session_id: 'S1', ticket: ticket() }), 17_000).line).toBeUndefined();
    expect(onUpdate(end.state, upd({ status: 'INTERRUPTED', request_id: 'R1-q2', session_id: 'S1', ticket: ticket() }), 17_000).line).toBeUndefined();
  });

  it('"driver already charging": asks central, takes the running session it names', () => {
    const r = onUpdate(start(), upd({ status: 'REJECTED', request_id: 'R1', cp_id: 'CP-001', reason: 'driver already charging' }), 100);
    expect(r.finished).toBeUndefined();
    expect(r.send).toEqual([{ action: 'QUERY', request_id: 'R1-q1' }]);
    expect(r.state.totals.rejected).toBe(1);
    const a = onUpdate(r.state, upd({ status: 'IN_PROGRESS', request_id: 'R1-q1', cp_id: 'CP-009', session_id: 'S-OLD' }), 200);
    expect(a.state.current).toMatchObject({ cpId: 'CP-009', sessionId: 'S-OLD', phase: 'charging' });
    expect(a.line).toMatch(/session S-OLD is ours: following it/);
    expect(onTick(a.state, 300, LIM).send).toBeUndefined(); // no CANCEL for the refused request
  });

  it('a STOP with no end in sight is sent again; a refused STOP asks central', () => {
    let s = onUpdate(start(), upd({ status: 'ACCEPTED', request_id: 'R1', session_id: 'S1' }), 0).state;
    s = stopSent(s, 'R2', 1000);
    s = onUpdate(s, upd({ status: 'IN_PROGRESS', session_id: 'S1' }), 5500).state;
    const again = onTick(s, 6000, LIM);
    expect(again.sendStop).toBe(true);
    expect(again.line).toMatch(/no end within 5000 ms of STOP, sending STOP again/);
    const refused = onUpdate(stopSent(again.state, 'R3', 6000), upd({ status: 'REJECTED', request_id: 'R3', reason: 'no active session' }), 6100);
    expect(refused.send).toEqual([{ action: 'QUERY', request_id: 'R1-q1' }]);
    expect(refused.finished).toBeUndefined();
  });

  it('start-up QUERY naming a running session: taken back (adopted), followed to its end', () => {
    const s = queried(initialTracker(D), 'Q1', 0);
    const a = onUpdate(s, upd({ status: 'IN_PROGRESS', request_id: 'Q1', cp_id: 'CP-001', session_id: 'S9', kw: 11, kwh: 1, eur: 0.35 }), 10);
    expect(a.adopted).toBe(true);
    expect(a.queryAnswer).toBe(true);
    expect(a.line).toBe(`${D} last session: CP-001 IN_PROGRESS 11.0 kW 1.00 kWh 0.35 €, following it`);
    expect(a.state.current).toMatchObject({ sessionId: 'S9', phase: 'charging', chargingSince: 10 });
    expect(onTick(a.state, 10_010, LIM).sendStop).toBe(true);
    const end = onUpdate(a.state, upd({ status: 'COMPLETED', request_id: 'R0', session_id: 'S9', cp_id: 'CP-001', ticket: ticket({ session_id: 'S9' }) }), 20);
    expect(end.finished).toBe('completed');
  });

  it('max charge time: asks for STOP once (stopping phase), then waits for the final update', () => {
    let s = onUpdate(start(), upd({ status: 'ACCEPTED', request_id: 'R1', session_id: 'S1' }), 0).state;
    s = onUpdate(s, upd({ status: 'IN_PROGRESS', session_id: 'S1' }), 9000).state;
    expect(onTick(s, 9999, LIM).sendStop).toBeUndefined();
    const t = onTick(s, 10_000, LIM);
    expect(t.sendStop).toBe(true);
    expect(t.line).toBe(`${D} CP-001 STOP after 10 s of charging`);
    s = stopSent(t.state, 'R2', 10_000);
    s = onUpdate(s, upd({ status: 'IN_PROGRESS', session_id: 'S1' }), 10_500).state;
    expect(onTick(s, 11_000, LIM).sendStop).toBeUndefined();
    const end = onUpdate(s, upd({ status: 'COMPLETED', request_id: 'R2', session_id: 'S1', ticket: ticket({ reason: 'driver_stop' }) }), 11_000);
    expect(end.finished).toBe('completed');
  });

  it('QUERY: the answer (same request id) is printed as the last session; a stored backlog is not taken for it; no answer times out', () => {
    let s = queried(initialTracker(D), 'Q1', 0);
    const stale = onUpdate(s, upd({ status: 'IN_PROGRESS', request_id: 'R0', cp_id: 'CP-001', session_id: 'S9', kw: 11, kwh: 1, eur: 0.35 }), 5);
    expect(stale.queryAnswer).toBeUndefined();
    expect(stale.line).toBe(`${D} CP-001 IN_PROGRESS 11.0 kW 1.00 kWh 0.35 €`);
    s = stale.state;
    const a = onUpdate(s, upd({ status: 'COMPLETED', request_id: 'Q1', cp_id: 'CP-001', session_id: 'S9', ticket: ticket({ session_id: 'S9' }) }), 10);
    expect(a.queryAnswer).toBe(true);
    expect(a.line).toBe(`${D} last session: CP-001 COMPLETED 3.20 kWh 1.12 € ticket S9: 0.35 €/kWh, 120 s, reason full`);
    expect(a.state.query).toBeUndefined();
    expect(a.state.totals.sessions).toBe(0); // an earlier run's session is not this run's
    s = queried(initialTracker(D), 'Q2', 0);
    const t = onTick(s, 5000, LIM);
    expect(t.line).toBe(`${D} last session: no answer to QUERY within 5000 ms`);
    expect(t.state.query).toBeUndefined();
  });

  it("central's estimate, then its rebill from the CP's meter: the newer ticket is printed as the final word and the totals take it; an older or equal one is a redelivery", () => {
    let s = onUpdate(start(), upd({ status: 'ACCEPTED', request_id: 'R1', cp_id: 'CP-001', session_id: 'S1' }), 100).state;
    const estimate = ticket({ kwh: 2.1, eur: 0.74, reason: 'unreachable', interrupted: true });
    let st = onUpdate(s, upd({ status: 'INTERRUPTED', session_id: 'S1', cp_id: 'CP-001', ts: 5000, ticket: estimate }), 5000);
    expect(st.finished).toBe('interrupted');
    expect(st.state.totals).toMatchObject({ sessions: 1, interrupted: 1, completed: 0, kwh: 2.1, eur: 0.74 });
    s = st.state;
    st = onUpdate(s, upd({ status: 'COMPLETED', session_id: 'S1', cp_id: 'CP-001', ts: 9000, ticket: ticket() }), 9000);
    expect(st.line).toBe(`${D} CP-001 COMPLETED 3.20 kWh 1.12 € ticket S1: 0.35 €/kWh, 120 s, reason full (rebilled from the CP's meter; replaces 2.10 kWh 0.74 € reason unreachable)`);
    expect(st.finished).toBeUndefined();
    expect(st.state.totals).toMatchObject({ sessions: 1, interrupted: 0, completed: 1 });
    expect(st.state.totals.kwh).toBeCloseTo(3.2, 9);
    expect(st.state.totals.eur).toBeCloseTo(1.12, 9);
    s = st.state;
    // The estimate redelivered late, or the rebill again: nothing printed, nothing counted.
    for (const [ts, t] of [[5000, estimate], [9000, ticket()], [12000, ticket()]] as const) {
      const r = onUpdate(s, upd({ status: t.interrupted ? 'INTERRUPTED' : 'COMPLETED', session_id: 'S1', cp_id: 'CP-001', ts, ticket: t }), 12_000);
      expect(r.line).toBeUndefined();
      expect(r.state.totals).toEqual(s.totals);
    }
    // A past session's rebill (printed at start-up, not this run's) is printed but not counted.
    let q = queried(initialTracker(D), 'Q1', 0);
    q = onUpdate(q, upd({ status: 'INTERRUPTED', request_id: 'Q1', session_id: 'S9', cp_id: 'CP-001', ts: 1, ticket: { ...estimate, session_id: 'S9' } }), 1).state;
    const later = onUpdate(q, upd({ status: 'COMPLETED', session_id: 'S9', cp_id: 'CP-001', ts: 2, ticket: ticket({ session_id: 'S9' }) }), 2);
    expect(later.line).toContain('rebilled from the CP\'s meter');
    expect(later.state.totals.sessions).toBe(0);
    expect(later.state.totals.kwh).toBe(0);
  });

  it('summary line', () => {
    let s = invalidLines(initialTracker(D), 1);
    s = { ...s, totals: { ...s.totals, sessions: 2, completed: 1, interrupted: 1, kwh: 4.5, eur: 1.58, rejected: 1, timedOut: 0 } };
    expect(summaryLine(s)).toBe(`${D} summary: 2 sessions (1 completed, 1 interrupted), 4.50 kWh, 1.58 €, 1 rejected, 0 timed out, 1 invalid line`);
  });
});
