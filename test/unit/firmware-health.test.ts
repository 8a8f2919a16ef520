import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, parseHealthRequest, parseHealthReply, type FaultKind } from '../../protocol/index.js';
import { answerHealthLine, type HealthTarget } from '../../firmware/health-server.js';

/** The health port's view of an engine, in memory. */
function target() {
  const faults = new Set<FaultKind>();
  const t: HealthTarget & { faults: Set<FaultKind>; stalled: boolean } = {
    faults, stalled: false,
    health: () => (faults.size ? { ok: false, reason: `fault ${[...faults].join(',')}` } : t.stalled ? { ok: false, reason: 'loop stalled 9000 ms' } : { ok: true }),
    snapshot: () => ({ state: faults.size ? 'FAULTY' : 'ACTIVATED', faults: [...faults] }),
    injectFault: (k) => { faults.add(k); },
    repair: (k) => { if (k) faults.delete(k); else faults.clear(); },
  };
  return t;
}

describe('health port protocol', () => {
  it('parses requests, case-insensitively, with CR/LF and spaces trimmed', () => {
    expect(parseHealthRequest('PING')).toEqual({ verb: 'PING' });
    expect(parseHealthRequest(' ping \r')).toEqual({ verb: 'PING' });
    expect(parseHealthRequest('STATUS')).toEqual({ verb: 'STATUS' });
    expect(parseHealthRequest('FAULT ground_fault')).toEqual({ verb: 'FAULT', kind: 'ground_fault' });
    expect(parseHealthRequest('REPAIR')).toEqual({ verb: 'REPAIR' });
    expect(parseHealthRequest('repair meter_failure')).toEqual({ verb: 'REPAIR', kind: 'meter_failure' });
  });

  it('refuses garbage with a reason', () => {
    expect(parseHealthRequest('FAULT')).toEqual({ error: 'FAULT needs a kind' });
    expect(parseHealthRequest('PING a b')).toEqual({ error: 'too many arguments' });
    expect(parseHealthRequest('\x00\xff\x01')).toEqual({ error: 'non-ASCII bytes' });
    expect(parseHealthRequest('HELLO')).toMatchObject({ error: expect.stringMatching(/unknown request "HELLO"/) });
  });

  it('PING answers OK when healthy, KO with the reason when faulted or stalled', () => {
    const t = target();
    expect(answerHealthLine('PING', t)).toEqual({ reply: 'OK', error: false });
    t.stalled = true;
    expect(answerHealthLine('PING', t).reply).toBe('KO loop stalled 9000 ms');
    t.stalled = false;
    t.faults.add('over_temperature');
    expect(answerHealthLine('PING', t).reply).toBe('KO fault over_temperature');
    expect(parseHealthReply(answerHealthLine('PING', t).reply)).toEqual({ ok: false, reason: 'fault over_temperature' });
  });

  it('STATUS answers OK with JSON', () => {
    const { reply } = answerHealthLine('STATUS', target());
    expect(reply.startsWith('OK ')).toBe(true);
    expect(JSON.parse(reply.slice(3))).toEqual({ state: 'ACTIVATED', faults: [] });
  });

  it('FAULT and REPAIR drive the target; unknown kinds are refused', () => {
    const t = target();
    for (const kind of FAULT_KINDS) expect(answerHealthLine(`FAULT ${kind}`, t)).toEqual({ reply: `OK fault ${kind} injected`, error: false });
    expect(t.faults.size).toBe(FAULT_KINDS.length);
    expect(answerHealthLine('REPAIR ground_fault', t).reply).toBe('OK repaired');
    expect(t.faults.has('ground_fault')).toBe(false);
    expect(answerHealthLine('REPAIR', t).reply).toBe('OK repaired');
    expect(t.faults.size).toBe(0);
    expect(answerHealthLine('FAULT lightning', t)).toMatchObject({ reply: expect.stringMatching(/^ERR unknown fault kind/), error: true });
    expect(answerHealthLine('REPAIR lightning', t).error).toBe(true);
  });

  it('a target that cannot inject answers ERR, not a crash', () => {
    const t = { ...target(), injectFault: () => { throw new Error('the serial HAL cannot inject faults'); } };
    expect(answerHealthLine('FAULT ground_fault', t)).toEqual({ reply: 'ERR the serial HAL cannot inject faults', error: true });
  });
});
