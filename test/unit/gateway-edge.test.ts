import { describe, expect, it } from 'vitest';
import { clientIdProblem, covers, mayPublish, maySubscribe, retainAllowed } from '../../gateway/acl.js';
import { ConnectionGate, DEFAULT_EDGE_LIMITS, LogLimiter, PacketGuard, effectiveMaxConnections } from '../../gateway/limits.js';
import type { Logger } from '../../lib/log.js';

describe('role ACL patterns', () => {
  const alice = { id: 'driver-alice', role: 'driver' as const };
  const central = { id: 'central', role: 'central' as const };
  it('covers: a filter is allowed only if every topic it matches is', () => {
    expect(covers('bus/driver.updates/+', 'bus/driver.updates/x')).toBe(true);
    expect(covers('bus/driver.updates/+', 'bus/driver.updates/+')).toBe(true);
    expect(covers('bus/driver.updates/+', 'bus/driver.updates/#')).toBe(false);
    expect(covers('bus/driver.updates/x', 'bus/driver.updates/+')).toBe(false);
    expect(covers('bus/#', 'bus/a/b/c')).toBe(true);
    expect(covers('bus/#', '#')).toBe(false);
    expect(covers('bus/a/+', 'bus/a')).toBe(false);
  });
  it('a driver: own requests with its own id inside, own updates only', () => {
    const own = JSON.stringify({ driver_id: 'driver-alice' });
    expect(mayPublish(alice, 'bus/driver.requests/driver-alice', { payload: own })).toBe(true);
    expect(mayPublish(alice, 'bus/driver.requests/driver-alice', { payload: JSON.stringify({ driver_id: 'driver-bob' }) })).toBe(false);
    expect(mayPublish(alice, 'bus/driver.requests/driver-alice', { payload: 'not json' })).toBe(false);
    expect(mayPublish(alice, 'bus/driver.requests/driver-bob', { payload: own })).toBe(false);
    expect(mayPublish(alice, 'bus/driver.requests/driver-alice', { payload: own, retain: true })).toBe(false);
    expect(mayPublish(alice, 'bus/central.commands/CP-001')).toBe(false);
    expect(mayPublish(alice, 'bus/driver.updates/driver-alice')).toBe(false);
    expect(maySubscribe(alice, 'bus/driver.updates/driver-alice')).toBe(true);
    expect(maySubscribe(alice, 'bus/driver.updates/+')).toBe(false);
    expect(maySubscribe(alice, 'bus/#')).toBe(false);
  });
  it('central commands and answers, never retained; monitor and admin publish nothing', () => {
    expect(mayPublish(central, 'bus/central.commands/CP-001', { payload: JSON.stringify({ cp_id: 'CP-001' }) })).toBe(true);
    expect(mayPublish(central, 'bus/central.commands/CP-001', { payload: JSON.stringify({ cp_id: 'CP-002' }) })).toBe(false);
    expect(mayPublish(central, 'bus/driver.updates/x', { payload: JSON.stringify({ driver_id: 'x' }), retain: true })).toBe(false);
    expect(mayPublish(central, 'bus/cp.status/CP-001')).toBe(false);
    for (const role of ['monitor', 'admin'] as const) expect(mayPublish({ id: 'm', role }, 'bus/central.commands/CP-001')).toBe(false);
    expect(maySubscribe({ id: 'm', role: 'monitor' }, 'bus/#')).toBe(false);
  });
  it('retain only on a CP\'s status', () => {
    expect(retainAllowed('cp/CP-001/status')).toBe(true);
    expect(retainAllowed('cp/CP-001/telemetry')).toBe(false);
    expect(retainAllowed('bus/cp.status/CP-001')).toBe(false);
    expect(mayPublish({ id: 'CP-001', role: 'cp' }, 'cp/CP-001/status', { retain: true })).toBe(true);
  });
  it('client ids are bound to the username', () => {
    expect(clientIdProblem({ id: 'CP-001', role: 'cp' }, 'CP-001')).toBeUndefined();
    expect(clientIdProblem({ id: 'CP-001', role: 'cp' }, 'CP-001:x')).toBeDefined();
    expect(clientIdProblem({ id: 'CP-001', role: 'cp' }, 'CP-002')).toBeDefined();
    expect(clientIdProblem(central, 'central:evcharging-central')).toBeUndefined();
    expect(clientIdProblem(alice, 'evcharging-central')).toBeDefined();
    expect(clientIdProblem(alice, 'driver-alice-2')).toBeDefined(); // could be another identity's id
  });
});

describe('edge limits', () => {
  it('PacketGuard refuses an oversize packet from its length bytes, a non-CONNECT first packet, a 5-byte length', () => {
    expect(new PacketGuard(100, 1000).feed(Buffer.from([0x10, 0xff, 0xff]))).toBe('packet_too_large');
    expect(new PacketGuard(100, 1000).feed(Buffer.from([0x30, 0x00]))).toBe('not_connect');
    const g = new PacketGuard(100, 1000);
    expect(g.feed(Buffer.concat([Buffer.from([0x10, 10]), Buffer.alloc(10)]))).toBeUndefined();
    // After CONNECT the larger limit holds, across chunk boundaries.
    expect(g.feed(Buffer.from([0x30, 0xe5]))).toBeUndefined(); // remaining length 997 = 0x65 + 7 × 128, split over two chunks
    expect(g.feed(Buffer.from([0x07]))).toBeUndefined(); // 1 + 2 + 997 = 1000 bytes: at the limit
    expect(g.feed(Buffer.alloc(997))).toBeUndefined();
    expect(g.feed(Buffer.from([0x30, 0xe6, 0x07]))).toBe('packet_too_large'); // 1001 bytes
    const h = new PacketGuard(100, 1000);
    h.feed(Buffer.from([0x10, 0]));
    expect(h.feed(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))).toBe('bad_length');
  });
  it('ConnectionGate: global cap, pending per address, token bucket', () => {
    let t = 0;
    const gate = new ConnectionGate({ ...DEFAULT_EDGE_LIMITS, maxConnections: 5, maxPendingPerAddress: 2, connectBurstPerAddress: 3, connectRatePerAddress: 1 }, () => t);
    expect(gate.admit('a')).toBeUndefined();
    expect(gate.admit('a')).toBeUndefined();
    expect(gate.admit('a')).toBe('pending_per_address');
    gate.settled('a'); gate.settled('a');
    expect(gate.admit('a')).toBeUndefined();
    expect(gate.admit('a')).toBe('connection_rate');
    t += 1000; // one token back
    expect(gate.admit('a')).toBeUndefined();
    expect(gate.admit('b')).toBeUndefined();
    expect(gate.admit('c')).toBe('max_connections');
    gate.closed();
    expect(gate.admit('c')).toBeUndefined();
  });
  it('the connection cap fits the fd limit', () => {
    expect(effectiveMaxConnections(10_000, 1024)).toBe(768);
    expect(effectiveMaxConnections(10_000, 65_536)).toBe(10_000);
    expect(effectiveMaxConnections(10_000, undefined)).toBe(10_000);
  });
  it('by default 10,000 CPs and the clients beside them fit under a 20,000 fd limit', () => {
    // At a default of 10,000, bench:scale's 10,000th CP was refused: central and a bus observer had taken two of the places.
    expect(effectiveMaxConnections(DEFAULT_EDGE_LIMITS.maxConnections, 20_000)).toBeGreaterThanOrEqual(10_000 + 1_000);
  });
  it('LogLimiter: 5 lines per source per window, then one summary; sources bounded', () => {
    const lines: string[] = [];
    const log = { warn: (_o: unknown, m: string) => lines.push(m), info: (_o: unknown, m: string) => lines.push(m) } as unknown as Logger;
    let t = 0;
    const l = new LogLimiter(log, 5, 1000, 3, () => t);
    for (let i = 0; i < 1000; i++) l.warn('a', {}, 'refused');
    expect(lines).toHaveLength(5);
    t = 1000;
    l.warn('a', {}, 'refused');
    expect(lines.slice(5)).toEqual(['log lines suppressed for this source', 'refused']);
    for (let i = 0; i < 100; i++) l.warn(`s${i}`, {}, 'x');
    expect(l.suppressed).toBe(995);
  });
});
