import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { startGateway, type RunningGateway } from '../../gateway/server.js';
import type { CentralCommandMsg } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The seam another CP protocol (an OCPP adapter) attaches through: `ingestCpMessage` runs a CP
 * message through the same bridge as an MQTT publish, and `attachCommands` takes a CP's commands
 * instead of MQTT — on a real gateway and its embedded bus.
 */
describe('gateway seam for other CP protocols', () => {
  let gw: RunningGateway; let bus: mqtt.MqttClient;
  const seen: Array<{ topic: string; msg: Record<string, unknown> }> = [];
  beforeAll(async () => {
    gw = await startGateway({ host: '127.0.0.1', mqttPort: 0, httpPort: 0, credentials: null, bufferMax: 1000, gatewayId: 'gw-seam' }, silentLogger);
    bus = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'seam-observer', reconnectPeriod: 0 });
    bus.on('message', (topic, p) => seen.push({ topic, msg: JSON.parse(p.toString()) }));
    await bus.subscribeAsync('bus/cp.status/OC-1', { qos: 1 });
  });
  afterAll(async () => { await bus?.endAsync(true); await gw?.close(); });

  it('bridges a CP message object stamped with the gateway id once the bus has it, and refuses a spoofed one with its reason', async () => {
    const ok = await gw.ingestCpMessage('OC-1', { v: 1, type: 'status', cp_id: 'OC-1', state: 'ACTIVATED', seq: 1, ts: Date.now() });
    expect(ok).toEqual({ ok: true });
    await waitFor(() => seen.some((s) => s.msg.cp_id === 'OC-1' && s.msg.gw === 'gw-seam'), { timeoutMs: 10_000, what: 'the status on the bus' });
    expect(await gw.ingestCpMessage('OC-1', { v: 1, type: 'status', cp_id: 'OC-2', state: 'ACTIVATED', seq: 2, ts: Date.now() })).toMatchObject({ ok: false, reason: 'spoofed' });
    expect(await gw.ingestCpMessage('OC-1', { type: 'nonsense' })).toMatchObject({ ok: false, reason: 'schema' });
  });

  it('hands an attached CP its commands, including one central sent before it attached, and drops an expired one', async () => {
    const got: CentralCommandMsg[] = [];
    const central = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.mqttPort}`, { clientId: 'seam-central', reconnectPeriod: 0 });
    const cmd = (id: string, extra: Record<string, unknown> = {}) => JSON.stringify({ v: 1, command_id: id, cp_id: 'OC-1', command: 'STOP_CP', ts: Date.now(), ...extra });
    await central.publishAsync('bus/central.commands/OC-1', cmd('early'), { qos: 1 });
    await central.publishAsync('bus/central.commands/OC-1', cmd('late', { expires_at: Date.now() - 1 }), { qos: 1 });
    const detach = gw.attachCommands('OC-1', (c) => got.push(c));
    await central.publishAsync('bus/central.commands/OC-1', cmd('now'), { qos: 1 });
    await waitFor(() => got.length >= 2, { timeoutMs: 10_000, what: 'commands at the adapter' });
    expect(got.map((c) => c.command_id)).toEqual(['early', 'now']);
    const metrics = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
    expect(metrics).toContain('gateway_commands_dropped_total{reason="expired"} 1');
    detach();
    await central.endAsync(true);
  });
});
