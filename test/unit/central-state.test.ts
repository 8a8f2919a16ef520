import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeTicket } from '../../central/billing.js';
import { monitorStatus, reportSaysOk } from '../../central/monitors.js';
import {
  activeSessionAt, activeSessionOf, apply, deserializeState, emptyState, latestSessionOf, serializeState,
  type CentralEvent, type SessionRecord,
} from '../../central/state.js';
import { sessionUpdate } from '../../central/updates.js';
import { cpView, shownState } from '../../central/view.js';
import { DriverUpdateMsg } from '../../protocol/index.js';

const profile = { name: 'dc-50kw', max_kw: 50, price_eur_kwh: 0.49, connector: 'CCS2', phases: 3, hal: 'sim' };
const session = (id: string, extra: Partial<SessionRecord> = {}): SessionRecord => ({
  session_id: id, cp_id: 'CP-001', driver_id: 'driver-a', request_id: `r-${id}`, status: 'ACTIVE', started_at: 100, ended_at: null,
  kw: 0, kwh: 0, eur: 0, price_eur_kwh: 0.49, end_reason: null, interrupted: false, ticket: null, confirmed: false, ticket_sent: false,
  pending_end: null, telemetry_seq: -1, ...extra,
});
const run = (events: CentralEvent[]) => { const s = emptyState(); for (const e of events) apply(s, e); return s; };
const ticket = (id: string, kwh: number, reason: 'full' | 'fault' = 'full') =>
  makeTicket({ session_id: id, cp_id: 'CP-001', driver_id: 'driver-a', kwh, price_eur_kwh: 0.49, started_at: 100, ended_at: 5000, reason });

describe('central state reducer', () => {
  it('finds the running session of a CP and of a driver from its index, as a scan of every session would, after any events and a reload', () => {
    const scanAt = (st: ReturnType<typeof emptyState>, cp: string) => [...st.sessions.values()].find((x) => x.cp_id === cp && x.status === 'ACTIVE');
    const scanOf = (st: ReturnType<typeof emptyState>, d: string) => [...st.sessions.values()].find((x) => x.driver_id === d && x.status === 'ACTIVE');
    const ids = ['S-1', 'S-2', 'S-3', 'S-4', 'S-5'];
    const cps = ['CP-1', 'CP-2'];
    const drivers = ['d1', 'd2'];
    const ev = fc.oneof(
      fc.record({ id: fc.constantFrom(...ids), cp: fc.constantFrom(...cps), d: fc.constantFrom(...drivers) }).map(({ id, cp, d }): CentralEvent => ({ t: 'session_started', session: session(id, { cp_id: cp, driver_id: d }) })),
      fc.constantFrom(...ids).map((id): CentralEvent => ({ t: 'session_ended', session_id: id, ticket: ticket(id, 1) })),
      fc.constantFrom(...ids).map((id): CentralEvent => ({ t: 'ticket_sent', session_id: id })),
      fc.constantFrom(...ids).map((id): CentralEvent => ({ t: 'pruned', request_ids: [], session_ids: [id] })),
    );
    fc.assert(fc.property(fc.array(ev, { maxLength: 40 }), (events) => {
      const st = run(events);
      for (const x of [st, deserializeState(JSON.parse(JSON.stringify(serializeState(st))))]) {
        for (const cp of cps) expect(activeSessionAt(x, cp)?.session_id).toBe(scanAt(x, cp)?.session_id);
        for (const d of drivers) expect(activeSessionOf(x, d)?.session_id).toBe(scanOf(x, d)?.session_id);
      }
    }), { numRuns: 300 });
  });
  it('registers a CP on announce and keeps its status by seq', () => {
    const s = run([
      { t: 'cp_announced', cp_id: 'CP-001', profile, boot_id: 'b1', health_port: 8001, at: 1 },
      { t: 'cp_status', cp_id: 'CP-001', state: 'ACTIVATED', faults: [], seq: 10, at: 2 },
    ]);
    expect(s.cps.get('CP-001')).toMatchObject({ engine_state: 'ACTIVATED', status_seq: 10, profile, boot_id: 'b1', health_port: 8001, source: 'engine' });
  });
  it('every announce (a new boot or a reconnect after a last will) resets the status sequence', () => {
    const s = run([
      { t: 'cp_announced', cp_id: 'CP-001', profile, boot_id: 'b1', at: 1 },
      { t: 'cp_status', cp_id: 'CP-001', state: 'ACTIVATED', faults: [], seq: 10, at: 2 },
      { t: 'cp_announced', cp_id: 'CP-001', profile, boot_id: 'b2', at: 3 },
    ]);
    expect(s.cps.get('CP-001')!.status_seq).toBe(-1);
    apply(s, { t: 'cp_status', cp_id: 'CP-001', state: 'DISCONNECTED', faults: [], seq: 9_999_999, at: 4 }); // a last will
    apply(s, { t: 'cp_announced', cp_id: 'CP-001', profile, boot_id: 'b2', at: 5 }); // same boot, reconnected
    expect(s.cps.get('CP-001')!.status_seq).toBe(-1);
  });
  it('a CP seen by a monitor or the CP file is listed DISCONNECTED; a later cp_seen does not overwrite it', () => {
    const s = run([
      { t: 'cp_seen', cp_id: 'CP-002', source: 'monitor', at: 1 },
      { t: 'cp_seen', cp_id: 'CP-002', source: 'file', profile, at: 2 },
    ]);
    expect(s.cps.get('CP-002')).toMatchObject({ engine_state: 'DISCONNECTED', source: 'monitor', profile });
  });
  it('admin stop and resume', () => {
    const s = run([{ t: 'cp_seen', cp_id: 'CP-001', source: 'file', at: 1 }, { t: 'cp_admin', cp_id: 'CP-001', stopped: true }]);
    expect(s.cps.get('CP-001')!.admin_stopped).toBe(true);
    apply(s, { t: 'cp_admin', cp_id: 'CP-001', stopped: false });
    expect(s.cps.get('CP-001')!.admin_stopped).toBe(false);
  });
  it('telemetry updates an active session, in seq order only', () => {
    const s = run([
      { t: 'session_started', session: session('S-1') },
      { t: 'telemetry', session_id: 'S-1', kw: 50, kwh: 2, eur: 0.98, seq: 5 },
      { t: 'telemetry', session_id: 'S-1', kw: 49, kwh: 1, eur: 0.49, seq: 4 },
    ]);
    expect(s.sessions.get('S-1')).toMatchObject({ kw: 50, kwh: 2, eur: 0.98, telemetry_seq: 5 });
  });
  it('bills a session once: a second session_ended keeps the first ticket', () => {
    const s = run([
      { t: 'session_started', session: session('S-1') },
      { t: 'session_ended', session_id: 'S-1', ticket: ticket('S-1', 10) },
      { t: 'session_ended', session_id: 'S-1', ticket: ticket('S-1', 99, 'fault') },
      { t: 'telemetry', session_id: 'S-1', kw: 50, kwh: 200, eur: 98, seq: 9 },
    ]);
    expect(s.sessions.get('S-1')).toMatchObject({ status: 'COMPLETED', kwh: 10, eur: 4.9, end_reason: 'full', interrupted: false, kw: 0 });
    expect(s.sessions.get('S-1')!.ticket!.kwh).toBe(10);
  });
  it('an estimate is replaced once by the CP\'s record (session_rebilled), and it survives a snapshot; a metered ticket is never replaced', () => {
    const s = run([
      { t: 'session_started', session: session('S-1') },
      { t: 'session_ended', session_id: 'S-1', ticket: ticket('S-1', 2, 'fault'), estimate: true },
      { t: 'ticket_sent', session_id: 'S-1' },
      { t: 'session_rebilled', session_id: 'S-1', ticket: ticket('S-1', 2.369) },
      { t: 'session_rebilled', session_id: 'S-1', ticket: ticket('S-1', 50) },
      { t: 'session_started', session: session('S-2') },
      { t: 'session_ended', session_id: 'S-2', ticket: ticket('S-2', 1) },
      { t: 'session_rebilled', session_id: 'S-2', ticket: ticket('S-2', 9) },
    ]);
    expect(s.sessions.get('S-1')).toMatchObject({ status: 'COMPLETED', kwh: 2.369, eur: 1.16, end_reason: 'full', interrupted: false, estimated: false, ticket_sent: false, ticket: { kwh: 2.369 } });
    expect(s.sessions.get('S-2')).toMatchObject({ kwh: 1, ticket: { kwh: 1 } });
    expect(deserializeState(serializeState(s)).sessions.get('S-1')).toMatchObject({ kwh: 2.369, estimated: false });
  });
  it('an interrupting end marks the session INTERRUPTED', () => {
    const s = run([{ t: 'session_started', session: session('S-1') }, { t: 'session_ended', session_id: 'S-1', ticket: ticket('S-1', 3, 'fault') }]);
    expect(s.sessions.get('S-1')).toMatchObject({ status: 'INTERRUPTED', interrupted: true, end_reason: 'fault' });
  });
  it('a repeated session_started or request_done changes nothing', () => {
    const s = run([
      { t: 'session_started', session: session('S-1') },
      { t: 'session_ended', session_id: 'S-1', ticket: ticket('S-1', 10) },
      { t: 'session_started', session: session('S-1') },
      { t: 'request_done', request: { request_id: 'r1', driver_id: 'driver-a', action: 'REQUEST', outcome: 'ACCEPTED', session_id: 'S-1' } },
      { t: 'request_done', request: { request_id: 'r1', driver_id: 'driver-a', action: 'REQUEST', outcome: 'REJECTED', reason: 'x' } },
    ]);
    expect(s.sessions.get('S-1')!.status).toBe('COMPLETED');
    expect(s.requests.get('r1')!.outcome).toBe('ACCEPTED');
  });
  it('pending end, confirmation and ticket_sent', () => {
    const s = run([
      { t: 'session_started', session: session('S-1') },
      { t: 'session_confirmed', session_id: 'S-1' },
      { t: 'session_pending_end', session_id: 'S-1', reason: 'cp_stopped', deadline: 900 },
      { t: 'session_pending_end', session_id: 'S-1', reason: 'fault', deadline: 999 },
    ]);
    expect(s.sessions.get('S-1')).toMatchObject({ confirmed: true, pending_end: { reason: 'cp_stopped', deadline: 900 } });
    apply(s, { t: 'session_ended', session_id: 'S-1', ticket: ticket('S-1', 1) });
    expect(s.sessions.get('S-1')!.pending_end).toBeNull();
    apply(s, { t: 'ticket_sent', session_id: 'S-1' });
    expect(s.sessions.get('S-1')!.ticket_sent).toBe(true);
  });
  it('events for unknown ids are ignored', () => {
    const s = run([
      { t: 'telemetry', session_id: 'nope', kw: 1, kwh: 1, eur: 1, seq: 1 },
      { t: 'session_ended', session_id: 'nope', ticket: ticket('nope', 1) },
      { t: 'cp_admin', cp_id: 'nope', stopped: true },
    ]);
    expect(s.sessions.size + s.cps.size).toBe(0);
  });
  it('finds active and latest sessions; survives serialization', () => {
    const s = run([
      { t: 'session_started', session: session('S-1', { started_at: 1 }) },
      { t: 'session_ended', session_id: 'S-1', ticket: ticket('S-1', 1) },
      { t: 'session_started', session: session('S-2', { started_at: 2, cp_id: 'CP-002' }) },
    ]);
    expect(activeSessionAt(s, 'CP-001')).toBeUndefined();
    expect(activeSessionAt(s, 'CP-002')!.session_id).toBe('S-2');
    expect(activeSessionOf(s, 'driver-a')!.session_id).toBe('S-2');
    expect(latestSessionOf(s, 'driver-a')!.session_id).toBe('S-2');
    expect(latestSessionOf(s, 'driver-z')).toBeUndefined();
    const back = deserializeState(JSON.parse(JSON.stringify(serializeState(s))));
    expect(serializeState(back)).toEqual(serializeState(s));
  });
});

describe('central monitor status and shown state', () => {
  it('UNKNOWN without reports, OK/KO by verdict, DOWN after the timeout', () => {
    expect(monitorStatus(undefined, 0, 3000)).toBe('UNKNOWN');
    const m = { last_at: 1000, engine_ok: true, kind: 'heartbeat' as const, monitor_id: 'm' };
    expect(monitorStatus(m, 4000, 3000)).toBe('OK');
    expect(monitorStatus(m, 4001, 3000)).toBe('DOWN');
    expect(monitorStatus({ ...m, engine_ok: false }, 2000, 3000)).toBe('KO');
  });
  it('a fault report is KO and a recovered report OK whatever engine_ok says', () => {
    expect(reportSaysOk({ kind: 'fault', engine_ok: true })).toBe(false);
    expect(reportSaysOk({ kind: 'recovered', engine_ok: false })).toBe(true);
    expect(reportSaysOk({ kind: 'heartbeat', engine_ok: false })).toBe(false);
  });
  it('shows the worst news first', () => {
    const s = run([{ t: 'cp_status', cp_id: 'CP-001', state: 'ACTIVATED', faults: [], seq: 1, at: 1 }]);
    const cp = s.cps.get('CP-001')!;
    expect(shownState(cp, 'OK', undefined)).toBe('ACTIVATED');
    expect(shownState(cp, 'UNKNOWN', undefined)).toBe('ACTIVATED');
    expect(shownState(cp, 'KO', undefined)).toBe('FAULTY');
    expect(shownState(cp, 'DOWN', undefined)).toBe('DISCONNECTED');
    expect(shownState(cp, 'OK', session('S-1'))).toBe('SUPPLYING');
    expect(shownState({ ...cp, admin_stopped: true }, 'OK', undefined)).toBe('STOPPED');
    expect(shownState({ ...cp, engine_state: 'DISCONNECTED' }, 'OK', undefined)).toBe('DISCONNECTED');
    expect(shownState({ ...cp, engine_state: 'FAULTY' }, 'OK', undefined)).toBe('FAULTY');
    expect(shownState({ ...cp, engine_state: 'FAULTY', admin_stopped: true }, 'OK', undefined)).toBe('FAULTY');
  });
  it('a CP view carries the session\'s live figures', () => {
    const s = run([
      { t: 'cp_announced', cp_id: 'CP-001', profile, boot_id: 'b', at: 1 },
      { t: 'cp_status', cp_id: 'CP-001', state: 'SUPPLYING', faults: [], session_id: 'S-1', seq: 1, at: 1 },
    ]);
    const v = cpView(s.cps.get('CP-001')!, 'OK', session('S-1', { kw: 50, kwh: 2, eur: 0.98 }));
    expect(v).toMatchObject({ cp_id: 'CP-001', state: 'SUPPLYING', engine_state: 'SUPPLYING', monitor_status: 'OK', max_kw: 50, price_eur_kwh: 0.49, profile: 'dc-50kw', session_id: 'S-1', driver_id: 'driver-a', kw: 50, kwh: 2, eur: 0.98 });
  });
});

describe('central driver updates for a session', () => {
  it('ACCEPTED before metering, IN_PROGRESS with figures, the ticket once ended; always for the asking request', () => {
    const s = session('S-9');
    expect(sessionUpdate(s, 'q1', 5)).toEqual({ v: 1, driver_id: 'driver-a', request_id: 'q1', session_id: 'S-9', cp_id: 'CP-001', started_at: 100, ts: 5, status: 'ACCEPTED' });
    const running = { ...s, telemetry_seq: 3, kw: 22, kwh: 1.5, eur: 0.74 };
    expect(sessionUpdate(running, 'q2', 6)).toMatchObject({ status: 'IN_PROGRESS', request_id: 'q2', kw: 22, kwh: 1.5, eur: 0.74 });
    const t = ticket('S-9', 2, 'fault');
    const ended = { ...running, ticket: t };
    const u = sessionUpdate(ended, 'q3', 7);
    expect(u).toMatchObject({ status: 'INTERRUPTED', request_id: 'q3', kwh: 2, eur: t.eur, reason: 'fault', ticket: t });
    expect(DriverUpdateMsg.safeParse(u).success).toBe(true);
    expect(sessionUpdate({ ...ended, ticket: ticket('S-9', 2) }, 'q4', 8).status).toBe('COMPLETED');
  });
});
