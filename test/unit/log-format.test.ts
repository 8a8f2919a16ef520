import { describe, expect, it } from 'vitest';
import { formatLine, formatRecord, logFormatFor } from '../../lib/log-format.js';
import { fromOriginalName } from '../../network/plan.js';
import { initialTracker, onUpdate, queried } from '../../driver/session-tracker.js';
import type { DriverUpdateMsg } from '../../protocol/index.js';

describe('readable log lines', () => {
  it('picks pretty on a terminal, JSON otherwise, LOG_FORMAT decides when set', () => {
    expect(logFormatFor({ isTTY: true }, {})).toBe('pretty');
    expect(logFormatFor({ isTTY: false }, {})).toBe('json');
    expect(logFormatFor({ isTTY: true }, { LOG_FORMAT: 'json' })).toBe('json');
    expect(logFormatFor({}, { LOG_FORMAT: 'pretty' })).toBe('pretty');
  });

  it('formats a pino record as one line: time, level, who, message, the other fields', () => {
    const rec = { level: 40, time: '2026-01-01T10:11:12.000Z', pid: 1, name: 'central', msg: 'request refused', cp_id: 'CP-001', reason: 'CP busy' };
    const line = formatRecord(rec, { colour: false });
    expect(line).toMatch(/^\d\d:\d\d:\d\d WARN  central\s+request refused  cp_id=CP-001 reason="CP busy"$/);
    expect(line).not.toContain('{');
  });

  it('puts a component name in front of its lines; plain lines keep their text once', () => {
    const json = JSON.stringify({ level: 30, time: Date.now(), pid: 9, name: 'cp', msg: 'engine ready', kw: 22 });
    expect(formatLine(json, { colour: false, prefix: 'CP-001' })).toMatch(/INFO  CP-001\s+engine ready  kw=22$/);
    expect(formatLine('driver-bob CP-001 ACCEPTED session S-1', { colour: false, prefix: 'driver-bob' })).toMatch(/^\d\d:\d\d:\d\d\s+driver-bob\s+CP-001 ACCEPTED session S-1$/);
    expect(formatLine('{not json', { colour: false })).toBe('{not json');
    expect(formatLine(json, { colour: true })).toContain('\x1b[');
  });
});

describe("the original's component names", () => {
  it('maps ev-cp-e-N, ev-cp-m-N, ev-driver-NAME and ev-central', () => {
    expect(fromOriginalName('ev-cp-e-5')).toBe('CP-005');
    expect(fromOriginalName('ev-cp-m-12')).toBe('monitor-CP-012');
    expect(fromOriginalName('ev-driver-alice')).toBe('driver-alice');
    expect(fromOriginalName('ev-central')).toBe('central');
    expect(fromOriginalName('CP-001')).toBeUndefined();
  });
});

describe('a restarted driver tells its last session once', () => {
  const D = 'driver-x';
  const ticket = { session_id: 'S9', cp_id: 'CP-001', driver_id: D, kwh: 1, eur: 0.35, price_eur_kwh: 0.35, started_at: 0, ended_at: 1000, duration_s: 1, reason: 'driver_stop' as const, interrupted: false };
  const upd = (m: Partial<DriverUpdateMsg>): DriverUpdateMsg => ({ v: 1, driver_id: D, status: 'COMPLETED', ts: 1, ...m } as DriverUpdateMsg);
  it('no session: "no earlier session"', () => {
    const s = queried(initialTracker(D), 'Q1', 0);
    expect(onUpdate(s, upd({ status: 'REJECTED', request_id: 'Q1', reason: 'no session' }), 1).line).toBe(`${D} last session: no earlier session`);
  });
  it('the stored ticket first, then the answer: the ticket is printed once', () => {
    let s = queried(initialTracker(D), 'Q1', 0);
    const stored = onUpdate(s, upd({ request_id: 'R0', session_id: 'S9', cp_id: 'CP-001', ticket }), 1);
    expect(stored.line).toContain('ticket S9');
    s = stored.state;
    const answer = onUpdate(s, upd({ request_id: 'Q1', session_id: 'S9', cp_id: 'CP-001', ticket }), 2);
    expect(answer.line).toBe(`${D} last session: S9 COMPLETED (its ticket is above)`);
  });
  it('the answer first, then the stored ticket: nothing more printed', () => {
    let s = queried(initialTracker(D), 'Q1', 0);
    const answer = onUpdate(s, upd({ request_id: 'Q1', session_id: 'S9', cp_id: 'CP-001', ticket }), 1);
    expect(answer.line).toContain('last session: CP-001 COMPLETED');
    s = answer.state;
    expect(onUpdate(s, upd({ request_id: 'R0', session_id: 'S9', cp_id: 'CP-001', ticket }), 2).line).toBeUndefined();
  });
});
