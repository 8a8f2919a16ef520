import { describe, expect, it } from 'vitest';
import { CP_STATES, type CpState } from '../../protocol/index.js';
import { CP_EVENT_TYPES, initialContext, step, type CpContext, type CpEvent, type CpEventType } from '../../firmware/state-machine.js';

const NOW = 1_700_000_000_000;
const session = { session_id: 'S-1', driver_id: 'D-1', started_at: NOW - 60_000 };

/** A representative context per state (link up except DISCONNECTED). */
const contexts: Record<CpState, CpContext> = {
  DISCONNECTED: initialContext(),
  ACTIVATED: { state: 'ACTIVATED', linkUp: true, faults: [] },
  SUPPLYING: { state: 'SUPPLYING', linkUp: true, faults: [], session },
  STOPPED: { state: 'STOPPED', linkUp: true, faults: [] },
  FAULTY: { state: 'FAULTY', linkUp: true, faults: ['ground_fault'] },
};

const events: Record<CpEventType, CpEvent> = {
  CONNECT: { type: 'CONNECT' },
  DISCONNECT: { type: 'DISCONNECT' },
  START_SUPPLY: { type: 'START_SUPPLY', session_id: 'S-2', driver_id: 'D-2' },
  STOP_SUPPLY: { type: 'STOP_SUPPLY' },
  STOP_CP: { type: 'STOP_CP' },
  RESUME_CP: { type: 'RESUME_CP' },
  FAULT: { type: 'FAULT', kind: 'over_temperature' },
  FAULT_CLEARED: { type: 'FAULT_CLEARED' },
  VEHICLE_FULL: { type: 'VEHICLE_FULL' },
};

/** Expected outcome: the next state (and session end reason), or a rejection matching a pattern. */
type Expect = { to: CpState; end?: string; relay?: boolean } | { reject: RegExp };
const table: Record<CpState, Record<CpEventType, Expect>> = {
  DISCONNECTED: {
    CONNECT: { to: 'ACTIVATED' }, DISCONNECT: { reject: /already disconnected/ }, START_SUPPLY: { reject: /^CP is DISCONNECTED$/ },
    STOP_SUPPLY: { reject: /not SUPPLYING/ }, STOP_CP: { reject: /^CP is DISCONNECTED$/ }, RESUME_CP: { reject: /not STOPPED/ },
    FAULT: { to: 'DISCONNECTED' }, FAULT_CLEARED: { reject: /no fault active/ }, VEHICLE_FULL: { reject: /not SUPPLYING/ },
  },
  ACTIVATED: {
    CONNECT: { reject: /already connected/ }, DISCONNECT: { to: 'DISCONNECTED' }, START_SUPPLY: { to: 'SUPPLYING', relay: true },
    STOP_SUPPLY: { reject: /CP is ACTIVATED, not SUPPLYING/ }, STOP_CP: { to: 'STOPPED', relay: false }, RESUME_CP: { reject: /not STOPPED/ },
    FAULT: { to: 'FAULTY', relay: false }, FAULT_CLEARED: { reject: /no fault active/ }, VEHICLE_FULL: { reject: /not SUPPLYING/ },
  },
  SUPPLYING: {
    CONNECT: { reject: /already connected/ }, DISCONNECT: { to: 'SUPPLYING' }, START_SUPPLY: { reject: /already SUPPLYING session S-1/ },
    STOP_SUPPLY: { to: 'ACTIVATED', end: 'central_stop', relay: false }, STOP_CP: { to: 'STOPPED', end: 'cp_stopped', relay: false },
    RESUME_CP: { reject: /not STOPPED/ }, FAULT: { to: 'FAULTY', end: 'fault', relay: false }, FAULT_CLEARED: { reject: /no fault active/ },
    VEHICLE_FULL: { to: 'ACTIVATED', end: 'full', relay: false },
  },
  STOPPED: {
    CONNECT: { reject: /already connected/ }, DISCONNECT: { to: 'DISCONNECTED' }, START_SUPPLY: { reject: /^CP is STOPPED$/ },
    STOP_SUPPLY: { reject: /not SUPPLYING/ }, STOP_CP: { reject: /already STOPPED/ }, RESUME_CP: { to: 'ACTIVATED' },
    FAULT: { to: 'FAULTY', relay: false }, FAULT_CLEARED: { reject: /no fault active/ }, VEHICLE_FULL: { reject: /not SUPPLYING/ },
  },
  FAULTY: {
    CONNECT: { reject: /already connected/ }, DISCONNECT: { to: 'FAULTY' }, START_SUPPLY: { reject: /^CP is FAULTY$/ },
    STOP_SUPPLY: { reject: /not SUPPLYING/ }, STOP_CP: { reject: /^CP is FAULTY$/ }, RESUME_CP: { reject: /not STOPPED/ },
    FAULT: { to: 'FAULTY' }, FAULT_CLEARED: { to: 'ACTIVATED' }, VEHICLE_FULL: { reject: /not SUPPLYING/ },
  },
};

describe('CP state machine: every state x event pair', () => {
  it('the table covers all states and events', () => {
    expect(Object.keys(table).sort()).toEqual([...CP_STATES].sort());
    for (const s of CP_STATES) expect(Object.keys(table[s]).sort()).toEqual([...CP_EVENT_TYPES].sort());
  });

  for (const state of CP_STATES) {
    for (const type of CP_EVENT_TYPES) {
      const want = table[state][type];
      it(`${state} + ${type} -> ${'reject' in want ? `rejected ${want.reject}` : want.to}`, () => {
        const ctx = contexts[state];
        const r = step(ctx, events[type], NOW);
        if ('reject' in want) {
          expect(r.rejected).toMatch(want.reject);
          expect(r.ctx).toBe(ctx);
          expect(r.effects).toEqual([]);
          expect(r.transition).toBeUndefined();
          return;
        }
        expect(r.rejected).toBeUndefined();
        expect(r.ctx.state).toBe(want.to);
        expect(r.transition).toEqual(want.to === state ? undefined : { from: state, to: want.to });
        const ends = r.effects.filter((e) => e.type === 'session_end');
        if (want.end) {
          expect(ends).toEqual([{ type: 'session_end', session, reason: want.end, at: NOW }]);
          expect(r.ctx.session).toBeUndefined();
        } else expect(ends).toEqual([]);
        const relays = r.effects.filter((e) => e.type === 'relay');
        if (want.relay === undefined) expect(relays).toEqual([]);
        else expect(relays).toEqual([{ type: 'relay', closed: want.relay }]);
      });
    }
  }
});

describe('CP state machine: details', () => {
  it('START_SUPPLY opens a session with the ids and the time', () => {
    const r = step(contexts.ACTIVATED, events.START_SUPPLY, NOW);
    const s = { session_id: 'S-2', driver_id: 'D-2', started_at: NOW };
    expect(r.ctx.session).toEqual(s);
    expect(r.effects).toEqual([{ type: 'session_start', session: s }, { type: 'relay', closed: true }]);
  });

  it('a START whose expires_at has passed is refused in every state; one within its deadline starts', () => {
    for (const st of CP_STATES) {
      const r = step(contexts[st], { ...events.START_SUPPLY, expires_at: NOW - 1 } as CpEvent, NOW);
      expect(r.rejected).toMatch(/^START expired 1 ms ago$/);
      expect(r.ctx).toBe(contexts[st]);
      expect(r.effects).toEqual([]);
    }
    const ok = step(contexts.ACTIVATED, { ...events.START_SUPPLY, expires_at: NOW } as CpEvent, NOW);
    expect(ok.ctx.state).toBe('SUPPLYING');
  });

  it('STOP_SUPPLY carries driver_stop when the driver asked', () => {
    const r = step(contexts.SUPPLYING, { type: 'STOP_SUPPLY', reason: 'driver_stop' }, NOW);
    expect(r.effects).toContainEqual({ type: 'session_end', session, reason: 'driver_stop', at: NOW });
  });

  it('losing the link while SUPPLYING keeps supplying; a session that ends offline rests in DISCONNECTED', () => {
    const offline = step(contexts.SUPPLYING, events.DISCONNECT, NOW).ctx;
    expect(offline).toMatchObject({ state: 'SUPPLYING', linkUp: false, session });
    const full = step(offline, events.VEHICLE_FULL, NOW + 1);
    expect(full.ctx.state).toBe('DISCONNECTED');
    expect(full.effects).toContainEqual({ type: 'session_end', session, reason: 'full', at: NOW + 1 });
    const back = step(offline, events.CONNECT, NOW + 2);
    expect(back.ctx).toMatchObject({ state: 'SUPPLYING', linkUp: true });
    expect(back.transition).toBeUndefined();
  });

  it('a fault seen while DISCONNECTED is remembered: CONNECT lands in FAULTY', () => {
    const f = step(initialContext(), events.FAULT, NOW).ctx;
    expect(f).toMatchObject({ state: 'DISCONNECTED', faults: ['over_temperature'] });
    expect(step(f, events.CONNECT, NOW).ctx.state).toBe('FAULTY');
    const cleared = step(f, events.FAULT_CLEARED, NOW).ctx;
    expect(cleared).toMatchObject({ state: 'DISCONNECTED', faults: [] });
  });

  it('FAULTY stays FAULTY until every fault is gone; repeated fault kinds are rejected', () => {
    const two = step(contexts.FAULTY, events.FAULT, NOW).ctx;
    expect(two.faults).toEqual(['ground_fault', 'over_temperature']);
    expect(step(two, { type: 'FAULT', kind: 'ground_fault' }, NOW).rejected).toMatch(/already active/);
    const one = step(two, { type: 'FAULT_CLEARED', kind: 'ground_fault' }, NOW);
    expect(one.ctx).toMatchObject({ state: 'FAULTY', faults: ['over_temperature'] });
    expect(step(one.ctx, { type: 'FAULT_CLEARED', kind: 'ground_fault' }, NOW).rejected).toMatch(/not active/);
    expect(step(one.ctx, { type: 'FAULT_CLEARED', kind: 'over_temperature' }, NOW).ctx.state).toBe('ACTIVATED');
  });

  it('a fault cleared while offline rests in DISCONNECTED', () => {
    const offline = step(contexts.FAULTY, events.DISCONNECT, NOW).ctx;
    expect(step(offline, events.FAULT_CLEARED, NOW).ctx.state).toBe('DISCONNECTED');
  });

  it('is pure: the input context is never mutated', () => {
    const ctx = structuredClone(contexts.SUPPLYING);
    const frozen = Object.freeze({ ...ctx, faults: Object.freeze([...ctx.faults]) }) as CpContext;
    for (const type of CP_EVENT_TYPES) step(frozen, events[type], NOW);
    expect(frozen).toEqual(ctx);
  });
});
