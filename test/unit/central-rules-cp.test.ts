import { describe, expect, it } from 'vitest';
import { emptyMem, endReasonOf, reachOf, type Input } from '../../central/rules/index.js';
import type { CommandAckMsg, CpStatusMsg, CpTelemetryMsg, GatewayBeatMsg, SessionEndMsg } from '../../protocol/index.js';
import { commands, counts, logs, profile, updates, v, World } from '../helpers/central-rules.js';

/** Central's rules for what CPs and gateways say, input by input (central/rules/cp.ts). */

const status = (cp: string, state: CpStatusMsg['state'], seq: number, extra: Partial<CpStatusMsg> = {}): Input =>
  ({ t: 'status', key: cp, m: { v, type: 'status', cp_id: cp, state, faults: [], source: 'engine', seq, ts: 1, ...extra } });
const ack = (cp: string, commandId: string, ok: boolean, extra: Partial<CommandAckMsg> = {}): Input =>
  ({ t: 'ack', key: cp, m: { v, type: 'ack', cp_id: cp, command_id: commandId, command: 'START_SUPPLY', ok, state: ok ? 'SUPPLYING' : 'ACTIVATED', ts: 1, ...extra } });
const end = (cp: string, session: string, extra: Partial<SessionEndMsg> = {}): Input =>
  ({ t: 'session_end', key: cp, m: { v, type: 'session_end', cp_id: cp, session_id: session, kwh: 2.5, eur: 1, price_eur_kwh: 0.4, started_at: 1, ended_at: 2, reason: 'full', ts: 1, ...extra } });
const tel = (cp: string, session: string, seq: number, extra: Partial<CpTelemetryMsg> = {}): Input =>
  ({ t: 'telemetry', key: cp, m: { v, type: 'telemetry', cp_id: cp, session_id: session, kw: 22, kwh: seq / 10, eur: seq / 25, seq, ts: 1, ...extra } });
const beat = (gw: string, seq: number, extra: Partial<GatewayBeatMsg> = {}): Input =>
  ({ t: 'gateway_beat', key: gw, m: { v, type: 'gateway', gateway_id: gw, boot_id: 'gb1', interval_ms: 1000, cps: 1, seq, ts: 1, ...extra } });

describe('central rules: announce', () => {
  it('registers a new CP, with the gateway it came through', () => {
    const w = new World();
    const r = w.step({ t: 'announce', key: 'CP-1', m: { v, type: 'announce', cp_id: 'CP-1', gw: 'GW-A', profile, fw_version: 't', boot_id: 'b1', ts: 1 } });
    expect(r.events).toMatchObject([{ t: 'cp_announced', cp_id: 'CP-1', boot_id: 'b1', gw: 'GW-A' }]);
    expect(logs(r)).toEqual(['charging point registered']);
    expect(w.st.durable.cps.get('CP-1')).toMatchObject({ gw: 'GW-A', profile });
  });
  it('a new boot ends what the old one supplied (engine_restart) and tells the driver', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { kwh: 1.2 });
    const r = w.step({ t: 'announce', key: 'CP-1', m: { v, type: 'announce', cp_id: 'CP-1', profile, fw_version: 't', boot_id: 'b2', ts: 1 } });
    expect(r.events[0]).toMatchObject({ t: 'session_ended', session_id: 'S-1', ticket: { reason: 'engine_restart', kwh: 1.2, interrupted: true } });
    expect(updates(r)).toMatchObject([{ driver_id: 'd1', status: 'INTERRUPTED', reason: 'engine_restart' }]);
    expect(r.out[0]!.then).toEqual([{ t: 'ticket_sent', session_id: 'S-1' }]);
  });
  it('an admin stop outlives the engine restart: STOP_CP again', () => {
    const w = new World().cp('CP-1').journal({ t: 'cp_admin', cp_id: 'CP-1', stopped: true });
    const r = w.step({ t: 'announce', key: 'CP-1', m: { v, type: 'announce', cp_id: 'CP-1', profile, fw_version: 't', boot_id: 'b2', ts: 1 } });
    expect(commands(r)).toMatchObject([{ command: 'STOP_CP', cp_id: 'CP-1' }]);
  });
  it('an announce keyed by another CP is refused, logged once per source, counted', () => {
    const w = new World();
    const m = { v, type: 'announce', cp_id: 'CP-2', profile, fw_version: 't', boot_id: 'b', ts: 1 } as const;
    const r1 = w.step({ t: 'announce', key: 'CP-1', m });
    const r2 = w.step({ t: 'announce', key: 'CP-1', m });
    expect(r1.events).toEqual([]);
    expect(counts(r1)).toContain('forged_statuses');
    expect(counts(r2)).toContain('forged_statuses');
    expect(logs(r1)).toHaveLength(1);
    expect(logs(r2)).toHaveLength(0);
    expect(w.st.durable.cps.has('CP-2')).toBe(false);
  });
});

describe('central rules: status', () => {
  it('applies in seq order; an older engine status is stale', () => {
    const w = new World().cp('CP-1');
    expect(counts(w.step(status('CP-1', 'FAULTY', 1)))).toContain('stale_statuses');
    expect(w.step(status('CP-1', 'FAULTY', 2)).events).toMatchObject([{ t: 'cp_status', state: 'FAULTY', seq: 2 }]);
  });
  it('SUPPLYING the running session confirms it', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { confirmed: false });
    expect(w.step(status('CP-1', 'SUPPLYING', 2, { session_id: 'S-1' })).events.map((e) => e.t)).toEqual(['cp_status', 'session_confirmed']);
  });
  it('a lost link holds the session for the CP\'s own record; the CP showing it again lifts the hold', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    w.step(status('CP-1', 'SUPPLYING', 2, { session_id: 'S-1' }));
    const r = w.step(status('CP-1', 'DISCONNECTED', 99, { source: 'last_will' }));
    expect(r.events[1]).toEqual({ t: 'session_pending_end', session_id: 'S-1', reason: 'disconnected', deadline: w.now + w.o.endGraceMs });
    w.step({ t: 'announce', key: 'CP-1', m: { v, type: 'announce', cp_id: 'CP-1', profile, fw_version: 't', boot_id: 'b1', ts: 1 } });
    const back = w.step(status('CP-1', 'SUPPLYING', 1, { session_id: 'S-1' }));
    expect(back.events.map((e) => e.t)).toEqual(['cp_status', 'session_resumed']);
    expect(w.st.durable.sessions.get('S-1')!.pending_end).toBeNull();
  });
  it('an engine that moved on without a session_end starts the grace, with the reason from its state', () => {
    for (const [state, reason] of [['ACTIVATED', 'disconnected'], ['FAULTY', 'fault'], ['STOPPED', 'cp_stopped']] as const) {
      const w = new World().cp('CP-1');
      w.session('S-1', 'CP-1', 'd1');
      w.step(status('CP-1', 'SUPPLYING', 2, { session_id: 'S-1' }));
      expect(w.step(status('CP-1', state, 3)).events[1]).toMatchObject({ t: 'session_pending_end', reason });
      expect(endReasonOf(state)).toBe(reason);
    }
  });
  it('SUPPLYING a session central has closed (a START that came late): STOP_SUPPLY to that CP', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { confirmed: false });
    w.step({ t: 'tick', busUp: true }, w.o.startConfirmMs + 1);
    expect(w.st.durable.sessions.get('S-1')!.end_reason).toBe('unconfirmed');
    const r = w.step(status('CP-1', 'SUPPLYING', 2, { session_id: 'S-1' }));
    expect(commands(r)).toMatchObject([{ command: 'STOP_SUPPLY', cp_id: 'CP-1', session_id: 'S-1' }]);
    expect(counts(r)).toContain('late_start_stops');
  });
  it('SUPPLYING another CP\'s session is refused as forged, nothing stopped', () => {
    const w = new World().cp('CP-1').cp('CP-2');
    w.session('S-2', 'CP-2', 'd2');
    const r = w.step(status('CP-1', 'SUPPLYING', 2, { session_id: 'S-2' }));
    expect(counts(r)).toContain('forged_statuses');
    expect(commands(r)).toEqual([]);
  });
});

describe('central rules: ack', () => {
  it('an ok START confirms; a refused START closes the session with the reason from the CP state', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { confirmed: false });
    expect(w.step(ack('CP-1', 'start:S-1', true)).events).toEqual([{ t: 'session_confirmed', session_id: 'S-1' }]);
    const w2 = new World().cp('CP-1');
    w2.session('S-1', 'CP-1', 'd1', { confirmed: false });
    const r = w2.step(ack('CP-1', 'start:S-1', false, { state: 'FAULTY', reason: 'ground fault' }));
    expect(r.events[0]).toMatchObject({ t: 'session_ended', ticket: { reason: 'fault', interrupted: true } });
    expect(counts(r)).toContain('failed_acks');
  });
  it('an ack for another CP\'s session is refused and counted', () => {
    const w = new World().cp('CP-1').cp('CP-2');
    w.session('S-2', 'CP-2', 'd2', { confirmed: false });
    const r = w.step(ack('CP-1', 'start:S-2', false, { state: 'FAULTY' }));
    expect(r.events).toEqual([]);
    expect(counts(r)).toContain('forged_acks');
    expect(w.st.durable.sessions.get('S-2')!.status).toBe('ACTIVE');
  });
  it('an ok START for a session central already closed: STOP_SUPPLY', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { confirmed: false });
    w.step({ t: 'tick', busUp: true }, w.o.startConfirmMs + 1);
    expect(commands(w.step(ack('CP-1', 'start:S-1', true)))).toMatchObject([{ command: 'STOP_SUPPLY', session_id: 'S-1' }]);
  });
});

describe('central rules: session_end', () => {
  it('bills the CP\'s metered kWh at the price stored at start (not the one in the message)', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { price_eur_kwh: 0.4 });
    const r = w.step(end('CP-1', 'S-1', { kwh: 10, price_eur_kwh: 99 }));
    expect(r.events).toMatchObject([{ t: 'session_ended', ticket: { kwh: 10, price_eur_kwh: 0.4, eur: 4, reason: 'full', interrupted: false } }]);
    expect(updates(r)).toMatchObject([{ status: 'COMPLETED', driver_id: 'd1' }]);
  });
  it('an interrupting end central asked for wins over the CP\'s normal one', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: 'fault', deadline: w.now + 5000 });
    expect(w.step(end('CP-1', 'S-1', { reason: 'driver_stop' })).events[0]).toMatchObject({ ticket: { reason: 'fault', interrupted: true } });
  });
  it("a hold central only guessed (unreachable, disconnected) gives way to the CP's own reason: a driver's STOP during the hold bills as driver_stop", () => {
    for (const guess of ['unreachable', 'disconnected'] as const) {
      const w = new World().cp('CP-1');
      w.session('S-1', 'CP-1', 'd1');
      w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: guess, deadline: w.now + 30_000 });
      expect(w.step(end('CP-1', 'S-1', { reason: 'driver_stop', kwh: 1.6 })).events[0]).toMatchObject({ ticket: { reason: 'driver_stop', kwh: 1.6, interrupted: false } });
    }
  });
  it('a session_end for another CP\'s session is refused, logged once per source, counted; the session runs on', () => {
    const w = new World().cp('CP-1').cp('CP-2');
    w.session('S-2', 'CP-2', 'd2');
    const r1 = w.step(end('CP-1', 'S-2', { kwh: 9999 }));
    const r2 = w.step(end('CP-1', 'S-2', { kwh: 9999 }));
    expect([...r1.events, ...r2.events]).toEqual([]);
    expect([...counts(r1), ...counts(r2)].filter((c) => c === 'forged_session_ends')).toHaveLength(2);
    expect([...logs(r1), ...logs(r2)]).toHaveLength(1);
    expect(w.st.durable.sessions.get('S-2')!.status).toBe('ACTIVE');
  });
  it('a payload whose cp_id is not its bus key is refused before anything else', () => {
    const w = new World().cp('CP-1').cp('CP-2');
    w.session('S-2', 'CP-2', 'd2');
    const r = w.step({ ...end('CP-2', 'S-2'), key: 'CP-1' } as Input);
    expect(r.events).toEqual([]);
    expect(counts(r)).toContain('forged_session_ends');
  });
  it('billed once: a repeat is counted; an unknown session is counted and said once per CP', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    w.step(end('CP-1', 'S-1'));
    expect(counts(w.step(end('CP-1', 'S-1')))).toContain('duplicate_session_ends');
    const u1 = w.step(end('CP-1', 'S-ghost'));
    const u2 = w.step(end('CP-1', 'S-ghost2'));
    expect([...counts(u1), ...counts(u2)].filter((c) => c === 'unknown_session_ends')).toHaveLength(2);
    expect([...logs(u1), ...logs(u2)]).toHaveLength(1);
  });
  it('a record spooled while the bus stalled, after central closed the session "unreachable" from telemetry: the CP\'s meter supersedes the estimate, once', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' });
    w.session('S-1', 'CP-1', 'd1');
    w.step(beat('GW-A', 1));
    w.step(tel('CP-1', 'S-1', 20)); // 2 kWh seen, then silence: gateway dead or bus stalled, central cannot tell
    w.step({ t: 'tick', busUp: true }, 3001);
    const closed = w.step({ t: 'tick', busUp: true }, w.o.unreachableGraceMs);
    expect(closed.events).toMatchObject([{ t: 'session_ended', estimate: true, ticket: { reason: 'unreachable', kwh: 2, interrupted: true } }]);
    w.deliver(closed);
    // The gateway restarts, replays its spool: the CP metered 2.369 kWh and ended on a fault.
    const r = w.step(end('CP-1', 'S-1', { kwh: 2.369, reason: 'fault' }), 5000);
    expect(r.events).toMatchObject([{ t: 'session_rebilled', session_id: 'S-1', ticket: { kwh: 2.369, eur: 0.95, reason: 'fault', interrupted: true } }]);
    expect(counts(r)).toContain('rebilled_sessions');
    expect(updates(r)).toMatchObject([{ driver_id: 'd1', status: 'INTERRUPTED', ticket: { kwh: 2.369, eur: 0.95, reason: 'fault' } }]);
    expect(r.out[0]!.then).toEqual([{ t: 'ticket_sent', session_id: 'S-1' }]);
    expect(w.st.durable.sessions.get('S-1')).toMatchObject({ status: 'INTERRUPTED', kwh: 2.369, eur: 0.95, end_reason: 'fault', estimated: false, ticket_sent: false, ticket: { kwh: 2.369 } });
    w.deliver(r);
    // The record is final: a repeat (QoS 1 resend, spool replayed twice) changes nothing.
    const again = w.step(end('CP-1', 'S-1', { kwh: 2.369, reason: 'fault' }));
    expect(again.events).toEqual([]);
    expect(updates(again)).toEqual([]);
    expect(counts(again)).toContain('duplicate_session_ends');
  });
  it('the CP\'s reason replaces a guess (unreachable) but not an end central demanded (admin stop); a normal end becomes COMPLETED', () => {
    const w = new World().cp('CP-1').cp('CP-2');
    w.session('S-1', 'CP-1', 'd1', { kwh: 1 });
    w.session('S-2', 'CP-2', 'd2', { kwh: 1 });
    w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: 'unreachable', deadline: w.now });
    w.step({ t: 'admin', cp_id: 'CP-2', stop: true });
    w.step({ t: 'tick', busUp: true }, w.o.endGraceMs + w.o.unreachableGraceMs);
    expect(w.st.durable.sessions.get('S-1')).toMatchObject({ estimated: true, ticket: { reason: 'unreachable' } });
    expect(w.st.durable.sessions.get('S-2')).toMatchObject({ estimated: true, ticket: { reason: 'cp_stopped' } });
    const r1 = w.step(end('CP-1', 'S-1', { kwh: 3, reason: 'driver_stop' }));
    expect(updates(r1)).toMatchObject([{ status: 'COMPLETED', ticket: { kwh: 3, reason: 'driver_stop', interrupted: false } }]);
    const r2 = w.step(end('CP-2', 'S-2', { kwh: 3, reason: 'driver_stop' }));
    expect(updates(r2)).toMatchObject([{ status: 'INTERRUPTED', ticket: { kwh: 3, reason: 'cp_stopped', interrupted: true } }]);
  });
  it('a START central closed before the CP confirmed it (unconfirmed, cancelled) is not rebilled: the driver never followed that supply', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { confirmed: false });
    w.step({ t: 'tick', busUp: true }, w.o.startConfirmMs + 1);
    expect(w.st.durable.sessions.get('S-1')).toMatchObject({ ticket: { reason: 'unconfirmed', kwh: 0 } });
    const r = w.step(end('CP-1', 'S-1', { kwh: 0.2, reason: 'cp_stopped' }));
    expect(r.events).toEqual([]);
    expect(counts(r)).toContain('duplicate_session_ends');
  });
  it('an estimate the record agrees with is left as it is (no second ticket)', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { kwh: 2.5 });
    w.journal({ t: 'session_pending_end', session_id: 'S-1', reason: 'disconnected', deadline: w.now });
    w.step({ t: 'tick', busUp: true }, w.o.endGraceMs);
    const r = w.step(end('CP-1', 'S-1', { kwh: 2.5, reason: 'disconnected' }));
    expect(r.events).toEqual([]);
    expect(updates(r)).toEqual([]);
  });
});

describe('central rules: telemetry', () => {
  it('applies newer telemetry, confirms, and tells the driver at most once a second', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1', { confirmed: false });
    const r1 = w.step(tel('CP-1', 'S-1', 1));
    expect(r1.events.map((e) => e.t)).toEqual(['telemetry', 'session_confirmed']);
    expect(updates(r1)).toMatchObject([{ status: 'IN_PROGRESS', kwh: 0.1 }]);
    expect(updates(w.step(tel('CP-1', 'S-1', 2), 500))).toEqual([]);
    expect(updates(w.step(tel('CP-1', 'S-1', 3), 500))).toHaveLength(1);
    expect(counts(w.step(tel('CP-1', 'S-1', 2)))).toContain('telemetry_ignored');
  });
  it('sends IN_PROGRESS as droppable (the next one supersedes it), the ticket not', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    const progress = w.step(tel('CP-1', 'S-1', 1)).out.filter((o) => o.topic === 'driver.updates');
    expect(progress.map((o) => [(o.value as { status: string }).status, o.droppable])).toEqual([['IN_PROGRESS', true]]);
    const ticket = w.step(end('CP-1', 'S-1', { kwh: 2.5 })).out.filter((o) => o.topic === 'driver.updates');
    expect(ticket.length).toBeGreaterThan(0);
    expect(ticket.every((o) => o.droppable === undefined && (o.value as { status: string }).status !== 'IN_PROGRESS')).toBe(true);
  });
  it('stretches the IN_PROGRESS period with the number of running sessions, up to its maximum', () => {
    const w = new World({ progress: { minMs: 900, maxMs: 5_000, perSecond: 2 } });
    for (let i = 1; i <= 4; i++) { w.cp(`CP-${i}`); w.session(`S-${i}`, `CP-${i}`, `d${i}`); }
    w.step({ t: 'tick', busUp: true });
    expect(w.st.mem.progressEveryMs).toBe(2_000); // 4 sessions at 2 updates a second in all
    expect(updates(w.step(tel('CP-1', 'S-1', 1)))).toHaveLength(1);
    expect(updates(w.step(tel('CP-1', 'S-1', 2), 1_000))).toEqual([]);
    expect(updates(w.step(tel('CP-1', 'S-1', 3), 1_000))).toHaveLength(1);
    for (let i = 5; i <= 40; i++) { w.cp(`CP-${i}`); w.session(`S-${i}`, `CP-${i}`, `d${i}`); }
    w.step({ t: 'tick', busUp: true });
    expect(w.st.mem.progressEveryMs).toBe(5_000);
    // Back to the minimum once the sessions are gone.
    const few = new World({ progress: { minMs: 900, maxMs: 5_000, perSecond: 2 } }, { ...emptyMem(1_000_000, true), progressEveryMs: 5_000 }).cp('CP-1');
    few.session('S-1', 'CP-1', 'd1');
    few.step({ t: 'tick', busUp: true });
    expect(few.st.mem.progressEveryMs).toBe(900);
  });
  it('carries the vehicle\'s battery level when the CP reports one', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    const r = w.step(tel('CP-1', 'S-1', 1, { soc: 0.42 }));
    expect(r.events[0]).toMatchObject({ t: 'telemetry', soc: 0.42 });
    expect(updates(r)).toMatchObject([{ status: 'IN_PROGRESS', soc: 0.42 }]);
    expect(w.st.durable.sessions.get('S-1')!.soc).toBe(0.42);
  });
  it('telemetry for another CP\'s session is ignored and counted as forged', () => {
    const w = new World().cp('CP-1').cp('CP-2');
    w.session('S-2', 'CP-2', 'd2');
    const r = w.step(tel('CP-1', 'S-2', 1));
    expect(r.events).toEqual([]);
    expect(counts(r)).toEqual(expect.arrayContaining(['telemetry_ignored', 'forged_telemetry']));
  });
  it('telemetry for a session central closed stops it, at most every 2 s', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    w.step(end('CP-1', 'S-1'));
    expect(commands(w.step(tel('CP-1', 'S-1', 5)))).toHaveLength(1);
    expect(commands(w.step(tel('CP-1', 'S-1', 6), 1000))).toHaveLength(0);
    expect(commands(w.step(tel('CP-1', 'S-1', 7), 1500))).toHaveLength(1);
  });
});

describe('central rules: gateway beats and reachability', () => {
  it('the first beat is journaled, later ones live in memory; a beat keyed by another id is refused', () => {
    const w = new World();
    expect(w.step(beat('GW-A', 1)).events).toMatchObject([{ t: 'gateway_seen', gateway: { gateway_id: 'GW-A', boot_id: 'gb1', interval_ms: 1000 } }]);
    expect(w.step(beat('GW-A', 2), 1000).events).toEqual([]);
    expect(w.st.mem.gateways.get('GW-A')).toMatchObject({ seq: 2, last_at: w.now });
    expect(counts(w.step({ ...beat('GW-A', 3), key: 'GW-B' } as Input))).toContain('forged_beats');
  });
  it('every CP behind a gateway silent for 3 intervals is unreachable; the others are not; a beat brings them back', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' }).cp('CP-2', { gw: 'GW-B' }).cp('CP-3');
    w.step(beat('GW-A', 1));
    w.step(beat('GW-B', 1));
    w.now += 3000;
    w.step(beat('GW-B', 2));
    const reach = (id: string) => reachOf(w.st, id, w.now, w.o);
    expect(reach('CP-1')).toEqual({ ok: true });
    w.now += 1;
    expect(reach('CP-1')).toMatchObject({ ok: false, reason: 'gateway unreachable' });
    expect(reach('CP-2')).toEqual({ ok: true });
    expect(reach('CP-3')).toEqual({ ok: true }); // behind no beating gateway: judged by its engine only
    w.step(beat('GW-A', 2));
    expect(reach('CP-1')).toEqual({ ok: true });
  });
  it('after a gateway restart, a CP that has not announced since is unreachable until it does', () => {
    const w = new World().cp('CP-1', { gw: 'GW-A' });
    w.step(beat('GW-A', 1));
    w.step(beat('GW-A', 1, { boot_id: 'gb2' }), 5000);
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toMatchObject({ ok: false, detail: expect.stringMatching(/restarted/) });
    w.step({ t: 'announce', key: 'CP-1', m: { v, type: 'announce', cp_id: 'CP-1', gw: 'GW-A', profile, fw_version: 't', boot_id: 'b1', ts: 1 } }, 100);
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toEqual({ ok: true });
  });
  it('a CP supplying a session that sends nothing for engineSilenceMs is unreachable, even with its gateway alive', () => {
    const w = new World().cp('CP-1');
    w.session('S-1', 'CP-1', 'd1');
    w.step(tel('CP-1', 'S-1', 1));
    w.now += w.o.engineSilenceMs;
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toEqual({ ok: true });
    w.now += 1;
    expect(reachOf(w.st, 'CP-1', w.now, w.o)).toMatchObject({ ok: false, reason: 'CP unreachable', detail: 'engine silent while supplying' });
  });
});
