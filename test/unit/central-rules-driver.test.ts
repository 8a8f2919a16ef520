import { describe, expect, it } from 'vitest';
import type { Input } from '../../central/rules/index.js';
import type { DriverRequestMsg, GatewayBeatMsg } from '../../protocol/index.js';
import { commands, counts, logs, req, updates, v, World } from '../helpers/central-rules.js';

/** Central's rules for what drivers ask, input by input (central/rules/driver.ts). */

const beat = (gw: string, seq: number, extra: Partial<GatewayBeatMsg> = {}): Input =>
  ({ t: 'gateway_beat', key: gw, m: { v, type: 'gateway', gateway_id: gw, boot_id: 'gb1', interval_ms: 1000, cps: 1, seq, ts: 1, ...extra } });
const msg = (i: Input) => (i as { m: DriverRequestMsg }).m;

describe('central rules: REQUEST', () => {
  it('accepted: a session on disk, START_SUPPLY with a deadline (start:<id>), ACCEPTED to the driver, at the CP\'s price', () => {
    const w = new World().cp('CP-1', { price: 0.31 });
    const r = w.step(req('d1', 'REQUEST', { cp_id: 'CP-1' }));
    expect(r.events.map((e) => e.t)).toEqual(['session_started', 'request_done']);
    const s = [...w.st.durable.sessions.values()][0]!;
    expect(s).toMatchObject({ cp_id: 'CP-1', driver_id: 'd1', status: 'ACTIVE', price_eur_kwh: 0.31, confirmed: false });
    expect(commands(r)).toEqual([{ v, command_id: `start:${s.session_id}`, cp_id: 'CP-1', command: 'START_SUPPLY', session_id: s.session_id, driver_id: 'd1', expires_at: w.now + w.o.startConfirmMs, ts: w.now }]);
    expect(updates(r)).toMatchObject([{ status: 'ACCEPTED', session_id: s.session_id, cp_id: 'CP-1' }]);
    expect(counts(r)).toEqual(['requests', 'accepted']);
  });
  it('a repeated request_id gets its first answer and starts nothing', () => {
    const w = new World().cp('CP-1');
    const q = req('d1', 'REQUEST', { cp_id: 'CP-1' });
    w.step(q);
    const r = w.step(q);
    expect(r.events).toEqual([]);
    expect(commands(r)).toEqual([]);
    expect(updates(r)).toMatchObject([{ status: 'ACCEPTED', request_id: msg(q).request_id }]);
    expect(counts(r)).toContain('duplicate_requests');
  });
  it('past its expires_at: refused "request expired", nothing starts (journaled, so a repeat says the same)', () => {
    const w = new World().cp('CP-1');
    const q = req('d1', 'REQUEST', { cp_id: 'CP-1', expires_at: w.now });
    const r = w.step(q);
    expect(commands(r)).toEqual([]);
    expect(updates(r)).toMatchObject([{ status: 'REJECTED', reason: 'request expired' }]);
    expect(counts(r)).toContain('expired_requests');
    expect(w.st.durable.sessions.size).toBe(0);
    expect(updates(w.step(q, 60_000))).toMatchObject([{ status: 'REJECTED', reason: 'request expired' }]);
  });
  it('before its expires_at it is served, and the START expires no later than the driver waits', () => {
    const w = new World().cp('CP-1');
    const r = w.step(req('d1', 'REQUEST', { cp_id: 'CP-1', expires_at: w.now + 1 }));
    expect(updates(r)).toMatchObject([{ status: 'ACCEPTED' }]);
    expect(commands(r)).toMatchObject([{ command: 'START_SUPPLY', expires_at: w.now + 1 }]);
  });
  it('refused with a reason for a CP behind a silent gateway, and accepted again once it beats', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' });
    w.step(beat('GW-A', 1));
    w.now += 3001;
    expect(updates(w.step(req('d1', 'REQUEST', { cp_id: 'CP-1' })))).toMatchObject([{ status: 'REJECTED', reason: 'gateway unreachable' }]);
    w.step(beat('GW-A', 2));
    expect(updates(w.step(req('d1', 'REQUEST', { cp_id: 'CP-1' })))).toMatchObject([{ status: 'ACCEPTED' }]);
  });
  it('naming another driver than its sender: refused as forged, logged once per source, nobody answered', () => {
    const w = new World().cp('CP-1');
    const q = { ...req('alice', 'REQUEST', { cp_id: 'CP-1' }), key: 'bob' } as Input;
    const r1 = w.step(q);
    const r2 = w.step({ ...q, m: { ...msg(q), request_id: 'other' } } as Input);
    expect([...r1.out, ...r2.out, ...r1.events, ...r2.events]).toEqual([]);
    expect([...counts(r1), ...counts(r2)].filter((c) => c === 'forged_requests')).toHaveLength(2);
    expect([...logs(r1), ...logs(r2)]).toHaveLength(1);
  });
  it('rate limit per driver: a burst, then refused "rate limited" (answered at most once a second, not journaled), refilled with time', () => {
    const w = new World({ driverRate: { burst: 3, perSecond: 1 } }).cp('CP-1');
    for (let i = 0; i < 3; i++) expect(counts(w.step(req('d1', 'QUERY')))).toContain('queries');
    const r1 = w.step(req('d1', 'QUERY'));
    const r2 = w.step(req('d1', 'QUERY'), 100);
    expect(counts(r1)).toContain('rate_limited');
    expect(updates(r1)).toMatchObject([{ status: 'REJECTED', reason: 'rate limited' }]);
    expect(updates(r2)).toEqual([]);
    expect([...r1.events, ...r2.events]).toEqual([]);
    // Another driver is not held up.
    expect(counts(w.step(req('d2', 'QUERY')))).toContain('queries');
    expect(counts(w.step(req('d1', 'QUERY'), 1000))).toContain('queries');
  });
});

describe('central rules: STOP', () => {
  it('sends STOP_SUPPLY for the sender\'s own session only', () => {
    const w = new World().cp('CP-1').cp('CP-2');
    w.session('S-1', 'CP-1', 'alice');
    const r = w.step(req('alice', 'STOP'));
    expect(commands(r)).toMatchObject([{ command: 'STOP_SUPPLY', cp_id: 'CP-1', session_id: 'S-1', driver_id: 'alice' }]);
    expect(updates(w.step(req('bob', 'STOP')))).toMatchObject([{ status: 'REJECTED', reason: 'no active session' }]);
    const forged = w.step({ ...req('alice', 'STOP'), key: 'bob' } as Input);
    expect(commands(forged)).toEqual([]);
    expect(counts(forged)).toContain('forged_requests');
  });
});

describe('central rules: QUERY', () => {
  it('answers the driver\'s latest session (its ticket once ended) or "no session"', () => {
    const w = new World().cp('CP-1');
    expect(updates(w.step(req('d1', 'QUERY')))).toMatchObject([{ status: 'REJECTED', reason: 'no session' }]);
    w.session('S-1', 'CP-1', 'd1');
    expect(updates(w.step(req('d1', 'QUERY')))).toMatchObject([{ status: 'ACCEPTED', session_id: 'S-1' }]);
  });
});

describe('central rules: CANCEL', () => {
  it('of an accepted request the CP has not confirmed: closed "cancelled", STOP sent in case the START still arrives', () => {
    const w = new World().cp('CP-1');
    const q = req('d1', 'REQUEST', { cp_id: 'CP-1' });
    w.step(q);
    const s = [...w.st.durable.sessions.values()][0]!;
    const r = w.step(req('d1', 'CANCEL', { cancels: msg(q).request_id }));
    expect(r.events.map((e) => e.t)).toEqual(['request_done', 'session_ended']);
    expect(w.st.durable.sessions.get(s.session_id)).toMatchObject({ status: 'INTERRUPTED', end_reason: 'cancelled' });
    expect(commands(r)).toMatchObject([{ command: 'STOP_SUPPLY', session_id: s.session_id, cp_id: 'CP-1' }]);
    expect(updates(r)).toMatchObject([{ status: 'INTERRUPTED', reason: 'cancelled' }]);
    // The driver is free again.
    expect(updates(w.step(req('d1', 'REQUEST', { cp_id: 'CP-1' })))).toMatchObject([{ status: 'ACCEPTED' }]);
  });
  it('of a request not seen yet: refused in advance, so when it arrives nothing starts', () => {
    const w = new World().cp('CP-1');
    const q = req('d1', 'REQUEST', { cp_id: 'CP-1' });
    expect(updates(w.step(req('d1', 'CANCEL', { cancels: msg(q).request_id })))).toMatchObject([{ status: 'REJECTED', reason: 'cancelled', request_id: msg(q).request_id }]);
    const r = w.step(q);
    expect(commands(r)).toEqual([]);
    expect(updates(r)).toMatchObject([{ status: 'REJECTED', reason: 'cancelled' }]);
  });
  it('of a session the CP already supplies: stopped as a STOP would (billed by the CP\'s record)', () => {
    const w = new World().cp('CP-1');
    const s = w.session('S-1', 'CP-1', 'd1', { confirmed: true });
    const r = w.step(req('d1', 'CANCEL', { cancels: s.request_id }));
    expect(commands(r)).toMatchObject([{ command: 'STOP_SUPPLY', session_id: 'S-1' }]);
    expect(w.st.durable.sessions.get('S-1')!.status).toBe('ACTIVE');
  });
  it('of another driver\'s request: refused, counted as forged', () => {
    const w = new World().cp('CP-1');
    const s = w.session('S-1', 'CP-1', 'alice', { confirmed: false });
    const r = w.step(req('bob', 'CANCEL', { cancels: s.request_id }));
    expect(commands(r)).toEqual([]);
    expect(counts(r)).toContain('forged_requests');
    expect(updates(r)).toMatchObject([{ driver_id: 'bob', status: 'REJECTED', reason: 'not your request' }]);
    expect(w.st.durable.sessions.get('S-1')!.status).toBe('ACTIVE');
  });
  it('of an ended session: tells the driver how it ended', () => {
    const w = new World().cp('CP-1');
    const s = w.session('S-1', 'CP-1', 'd1');
    w.step({ t: 'session_end', key: 'CP-1', m: { v, type: 'session_end', cp_id: 'CP-1', session_id: 'S-1', kwh: 1, eur: 0.4, price_eur_kwh: 0.4, started_at: 1, ended_at: 2, reason: 'full', ts: 1 } });
    expect(updates(w.step(req('d1', 'CANCEL', { cancels: s.request_id })))).toMatchObject([{ status: 'COMPLETED', session_id: 'S-1' }]);
  });
});
