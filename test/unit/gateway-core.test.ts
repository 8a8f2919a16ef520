import { describe, expect, it } from 'vitest';
import { mayPublish, maySubscribe } from '../../gateway/acl.js';
import { ForwardBuffer } from '../../gateway/forward-buffer.js';
import { hashSecret, verifySecret } from '../../gateway/credentials.js';

describe('gateway ACL', () => {
  const cp = { id: 'CP-001', role: 'cp' as const };
  const svc = { id: 'central', role: 'service' as const };
  it('lets a CP publish only under its own topics and never cmd', () => {
    expect(mayPublish(cp, 'cp/CP-001/status')).toBe(true);
    expect(mayPublish(cp, 'cp/CP-001/telemetry')).toBe(true);
    expect(mayPublish(cp, 'cp/CP-002/status')).toBe(false);
    expect(mayPublish(cp, 'cp/CP-001/cmd')).toBe(false);
    expect(mayPublish(cp, 'bus/cp.status/CP-001')).toBe(false);
  });
  it('lets a CP subscribe only to its own commands', () => {
    expect(maySubscribe(cp, 'cp/CP-001/cmd')).toBe(true);
    expect(maySubscribe(cp, 'cp/+/cmd')).toBe(false);
    expect(maySubscribe(cp, '#')).toBe(false);
    expect(maySubscribe(cp, 'bus/#')).toBe(false);
  });
  it('keeps services on bus/ and off the CP-sourced topics', () => {
    expect(mayPublish(svc, 'bus/central.commands/CP-001')).toBe(true);
    expect(mayPublish(svc, 'bus/cp.status/CP-001')).toBe(false);
    expect(mayPublish(svc, 'cp/CP-001/cmd')).toBe(false);
    expect(maySubscribe(svc, 'bus/#')).toBe(true);
    expect(maySubscribe(svc, 'cp/#')).toBe(false);
  });
});

describe('forward buffer', () => {
  const item = (n: number, droppable: boolean) => ({ topic: 't', key: 'k', value: Buffer.from(String(n)), droppable });
  it('sheds the oldest telemetry first and keeps every critical message in order', () => {
    const b = new ForwardBuffer(3);
    b.push(item(1, true)); b.push(item(2, false)); b.push(item(3, true)); b.push(item(4, false)); b.push(item(5, false));
    expect(b.shed).toBe(2);
    expect(b.peek(10).map((p) => p.value.toString())).toEqual(['2', '4', '5']);
    b.push(item(6, false));
    expect(b.size).toBe(4); // critical data may exceed the bound rather than be lost
    b.ack(2);
    expect(b.peek(10).map((p) => p.value.toString())).toEqual(['5', '6']);
  });
});

describe('credentials', () => {
  it('verifies the right secret only', () => {
    const e = hashSecret('CP-001', 'cp', 's3cret');
    expect(verifySecret(e, 's3cret')).toBe(true);
    expect(verifySecret(e, 'nope')).toBe(false);
    expect(e.hash).not.toContain('s3cret');
  });
});
