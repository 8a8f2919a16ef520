/**
 * The one-machine compose network, run: docker/docker-compose.yml with the image built from
 * docker/Dockerfile, brought up as docs/deployment.md says, then the helper scripts add a CP and
 * a driver and crash central, whose state must survive its container's restart.
 *
 * Needs the Docker engine .ci/deploy starts (DOCKER_HOST, the Compose v2 plugin in
 * DOCKER_CONFIG, the image evcharging:latest) and runs in `npm run test:deploy`, not `npm test`.
 * Kafka stand-in: apache/kafka cannot be pulled here, so .ci/compose-kafka-standin.yml puts
 * librdkafka's mock cluster in the `kafka` service (see that file); the real Kafka service is
 * checked statically in test/unit/compose-files.test.ts.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const DOCK_NS = `${process.env.EVCI_PREFIX ?? 'evci-'}dock`;
const FILES = ['-f', 'docker/docker-compose.yml', '-f', '.ci/compose-kafka-standin.yml'];
const env = { ...process.env, CENTRAL_ADMIN_TOKEN: 'compose-admin-token-0123456789', EVCHARGING_SPEED: '30' };
const CPS = ['CP-001', 'CP-002', 'CP-003'];

const compose = async (...args: string[]) => (await run('docker', ['compose', ...FILES, ...args], { cwd: REPO_ROOT, env, maxBuffer: 16 << 20 })).stdout;
const docker = async (...args: string[]) => (await run('docker', args, { env })).stdout.trim();
/** A helper script as a user runs it: EVCHARGING_COMPOSE names the deployment (here with the stand-in overlay). */
const script = async (name: string, ...args: string[]) => (await run(`docker/${name}`, args, {
  cwd: REPO_ROOT, env: { ...env, EVCHARGING_COMPOSE: 'docker/docker-compose.yml:.ci/compose-kafka-standin.yml' },
})).stdout;

/** central's API through its published port, from the daemon's network namespace (where the ports are). */
async function api(p: string): Promise<any> {
  const { stdout } = await run('nsenter', [`--net=/run/netns/${DOCK_NS}`, 'curl', '-sf', '-m', '3', `http://127.0.0.1:8000${p}`]);
  return JSON.parse(stdout);
}
const completed = async () => ((await api('/sessions')).sessions as Array<{ session_id: string; driver_id: string; ticket?: unknown }>).filter((s) => s.ticket);
const cpStates = async () => new Map(((await api('/cp')).charging_points as Array<{ cp_id: string; state: string }>).map((c) => [c.cp_id, c.state]));

async function cleanUp() {
  for (const c of ['evcharging-cp-011', 'evcharging-monitor-cp-011', 'evcharging-driver-frank']) await docker('rm', '-f', c).catch(() => undefined);
  await compose('down', '-v', '--remove-orphans', '-t', '5').catch(() => undefined);
}

beforeAll(async () => {
  if (!process.env.DOCKER_HOST) throw new Error('no Docker engine: run through .ci/deploy (it starts one and sets DOCKER_HOST)');
  await cleanUp();
  // As the docs say, but the image is already built (--no-build): `up -d --build` would rebuild it.
  await compose('up', '-d', '--no-build', '--wait', '--wait-timeout', '240');
}, 300_000);

afterAll(async () => { await cleanUp(); }, 120_000);

describe('docker compose: one machine', () => {
  it('every service is healthy or running, with its restart policy; sessions complete', async () => {
    const ps = (await compose('ps', '--format', 'json')).trim();
    const rows = (ps.startsWith('[') ? JSON.parse(ps) : ps.split('\n').map((l) => JSON.parse(l))) as Array<{ Service: string; State: string; Health: string; Name: string }>;
    const byService = new Map(rows.map((r) => [r.Service, r]));
    for (const s of ['kafka', 'gateway', 'central', 'cp-1', 'cp-2', 'cp-3']) expect(byService.get(s)?.Health, s).toBe('healthy');
    for (const s of ['monitor-1', 'monitor-2', 'monitor-3']) expect(byService.get(s)?.State, s).toBe('running');
    for (const r of rows) expect(await docker('inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', r.Name), r.Service).toBe('unless-stopped');
    await waitFor(async () => { const s = await cpStates(); return CPS.every((id) => s.has(id)); }, { timeoutMs: 60_000, intervalMs: 500, what: 'CPs listed' });
    await waitFor(async () => (await completed()).length >= 2, { timeoutMs: 120_000, intervalMs: 1000, what: 'two completed sessions' });
    const h = await api('/health');
    expect(h).toMatchObject({ bus: 'kafka', bus_producer: 'connected', bus_consumer: 'connected' });
  }, 180_000);

  it('add-cp.sh and add-driver.sh add containers that join the network', async () => {
    expect(await script('add-cp.sh', '11', '--kw', '75', '--price', '0.38')).toMatch(/added CP-011/);
    await waitFor(async () => ['ACTIVATED', 'SUPPLYING'].includes((await cpStates()).get('CP-011') ?? ''), { timeoutMs: 90_000, intervalMs: 500, what: 'CP-011 active' });
    expect(await script('add-driver.sh', 'frank')).toMatch(/added driver-frank/);
    await waitFor(async () => (await completed()).some((s) => s.driver_id === 'driver-frank'), { timeoutMs: 120_000, intervalMs: 1000, what: 'a session of driver-frank completed' });
  }, 240_000);

  it("simulate-crash.sh central kills it; central's state survives its container's restart", async () => {
    const before = (await completed()).map((s) => s.session_id);
    expect(before.length).toBeGreaterThan(0);
    expect(await script('simulate-crash.sh', 'central')).toMatch(/crashed central/);
    await waitFor(async () => { try { await api('/health'); return false; } catch { return true; } }, { timeoutMs: 20_000, what: 'central down' });
    // `docker kill` is a manual stop for Docker's restart policy: the docs' next step starts it.
    await compose('start', 'central');
    await waitFor(async () => { try { return (await api('/health')).bus_consumer === 'connected'; } catch { return false; } }, { timeoutMs: 90_000, intervalMs: 500, what: 'central back' });
    const after = new Set((await completed()).map((s) => s.session_id));
    for (const id of before) expect(after.has(id), id).toBe(true);
    await waitFor(async () => (await completed()).length > before.length, { timeoutMs: 120_000, intervalMs: 1000, what: 'sessions complete after the restart' });
  }, 240_000);

  it("a crash inside the container (the process killed, not the container stopped) is restarted by the restart policy", async () => {
    const id = (await compose('ps', '-q', 'cp-2')).trim();
    const restarts = Number(await docker('inspect', '-f', '{{.RestartCount}}', id));
    // SIGKILL every process of the container but its init: the engine dies as in an OOM kill.
    await docker('exec', id, 'sh', '-c', 'kill -KILL -1').catch(() => undefined);
    await waitFor(async () => Number(await docker('inspect', '-f', '{{.RestartCount}}', id)) > restarts, { timeoutMs: 30_000, intervalMs: 500, what: 'cp-2 restarted by Docker' });
    await waitFor(async () => (await docker('inspect', '-f', '{{.State.Health.Status}}', id)) === 'healthy', { timeoutMs: 90_000, intervalMs: 1000, what: 'cp-2 healthy again' });
  }, 150_000);
});
