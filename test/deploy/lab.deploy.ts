/**
 * Three lab machines on one: network namespaces `core` (10.77.0.1), `cps` (10.77.0.2) and
 * `drivers` (10.77.0.3) joined by a bridge in a fourth, `lan`. Every process is started as
 * docs/deployment.md section 4a ("Three lab machines", without Docker) tells a lab user: the same commands and
 * only the documented variables (no flags). Needs root and a few minutes, so it is not part of
 * `npm test`: `.ci/deploy` runs it (`npm run test:deploy`).
 *
 * Kafka stand-in (no Apache Kafka here): librdkafka's mock cluster (kcat) on core, published at
 * 10.77.0.1:9092 by a TCP forwarder. The mock advertises 127.0.0.1:<port> only — exactly the
 * misconfiguration of the docs' troubleshooting section (a broker advertising an address other
 * machines cannot reach), so the first test checks that every client names it within 10 s. Then
 * a forwarder on the drivers' own loopback makes the advertised address reachable there, which is
 * what KAFKA_ADVERTISED_HOST=10.77.0.1 does for a real broker.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const P = process.env.EVCI_PREFIX ?? 'evci-';
const NS = { lan: `${P}lan`, core: `${P}core`, cps: `${P}cps`, drivers: `${P}drivers` };
const IP = { core: '10.77.0.1', cps: '10.77.0.2', drivers: '10.77.0.3' };
const CORE = IP.core;
const CPS = ['CP-001', 'CP-002', 'CP-003'];
const TOKEN = 'lab-admin-token-0123456789';

const sh = (...args: string[]) => run(args[0]!, args.slice(1));
const inNs = (ns: string) => ['ip', 'netns', 'exec', ns];

/** curl, run on a lab host, as a user there would: status code and parsed body. */
async function curl(ns: string, url: string): Promise<{ status: number; body: any }> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'curl', '-s', '-m', '3', '-w', '\n%{http_code}', url]);
  const i = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, i);
  return { status: Number(stdout.slice(i + 1)), body: text ? JSON.parse(text) : undefined };
}

const helpers: ChildProcess[] = [];
function helper(ns: string, cmd: string[]): ChildProcess {
  const c = spawn('ip', [...['netns', 'exec', ns], ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
  helpers.push(c);
  return c;
}

async function setUpHosts(): Promise<void> {
  await tearDownHosts();
  await sh('ip', 'netns', 'add', NS.lan);
  await sh('ip', '-n', NS.lan, 'link', 'set', 'lo', 'up');
  await sh('ip', '-n', NS.lan, 'link', 'add', 'br0', 'type', 'bridge');
  await sh('ip', '-n', NS.lan, 'link', 'set', 'br0', 'up');
  for (const h of ['core', 'cps', 'drivers'] as const) {
    await sh('ip', 'netns', 'add', NS[h]);
    await sh('ip', '-n', NS[h], 'link', 'set', 'lo', 'up');
    await sh('ip', '-n', NS.lan, 'link', 'add', `to-${h}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS[h]);
    await sh('ip', '-n', NS.lan, 'link', 'set', `to-${h}`, 'master', 'br0', 'up');
    await sh('ip', '-n', NS[h], 'addr', 'add', `${IP[h]}/24`, 'dev', 'eth0');
    await sh('ip', '-n', NS[h], 'link', 'set', 'eth0', 'up');
  }
}
async function tearDownHosts(): Promise<void> {
  for (const ns of Object.values(NS)) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
}

/** The cable between a host and the lab switch. */
const cable = (h: 'cps' | 'drivers' | 'core', up: boolean) => sh('ip', '-n', NS.lan, 'link', 'set', `to-${h}`, up ? 'up' : 'down');

let dir: string;
let mockPort: number;
const procs: CliProcess[] = [];
function start(ns: string, args: string[], env: Record<string, string>): CliProcess {
  const p = spawnCli(args, { wrap: inNs(ns), env });
  procs.push(p);
  return p;
}
const alive = (p: CliProcess) => p.child.exitCode === null && p.child.signalCode === null;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the lab test needs root (ip netns): run it through .ci/deploy');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'evcharging-lab-'));
  await setUpHosts();
  // Kafka stand-in on core: the mock cluster, published on the core's address at 9092.
  const kcat = helper(NS.core, ['kcat', '-C', '-b', 'x:1', '-X', 'test.mock.num.brokers=1', '-d', 'mock', '-t', 'keepalive', '-o', 'end', '-q']);
  let err = '';
  kcat.stderr!.setEncoding('utf8');
  kcat.stderr!.on('data', (d: string) => { if (err.length < 100_000) err += d; });
  const bootstrap = await waitFor(() => /bootstrap\.servers=127\.0\.0\.1:(\d+)/.exec(err)?.[1], { timeoutMs: 20_000, what: `kcat mock cluster\n${err.slice(-300)}` });
  mockPort = Number(bootstrap);
  helper(NS.core, ['socat', `TCP-LISTEN:9092,bind=${CORE},fork,reuseaddr`, `TCP:127.0.0.1:${mockPort}`]);
  await waitFor(async () => { try { await run('ip', [...inNs(NS.drivers).slice(1), 'bash', '-c', `exec 3<>/dev/tcp/${CORE}/9092`]); return true; } catch { return false; } },
    { timeoutMs: 10_000, what: 'Kafka stand-in at 10.77.0.1:9092' });
}, 60_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  for (const h of helpers) h.kill('SIGKILL');
  await tearDownHosts();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('three lab machines', () => {
  it('a Kafka advertising an address this machine cannot reach is named by driver, central and gateway within 10 s; /health answers 503', async () => {
    // The drivers' host before the fix: the bootstrap answers, the advertised 127.0.0.1:<port> does not.
    const env = { KAFKA_BOOTSTRAP: `${CORE}:9092`, CENTRAL_HOST: CORE };
    const requests = path.join(dir, 'one.txt');
    await fs.writeFile(requests, 'CP-001\n');
    const driver = start(NS.drivers, ['driver'], { ...env, DRIVER_ID: 'driver-misconf', DRIVER_REQUESTS_FILE: requests });
    const central = start(NS.drivers, ['central'], { ...env, CENTRAL_DATA_DIR: path.join(dir, 'misconf-central'), CENTRAL_ADMIN_TOKEN: TOKEN });
    const gateway = start(NS.drivers, ['gateway'], { ...env, GATEWAY_DEV_MODE: 'true' });
    const named = new RegExp(`advertises 127\\.0\\.0\\.1:${mockPort} .*KAFKA_ADVERTISED_HOST`);
    // Within 10 s of the process's first line (its start; Node's own start-up on a loaded CI machine not counted).
    await Promise.all([driver, central, gateway].map(async (p) => {
      await p.waitForLine(() => true, 30_000);
      await p.waitForLine(named, 10_000);
    }));
    for (const p of [driver, central, gateway]) {
      expect(p.lines.join('\n')).not.toMatch(/kafka reachable, connected|"bus connected"/);
      expect(p.lines.join('\n')).not.toMatch(/^\s+at /m);
    }
    const hc = await waitFor(async () => { try { return await curl(NS.drivers, 'http://127.0.0.1:8000/health'); } catch { return undefined; } }, { what: 'central /health' });
    expect(hc.status).toBe(503);
    expect(hc.body.bus_problem).toMatch(named);
    const hg = await waitFor(async () => { try { return await curl(NS.drivers, 'http://127.0.0.1:8090/health'); } catch { return undefined; } }, { what: 'gateway /health' });
    expect(hg.status).toBe(503);
    expect(hg.body.kafka_up).toBe(false);
    await Promise.all([driver, central, gateway].map((p) => p.kill('SIGTERM')));
    // Nothing was ever delivered: the gateway does not claim to have flushed anything.
    expect(gateway.lines.join('\n')).not.toMatch(/buffer flushed to Kafka/);
  }, 60_000);

  it('core, CPs and drivers started as the docs say complete sessions, survive a cable cut and a gateway SIGKILL without restarts', async () => {
    // The fix on the drivers' host (stand-in for KAFKA_ADVERTISED_HOST): the advertised address reachable.
    helper(NS.drivers, ['socat', `TCP-LISTEN:${mockPort},bind=127.0.0.1,fork,reuseaddr`, `TCP:${CORE}:9092`]);

    // --- machine 1: core ---------------------------------------------------------------------
    const coreEnv = { KAFKA_BOOTSTRAP: `${CORE}:9092` };
    const gwEnv = { ...coreEnv, GATEWAY_DEV_MODE: 'true' };
    let gateway = start(NS.core, ['gateway'], gwEnv);
    const central = start(NS.core, ['central'], { ...coreEnv, CENTRAL_DEV_PUBLIC: 'true', CENTRAL_ADMIN_TOKEN: TOKEN, CENTRAL_DATA_DIR: path.join(dir, 'central') });
    // Bound to every address, central says where it is reachable: the core's address, not localhost.
    await central.waitForLine(new RegExp(`central ready at http://${CORE.replace(/\./g, '\\.')}:8000`), 30_000);
    await central.waitForLine(/"bus connected"/, 60_000);
    await gateway.waitForLine(new RegExp(`"mqtt":\\["mqtt://${CORE.replace(/\./g, '\\.')}:1883`), 30_000);

    // --- machine 2: CPs and monitors ---------------------------------------------------------
    const cpEnv = { GATEWAY_HOST: CORE, CENTRAL_HOST: CORE, CENTRAL_PORT: '8000' };
    const engines: CliProcess[] = [];
    const monitors: CliProcess[] = [];
    CPS.forEach((id, i) => {
      const port = String(8001 + i);
      engines.push(start(NS.cps, ['cp'], { ...cpEnv, CP_ENGINE_CP_ID: id, CP_ENGINE_HEALTH_PORT: port, CP_ENGINE_SIM_SPEED: '30' }));
      monitors.push(start(NS.cps, ['monitor'], {
        ...cpEnv, CP_MONITOR_CP_ID: id, CP_MONITOR_CP_E_HOST: '127.0.0.1', CP_MONITOR_CP_E_PORT: port,
        CP_MONITOR_HEALTH_INTERVAL: '1.0', CP_MONITOR_LOG_LEVEL: 'INFO',
      }));
    });

    // --- machine 3: drivers ------------------------------------------------------------------
    // From the drivers' host, as a lab user checks it first: every CP listed.
    const cpStates = async () => {
      const r = await curl(NS.drivers, `http://${CORE}:8000/cp`);
      return new Map((r.body.charging_points as Array<{ cp_id: string; state: string }>).map((c) => [c.cp_id, c.state]));
    };
    await waitFor(async () => { const s = await cpStates(); return CPS.every((id) => s.has(id)); }, { timeoutMs: 60_000, intervalMs: 500, what: 'every CP listed by central' });
    const requests = path.join(dir, 'requests.txt');
    await fs.writeFile(requests, 'CP-001\nCP-002\nCP-003\n'.repeat(13));
    const drvEnv = { KAFKA_BOOTSTRAP: `${CORE}:9092`, CENTRAL_HOST: CORE, DRIVER_REQUESTS_FILE: requests, DRIVER_WAIT_SECONDS: '1', DRIVER_MAX_CHARGE_SECONDS: '4' };
    const drivers = ['alice', 'bob'].map((d) => start(NS.drivers, ['driver'], { ...drvEnv, DRIVER_ID: `driver-${d}` }));
    const everyone = () => [central, ...engines, ...monitors, ...drivers];
    const tails = () => [gateway, ...everyone()].map((p) => p.lines.slice(-4).join('\n')).join('\n');

    const completed = async () => ((await curl(NS.drivers, `http://${CORE}:8000/sessions`)).body.sessions as Array<{ ticket?: unknown; interrupted?: boolean }>).filter((s) => s.ticket);
    await waitFor(async () => (await completed()).length >= 3, { timeoutMs: 180_000, intervalMs: 1000, what: `3 completed sessions\n${drivers.map((d) => d.lines.slice(-5).join('\n')).join('\n')}` });
    expect((await completed()).filter((s) => s.interrupted)).toEqual([]);

    // Monitors log their CP once a line (the original's names set them up: CP_MONITOR_*).
    for (const m of monitors) for (const l of m.lines) expect(l.match(/"cp_id"/g)?.length ?? 0).toBeLessThanOrEqual(1);

    // --- a cable cut: the CP machine is off the network, then back --------------------------
    await cable('cps', false);
    await waitFor(async () => { const s = await cpStates(); return CPS.every((id) => s.get(id) === 'DISCONNECTED'); },
      { timeoutMs: 60_000, intervalMs: 500, what: 'central sees the CPs gone' });
    const beforeRestore = (await completed()).length;
    await cable('cps', true);
    await waitFor(async () => { const s = await cpStates(); return CPS.every((id) => ['ACTIVATED', 'SUPPLYING'].includes(s.get(id) ?? '')); },
      { timeoutMs: 90_000, intervalMs: 500, what: 'CPs back after the cable is restored' }).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify([...(await cpStates().catch(() => new Map()))])}\n${tails()}`);
    });
    await waitFor(async () => (await completed()).length >= beforeRestore + 2, { timeoutMs: 180_000, intervalMs: 1000, what: 'sessions complete after the cable cut' });
    for (const p of [gateway, ...everyone()]) expect(alive(p), p.lines.slice(-3).join('\n')).toBe(true);

    // --- the gateway SIGKILLed and started again; nothing else restarted --------------------
    await gateway.kill('SIGKILL');
    const beforeGateway = (await completed()).length;
    gateway = start(NS.core, ['gateway'], gwEnv);
    await waitFor(async () => { const s = await cpStates(); return CPS.every((id) => ['ACTIVATED', 'SUPPLYING'].includes(s.get(id) ?? '')); },
      { timeoutMs: 90_000, intervalMs: 500, what: 'CPs back through the restarted gateway' });
    await waitFor(async () => (await completed()).length >= beforeGateway + 2, { timeoutMs: 180_000, intervalMs: 1000, what: 'sessions complete after the gateway restart' });
    for (const p of everyone()) expect(alive(p), p.lines.slice(-3).join('\n')).toBe(true);
    const h = await curl(NS.drivers, `http://${CORE}:8000/health`);
    expect(h.status).toBe(200);
    console.log(`lab: ${(await completed()).length} completed sessions across three hosts, cable cut and gateway SIGKILL recovered`);
  }, 900_000);
});
