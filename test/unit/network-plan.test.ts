import { describe, expect, it } from 'vitest';
import {
  centralSpec, cpIdFrom, driverIdForIndex, driverIdFrom, driverSpec, engineSpec, gatewaySpec, monitorSpec, pickHealthPort, pickRandom, requestLines,
  type NetworkSettings,
} from '../../network/plan.js';
import { duration, statusTable } from '../../network/status-table.js';

const s: NetworkSettings = {
  host: '127.0.0.1', gatewayMqttPort: 1883, gatewayHttpPort: 8090, centralPort: 8000, dataDir: '/data', adminToken: 'tok',
  speed: 60, driverWaitS: 1, maxChargeS: 8,
};

describe('network plan', () => {
  it('names CPs and drivers the way an operator types them', () => {
    expect(cpIdFrom('11')).toBe('CP-011');
    expect(cpIdFrom('1')).toBe('CP-001');
    expect(cpIdFrom('1234')).toBe('CP-1234');
    expect(cpIdFrom('lab-7')).toBe('lab-7');
    expect(() => cpIdFrom('0')).toThrow(/out of range/);
    expect(() => cpIdFrom('a/b')).toThrow(/not a CP id/);
    expect(driverIdFrom('frank')).toBe('driver-frank');
    expect(driverIdFrom('driver-frank')).toBe('driver-frank');
    expect(() => driverIdFrom('x y')).toThrow();
    expect([0, 1, 5].map(driverIdForIndex)).toEqual(['driver-alice', 'driver-bob', 'driver-frank']);
    expect(driverIdForIndex(100)).toBe('driver-d101');
  });

  it('wires every component to the same gateway, central and bus', () => {
    expect(gatewaySpec(s).args).toEqual(expect.arrayContaining(['gateway', '--mqtt-port', '1883', '--http-port', '8090']));
    expect(gatewaySpec(s).health).toEqual({ kind: 'http', url: 'http://127.0.0.1:8090/health' });
    expect(centralSpec(s).args).toEqual(expect.arrayContaining(['central', '--port', '8000', '--data-dir', '/data/central']));
    // The admin token travels in the environment, never on a command line (ps shows those to every user).
    expect(centralSpec(s).args).not.toContain('tok');
    expect(centralSpec(s).env).toEqual({ CENTRAL_ADMIN_TOKEN: 'tok' });
    const cp = { id: 'CP-011', healthPort: 8011, kw: 75, price: 0.38 };
    const engine = engineSpec(s, cp);
    expect(engine.name).toBe('CP-011');
    expect(engine.args).toEqual(expect.arrayContaining(['cp', '--id', 'CP-011', '--health-port', '8011', '--mqtt', 'mqtt://127.0.0.1:1883', '--kw', '75', '--price', '0.38', '--speed', '60']));
    expect(engine.health).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 8011 });
    expect(monitorSpec(s, cp).args).toEqual(['monitor', '--cp', 'CP-011', '--engine', '127.0.0.1:8011', '--central', 'http://127.0.0.1:8000']);
    const d = driverSpec(s, 'driver-frank', '/data/drivers/driver-frank.txt');
    expect(d.again).toBe(true);
    expect(d.args).toEqual(expect.arrayContaining(['driver', '--id', 'driver-frank', '--requests', '/data/drivers/driver-frank.txt']));
    expect(gatewaySpec(s).args).not.toContain('--kafka-bootstrap');
    const k = { ...s, kafkaBootstrap: ['k1:9092', 'k2:9092'] };
    for (const spec of [gatewaySpec(k), centralSpec(k), driverSpec(k, 'driver-a', 'f')]) expect(spec.args).toEqual(expect.arrayContaining(['--kafka-bootstrap', 'k1:9092,k2:9092']));
  });

  it('spreads drivers over CPs and puts a new CP first', () => {
    const ids = ['CP-001', 'CP-002', 'CP-003'];
    expect(requestLines(ids, 0)).toBe('CP-001\nCP-002\nCP-003\n');
    expect(requestLines(ids, 1)).toBe('CP-002\nCP-003\nCP-001\n');
    expect(requestLines([...ids, 'CP-011'], 1, 'CP-011')).toBe('CP-011\nCP-002\nCP-003\nCP-001\n');
  });

  it('gives CP-n the health port base+n-1, else the next free one', () => {
    expect(pickHealthPort('CP-011', 8001, new Set())).toBe(8011);
    expect(pickHealthPort('CP-011', 8001, new Set([8011]))).toBe(8001);
    expect(pickHealthPort('lab-7', 8001, new Set([8001, 8002]))).toBe(8003);
    expect(() => pickHealthPort('x', 65535, new Set([65535]))).toThrow(/no free/);
  });

  it('picks a random item, or none from nothing', () => {
    expect(pickRandom(['a', 'b', 'c'], () => 0.99)).toBe('c');
    expect(pickRandom(['a', 'b', 'c'], () => 0)).toBe('a');
    expect(pickRandom([], () => 0.5)).toBeUndefined();
  });
});

describe('status table', () => {
  it('shows one aligned row per component with pid, state and health', () => {
    const now = 1_000_000;
    const out = statusTable([
      { name: 'gateway', kind: 'gateway', pid: 4242, state: 'running', restarts: 0, since: now - 5_000, health: 'ok' },
      { name: 'CP-002', kind: 'engine', state: 'crashed', exit: 'SIGKILL', restarts: 1, since: now - 125_000, health: '-' },
    ], now);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^COMPONENT\s+KIND\s+PID\s+STATE\s+HEALTH\s+RESTARTS\s+FOR$/);
    expect(lines[1]).toMatch(/^gateway\s+gateway\s+4242\s+running\s+ok\s+0\s+5s$/);
    expect(lines[2]).toMatch(/^CP-002\s+engine\s+-\s+crashed \(SIGKILL\)\s+-\s+1\s+2m05s$/);
    expect(lines[1]!.indexOf('4242')).toBe(lines[0]!.indexOf('PID'));
    expect(duration(3 * 3600_000 + 7 * 60_000)).toBe('3h07m');
  });
});
