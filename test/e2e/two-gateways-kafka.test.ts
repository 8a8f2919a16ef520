import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordBus, type BusRecorder } from '../helpers/bus-recorder.js';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import { freePort } from '../helpers/ports.js';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { finalUpdates } from '../helpers/tickets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Issue 13, past one machine on Kafka: two gateways, each with its own CPs, into one Kafka and
 * one central (real processes). Each gateway stamps what it bridges and beats its own
 * heartbeat; every gateway reads every command (a consumer group of its own) and delivers
 * those for its CPs; a driver charges at a CP behind each gateway and gets both tickets.
 */
let kafka: KafkaMock | undefined;
let recorder: BusRecorder | undefined;
let dir: string;
const procs: CliProcess[] = [];
let centralUrl = '';
const gwHttp: Record<string, number> = {};
const GATEWAYS = { 'gw-a': ['CP-A1', 'CP-A2'], 'gw-b': ['CP-B1'] } as const;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'two-gw-'));
  kafka = await startKafkaMock();
  const bus = ['--kafka-bootstrap', kafka.bootstrap.join(',')];
  const centralPort = await freePort();
  centralUrl = `http://127.0.0.1:${centralPort}`;
  procs.push(spawnCli(['central', '--host', '127.0.0.1', '--port', String(centralPort), '--data-dir', path.join(dir, 'central'), ...bus]));
  for (const [gw, cps] of Object.entries(GATEWAYS)) {
    const [mqtt, http] = [await freePort(), await freePort()];
    gwHttp[gw] = http;
    procs.push(spawnCli(['gateway', '--dev', 'true', '--gateway-id', gw, '--host', '127.0.0.1', '--mqtt-port', String(mqtt), '--http-port', String(http),
      '--state-dir', path.join(dir, gw), ...bus]));
    for (const cp of cps) {
      procs.push(spawnCli(['cp', '--id', cp, '--health-port', String(await freePort()), '--health-host', '127.0.0.1', '--mqtt', `mqtt://127.0.0.1:${mqtt}`, '--speed', '60', '--profile', 'ac-22kw']));
    }
  }
  recorder = await recordBus({ kafkaBootstrap: kafka.bootstrap, mqttUrl: 'mqtt://unused:1' });
  await waitFor(async () => {
    try {
      const cps = ((await (await fetch(`${centralUrl}/cp`)).json()) as { charging_points: Array<{ cp_id: string; state: string }> }).charging_points;
      return Object.values(GATEWAYS).flat().every((id) => cps.some((c) => c.cp_id === id && c.state === 'ACTIVATED'));
    } catch { return false; }
  }, { timeoutMs: 90_000, intervalMs: 500, what: 'every CP behind both gateways ACTIVATED at central' });
}, 150_000);
afterAll(async () => {
  await recorder?.stop();
  await Promise.all(procs.map((p) => p.kill('SIGTERM')));
  await kafka?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('two gateways into one central on Kafka', () => {
  it('bridges each gateway\'s CPs stamped with its id, beats both heartbeats, and serves sessions behind both', async () => {
    const file = path.join(dir, 'requests.txt');
    fs.writeFileSync(file, 'CP-A1\nCP-B1\n');
    const driver = spawnCli(['driver', '--id', 'driver-gus', '--requests', file, '--wait-s', '1', '--max-charge-s', '3', '--kafka-bootstrap', kafka!.bootstrap.join(',')]);
    procs.push(driver);
    const tickets = await waitFor(() => {
      const t = finalUpdates(recorder!.of('driver.updates', 'driver-gus')).map((u) => u.ticket);
      return ['CP-A1', 'CP-B1'].every((cp) => t.some((x) => x.cp_id === cp)) ? t : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500, what: `tickets at CP-A1 and CP-B1\n${driver.lines.slice(-10).join('\n')}` });
    for (const cp of ['CP-A1', 'CP-B1']) {
      const t = tickets.find((x) => x.cp_id === cp)!;
      expect(t.kwh, cp).toBeGreaterThan(0);
      expect(t.reason, cp).toBe('driver_stop');
    }

    for (const [gw, cps] of Object.entries(GATEWAYS)) {
      for (const cp of cps) {
        const statuses = recorder!.of('cp.status', cp).filter((r) => r.value.type === 'status' || r.value.type === 'announce');
        expect(statuses.length, cp).toBeGreaterThan(0);
        expect(statuses.every((r) => r.value.gw === gw), `${cp} stamped ${gw}`).toBe(true);
      }
      const beats = recorder!.of('cp.status', gw).filter((r) => r.value.type === 'gateway');
      expect(beats.length, `${gw} heartbeats`).toBeGreaterThan(1);
      expect(beats.at(-1)!.value).toMatchObject({ gateway_id: gw, cps: cps.length });
      const metrics = await (await fetch(`http://127.0.0.1:${gwHttp[gw]}/metrics`)).text();
      console.log(`${gw}: ${metrics.split('\n').filter((l) => /^gateway_(bridged_total|commands_total|commands_dropped_total|beats_total)/.test(l)).join('; ')}`);
    }
  }, 180_000);
});
