import { describe, expect, it } from 'vitest';
import { decideRequest, decideStop, REJECT_REASONS, type RequestContext } from '../../central/decisions.js';
import { newCp, type CpRecord, type SessionRecord } from '../../central/state.js';
import type { CpState } from '../../protocol/index.js';

const cp = (state: CpState, extra: Partial<CpRecord> = {}): CpRecord => ({ ...newCp('CP-001', 'engine', 0), engine_state: state, ...extra });
const session = (extra: Partial<SessionRecord> = {}): SessionRecord => ({
  session_id: 'S-1', cp_id: 'CP-001', driver_id: 'driver-a', request_id: 'r0', status: 'ACTIVE', started_at: 0, ended_at: null,
  kw: 0, kwh: 0, eur: 0, price_eur_kwh: 0.3, end_reason: null, interrupted: false, ticket: null, confirmed: true, ticket_sent: false,
  pending_end: null, telemetry_seq: -1, ...extra,
});
const ctx = (c: Partial<RequestContext>): RequestContext => ({ cp: cp('ACTIVATED'), monitor: 'OK', ...c });

describe('central decisions: a REQUEST', () => {
  it('is accepted at an ACTIVATED, free CP whose monitor is OK', () => {
    expect(decideRequest(ctx({}))).toEqual({ kind: 'accept' });
  });
  it('is accepted when no monitor ever reported (UNKNOWN counts as healthy)', () => {
    expect(decideRequest(ctx({ monitor: 'UNKNOWN' }))).toEqual({ kind: 'accept' });
  });

  const cases: Array<[string, Partial<RequestContext>, string]> = [
    ['driver already in a session', { activeOfDriver: session({ cp_id: 'CP-009' }) }, 'driver already charging'],
    ['unknown CP', { cp: undefined }, 'unknown CP'],
    ['admin stopped (engine still ACTIVATED)', { cp: cp('ACTIVATED', { admin_stopped: true }) }, 'CP stopped'],
    ['monitor says KO', { monitor: 'KO' }, 'CP faulty'],
    ['monitor DOWN', { monitor: 'DOWN' }, 'monitor down'],
    ['engine DISCONNECTED', { cp: cp('DISCONNECTED') }, 'CP disconnected'],
    ['engine FAULTY', { cp: cp('FAULTY') }, 'CP faulty'],
    ['engine STOPPED', { cp: cp('STOPPED') }, 'CP stopped'],
    ['engine SUPPLYING', { cp: cp('SUPPLYING') }, 'CP busy'],
    ['a session started at central, engine not yet SUPPLYING', { activeAtCp: session({ driver_id: 'driver-b' }) }, 'CP busy'],
  ];
  for (const [name, c, reason] of cases) {
    it(`is rejected: ${name} → "${reason}"`, () => {
      expect(decideRequest(ctx(c))).toEqual({ kind: 'reject', reason });
    });
  }
  it('covers every rejection reason', () => {
    expect(new Set(cases.map((c) => c[2]))).toEqual(new Set(REJECT_REASONS));
  });
  it('answers a repeated request_id with its first outcome, before any other check', () => {
    const previous = { request_id: 'r1', driver_id: 'driver-a', action: 'REQUEST' as const, cp_id: 'CP-001', outcome: 'ACCEPTED' as const, session_id: 'S-1' };
    // Even though the driver now has an active session (the one this request started).
    expect(decideRequest(ctx({ previous, activeOfDriver: session(), activeAtCp: session() }))).toEqual({ kind: 'repeat', previous });
  });
  it('puts the driver check before the CP checks', () => {
    expect(decideRequest(ctx({ cp: undefined, activeOfDriver: session() }))).toEqual({ kind: 'reject', reason: 'driver already charging' });
  });
});

describe('central decisions: a STOP', () => {
  it('stops the driver\'s active session', () => {
    const s = session();
    expect(decideStop(s)).toEqual({ kind: 'stop', session: s });
  });
  it('is rejected when the driver has none', () => {
    expect(decideStop(undefined)).toEqual({ kind: 'reject', reason: 'no active session' });
  });
});
