import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `evcharging fleet --ocpp` against the project's own gateway (real processes, two fleet
 * workers): every charge point boots over OCPP, the automatic drivers authorize and start
 * sessions locally, meter and stop them; the fleet reports calls/s and response times, and the
 * sessions' records reach the bus through the gateway's OCPP endpoint.
 */
const procs: CliProcess[] = [];
let bus: mqtt.MqttClient | undefined;
afterAll(async () => {
  await bus?.endAsync(true).catch(() => undefined);
  for (const p of procs.reverse()) await p.kill('SIGTERM').catch(() => undefined);
}, 60_000);

const json = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(5_000) })).json() as Promise<Record<string, any>>;

describe('evcharging fleet --ocpp', () => {
  it('boots every charge point at the gateway over OCPP and runs automatic sessions', async () => {
    const [mqttPort, gwHttp, ocppPort, fleetHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const gw = spawnCli(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp), '--ocpp-port', String(ocppPort)]);
    procs.push(gw);
    await gw.waitForLine(/"gateway listening"/, 30_000);
    const sessionEnds = new Set<string>();
    bus = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `ocpp-fleet-it-${process.pid}` });
    bus.on('message', (_t, payload) => { try { const m = JSON.parse(payload.toString()); if (m.type === 'session_end') sessionEnds.add(m.session_id); } catch { /* not ours */ } });
    await bus.subscribeAsync('bus/cp.status/#', { qos: 1 });

    const fleet = spawnCli(['fleet', '--count', '10', '--workers', '2', '--id-prefix', 'OF-', '--ocpp', `ws://127.0.0.1:${ocppPort}/ocpp`, '--ocpp-version', '2.0.1',
      '--session-probability', '1', '--session-min-s', '1', '--session-max-s', '2', '--pause-min-s', '0.5', '--pause-max-s', '1', '--meter-interval-s', '1',
      '--stats-s', '1', '--speed', '60', '--http-port', String(fleetHttp), '--health-host', '127.0.0.1']);
    procs.push(fleet);
    await waitFor(async () => (await json(`http://127.0.0.1:${gwHttp}/health`)).ocpp_clients === 10, { timeoutMs: 60_000, what: `10 OCPP clients at the gateway\n${fleet.lines.slice(-5).join('\n')}` });
    const h = await waitFor(async () => {
      const f = await json(`http://127.0.0.1:${fleetHttp}/health`);
      return f.connected === 10 && f.sessions >= 10 && f.ocpp_calls_per_s > 0 && f.ocpp_p99_ms !== null ? f : undefined;
    }, { timeoutMs: 60_000, what: 'sessions at every charge point and a stats window' });
    expect(h).toMatchObject({ count: 10, workers_up: 2, failed: 0 });
    // Local sessions went through the gateway's OCPP endpoint onto the bus.
    await waitFor(() => sessionEnds.size >= 5, { timeoutMs: 30_000, what: `session ends on the bus (${sessionEnds.size})` });
    // The workers say the same in their log lines.
    expect(fleet.logs().some((l) => l.msg === 'fleet' && typeof (l.ocpp as { calls_per_s?: number } | undefined)?.calls_per_s === 'number')).toBe(true);
    await fleet.kill('SIGTERM');
    await waitFor(async () => (await json(`http://127.0.0.1:${gwHttp}/health`)).ocpp_clients === 0, { timeoutMs: 30_000, what: 'fleet gone from the gateway' });
  }, 120_000);
});
