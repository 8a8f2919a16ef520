import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BUS_TOPICS, CP_CHANNEL_TABLE, CentralCommandMsg, CpStatusTopicMsg, CpTelemetryMsg, GatewayBeatMsg, mqttRouteOf, mqttTopics, parseEmbeddedBusTopic,
} from '../../protocol/index.js';
import { connectionLost, gatewayBeat, routeCommand, routeCpMessage, routeCpPublish, routeEmbeddedCommand } from '../../gateway/bridge.js';
import { CommandRouter, type CommandDropReason } from '../../gateway/commands.js';
import { DurableSessions } from '../../gateway/sessions.js';
import { Spool } from '../../gateway/spool.js';

const T = 1_800_000_000_000;
const status = (cp: string, extra: Record<string, unknown> = {}) => ({ v: 1, type: 'status', cp_id: cp, state: 'ACTIVATED', seq: 5, ts: T, ...extra });
const telemetry = (cp: string) => ({ v: 1, type: 'telemetry', cp_id: cp, session_id: 'S-1', kw: 7, kwh: 0.5, eur: 0.1, seq: 6, ts: T });
const sessionEnd = (cp: string) => ({ v: 1, type: 'session_end', cp_id: cp, session_id: 'S-1', kwh: 2, eur: 0.6, price_eur_kwh: 0.3, started_at: T - 1000, ended_at: T, reason: 'driver_stop', ts: T });
const buf = (o: unknown) => Buffer.from(JSON.stringify(o));
const cmd = (extra: Partial<CentralCommandMsg> = {}): CentralCommandMsg => CentralCommandMsg.parse({ v: 1, command_id: 'c-1', cp_id: 'CP-1', command: 'STOP_SUPPLY', ts: T, ...extra });

describe('gateway bridge: CP → bus (pure, no sockets)', () => {
  it('routes each channel to its bus topic from the channel table, stamps gw, marks critical and droppable', () => {
    for (const [msg, channel] of [[status('CP-1'), 'status'], [telemetry('CP-1'), 'telemetry'], [sessionEnd('CP-1'), 'session']] as const) {
      const r = routeCpPublish(mqttTopics[channel]('CP-1'), buf(msg), 'CP-1', 'gw-a');
      if (!r.ok) throw new Error(r.detail);
      const spec = CP_CHANNEL_TABLE[channel];
      expect(r.entry).toMatchObject({ topic: spec.busTopic, key: 'CP-1', critical: spec.critical, droppable: !spec.critical });
      const onBus = JSON.parse(r.entry.value.toString());
      expect(onBus.gw).toBe('gw-a');
      const schema = spec.busTopic === BUS_TOPICS.cpTelemetry ? CpTelemetryMsg : CpStatusTopicMsg;
      expect(schema.parse(onBus)).toMatchObject({ cp_id: 'CP-1' });
    }
  });

  it('overwrites a gw the CP sent itself: the stamp is never trusted from the CP', () => {
    const r = routeCpPublish('cp/CP-1/status', buf(status('CP-1', { gw: 'gw-forged' })), 'CP-1', 'gw-a');
    expect(r.ok && JSON.parse(r.entry.value.toString()).gw).toBe('gw-a');
  });

  it("forwards the CP's own bytes, stamped, when validation changed nothing, and otherwise the validated message re-encoded", () => {
    const routed = (payload: Buffer, topic = 'cp/CP-1/telemetry') => {
      const r = routeCpPublish(topic, payload, 'CP-1', 'gw-a');
      if (!r.ok) throw new Error(r.detail);
      return r.entry.value.toString();
    };
    // The bus carries exactly what the contract says, whichever way it was built.
    const onBus = (text: string) => CpTelemetryMsg.parse(JSON.parse(text));
    const spaced = Buffer.from(' {"v":1, "type":"telemetry","cp_id":"CP-1","session_id":"S-1","kw":7,"kwh":0.5,"eur":0.1,"seq":6,"ts":1800000000000} \n');
    expect(routed(spaced)).toBe(' {"v":1, "type":"telemetry","cp_id":"CP-1","session_id":"S-1","kw":7,"kwh":0.5,"eur":0.1,"seq":6,"ts":1800000000000,"gw":"gw-a"}');
    expect(onBus(routed(spaced))).toEqual({ ...telemetry('CP-1'), gw: 'gw-a' });
    // A key the schema strips must not reach the bus.
    const extra = routed(buf({ ...telemetry('CP-1'), note: 'x'.repeat(50) }));
    expect(extra).not.toContain('note');
    expect(onBus(extra)).toEqual({ ...telemetry('CP-1'), gw: 'gw-a' });
    // Nor a gw of the sender's own (not even as a duplicate key a lenient parser might take).
    const forged = routed(buf({ ...telemetry('CP-1'), gw: 'gw-forged' }));
    expect(forged).not.toContain('gw-forged');
    // Defaults the schema fills in are on the bus; nested objects are rebuilt by the schema.
    const st = routeCpPublish('cp/CP-1/status', buf(status('CP-1')), 'CP-1', 'gw-a');
    expect(st.ok && JSON.parse(st.entry.value.toString())).toMatchObject({ faults: [], source: 'engine', gw: 'gw-a' });
    // Bytes that are not UTF-8 were parsed with replacements: what is forwarded is what was validated.
    const bad = Buffer.concat([Buffer.from('{"v":1,"type":"telemetry","cp_id":"CP-1","session_id":"S-'), Buffer.from([0xc3]), Buffer.from('","kw":7,"kwh":0.5,"eur":0.1,"seq":6,"ts":1800000000000}')]);
    const fixed = routeCpPublish('cp/CP-1/telemetry', bad, 'CP-1', 'gw-a');
    expect(fixed.ok && fixed.entry.value.includes(Buffer.from([0xc3, 0x22]))).toBe(false);
    expect(fixed.ok && JSON.parse(fixed.entry.value.toString()).session_id).toBe('S-\ufffd');
  });

  it('refuses a payload that speaks for another CP, and a sender publishing under another id', () => {
    expect(routeCpPublish('cp/CP-2/status', buf(status('CP-1')), 'CP-2', 'gw')).toMatchObject({ ok: false, reason: 'spoofed' });
    expect(routeCpPublish('cp/CP-1/status', buf(status('CP-1')), 'CP-2', 'gw')).toMatchObject({ ok: false, reason: 'spoofed' });
    // Dev mode: no authenticated id, the topic's id must still match the payload.
    expect(routeCpPublish('cp/CP-2/status', buf(status('CP-1')), undefined, 'gw')).toMatchObject({ ok: false, reason: 'spoofed' });
    expect(routeCpPublish('cp/CP-1/status', buf(status('CP-1')), undefined, 'gw').ok).toBe(true);
  });

  it('refuses bad input with a reason: not JSON, wrong schema, a type on the wrong channel, oversize, unknown topics', () => {
    expect(routeCpPublish('cp/CP-1/telemetry', Buffer.from('{"broken'), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'not_json' });
    expect(routeCpPublish('cp/CP-1/telemetry', Buffer.from([0xff, 0, 0xfe]), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'not_json' });
    expect(routeCpPublish('cp/CP-1/telemetry', buf({ v: 1, type: 'telemetry', cp_id: 'CP-1' }), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'schema' });
    expect(routeCpPublish('cp/CP-1/status', buf(telemetry('CP-1')), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'schema' });
    expect(routeCpPublish('cp/CP-1/status', buf({ ...status('CP-1'), v: 2 }), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'schema' });
    expect(routeCpPublish('cp/CP-1/status', Buffer.alloc(1024 * 1024, 0x41), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'oversize' });
    expect(routeCpPublish('cp/CP-1/cmd', buf(status('CP-1')), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'unknown_topic' });
    expect(routeCpPublish('cp/CP-1/status/x', buf(status('CP-1')), 'CP-1', 'gw')).toMatchObject({ ok: false, reason: 'unknown_topic' });
    // A gateway heartbeat is not something a CP may send.
    expect(routeCpMessage('CP-1', { v: 1, type: 'gateway', gateway_id: 'CP-1', boot_id: 'b', interval_ms: 1000, cps: 0, seq: 1, ts: T }, 'gw').ok).toBe(false);
    expect(routeCpMessage('CP-1', null, 'gw').ok).toBe(false);
  });

  it('takes a CP message as an object too (the seam for other protocols), with the same checks', () => {
    expect(routeCpMessage('CP-1', sessionEnd('CP-1'), 'gw')).toMatchObject({ ok: true, channel: 'session', entry: { critical: true } });
    expect(routeCpMessage('CP-1', sessionEnd('CP-9'), 'gw')).toMatchObject({ ok: false, reason: 'spoofed' });
  });

  it('builds the gateway\'s own statuses and heartbeat as valid cp.status messages keyed right', () => {
    const lost = connectionLost('CP-1', 9, T, 'gw-a');
    expect(lost).toMatchObject({ topic: 'cp.status', key: 'CP-1', critical: true });
    expect(CpStatusTopicMsg.parse(JSON.parse(lost.value.toString()))).toMatchObject({ state: 'DISCONNECTED', source: 'gateway', seq: 9, gw: 'gw-a' });
    const beat = gatewayBeat({ gatewayId: 'gw-a', bootId: 'boot', intervalMs: 1000, cps: 3, seq: 1, now: T });
    expect(beat).toMatchObject({ topic: 'cp.status', key: 'gw-a', critical: false, droppable: false });
    expect(GatewayBeatMsg.parse(JSON.parse(beat.value.toString()))).toMatchObject({ gateway_id: 'gw-a', cps: 3, interval_ms: 1000 });
  });

  it('the engine\'s link and the bridge agree on every channel\'s topic, QoS and retain', () => {
    expect(mqttRouteOf('CP-1', { type: 'status' })).toEqual({ topic: 'cp/CP-1/status', qos: 1, retain: true });
    expect(mqttRouteOf('CP-1', { type: 'telemetry' })).toEqual({ topic: 'cp/CP-1/telemetry', qos: 0, retain: false });
    expect(mqttRouteOf('CP-1', { type: 'session_end' })).toEqual({ topic: 'cp/CP-1/session', qos: 1, retain: false });
    expect(parseEmbeddedBusTopic('bus/central.commands/CP-1')).toEqual({ topic: 'central.commands', key: 'CP-1' });
    expect(parseEmbeddedBusTopic('bus/nope/CP-1')).toBeNull();
    expect(parseEmbeddedBusTopic('bus/cp.status/')).toBeNull();
  });
});

describe('gateway bridge: bus → CP', () => {
  it('maps a command to its CP topic at QoS 1, once encoded', () => {
    const r = routeCommand('CP-1', cmd(), T, 120_000);
    if (!r.ok) throw new Error(r.detail);
    expect(r).toMatchObject({ topic: 'cp/CP-1/cmd', qos: 1, cpId: 'CP-1' });
    expect(CentralCommandMsg.parse(JSON.parse(r.payload.toString()))).toEqual(cmd());
  });
  it('drops an expired command, a stale one without deadline, and one keyed for another CP', () => {
    expect(routeCommand('CP-1', cmd({ expires_at: T - 1 }), T, 120_000)).toMatchObject({ ok: false, reason: 'expired' });
    expect(routeCommand('CP-1', cmd({ expires_at: T + 10 }), T, 120_000).ok).toBe(true);
    expect(routeCommand('CP-1', cmd({ ts: T - 200_000 }), T, 120_000)).toMatchObject({ ok: false, reason: 'stale' });
    // A deadline decides, not the age.
    expect(routeCommand('CP-1', cmd({ ts: T - 200_000, expires_at: T + 1 }), T, 120_000).ok).toBe(true);
    expect(routeCommand('CP-2', cmd(), T, 120_000)).toMatchObject({ ok: false, reason: 'spoofed' });
  });
  it('decodes an embedded-bus command once and ignores other topics', () => {
    expect(routeEmbeddedCommand('bus/central.commands/CP-1', buf(cmd()), T, 1000)).toMatchObject({ ok: true, topic: 'cp/CP-1/cmd' });
    expect(routeEmbeddedCommand('bus/central.commands/CP-1', Buffer.from('x'), T, 1000)).toMatchObject({ ok: false, reason: 'not_json' });
    expect(routeEmbeddedCommand('bus/driver.requests/D-1', buf(cmd()), T, 1000)).toBeNull();
  });
});

describe('command router: delivered or expired with a reason, never silently lost', () => {
  const setup = () => {
    const sent: string[] = []; const dropped: Array<[CommandDropReason, string]> = [];
    const listening = new Set<string>();
    const r = new CommandRouter({
      maxAgeMs: 120_000, holdMs: 5_000, maxHeld: 3,
      listening: (cp) => listening.has(cp), publish: (d) => sent.push(`${d.cpId}:${JSON.parse(d.payload.toString()).command_id}`),
      dropped: (reason, _cp, c) => dropped.push([reason, c.command_id]),
    });
    return { r, sent, dropped, listening };
  };
  it('sends at once to a listening CP, holds for one that is not, and sends in order when it subscribes', () => {
    const { r, sent, listening } = setup();
    listening.add('CP-1');
    expect(r.route('CP-1', cmd({ command_id: 'a' }), T)).toBe('sent');
    listening.delete('CP-1');
    expect(r.route('CP-1', cmd({ command_id: 'b', expires_at: T + 10_000 }), T)).toBe('held');
    expect(r.route('CP-1', cmd({ command_id: 'c' }), T)).toBe('held');
    listening.add('CP-1');
    expect(r.ready('CP-1', T + 1000)).toBe(2);
    expect(sent).toEqual(['CP-1:a', 'CP-1:b', 'CP-1:c']);
    expect(r.heldCount).toBe(0);
  });
  it('drops with a reason what expires while held, and the oldest beyond the bound', () => {
    const { r, sent, dropped, listening } = setup();
    r.route('CP-1', cmd({ command_id: 'x', expires_at: T + 100 }), T);
    r.route('CP-1', cmd({ command_id: 'y' }), T); // held for holdMs
    r.sweep(T + 200);
    expect(dropped).toEqual([['expired', 'x']]);
    r.sweep(T + 6_000);
    expect(dropped).toEqual([['expired', 'x'], ['undeliverable', 'y']]);
    for (const id of ['1', '2', '3', '4']) r.route('CP-2', cmd({ command_id: id, cp_id: 'CP-2' }), T);
    expect(dropped.at(-1)).toEqual(['overflow', '1']);
    listening.add('CP-2');
    r.ready('CP-2', T);
    expect(sent).toEqual(['CP-2:2', 'CP-2:3', 'CP-2:4']);
    expect(r.route('CP-1', cmd({ command_id: 'z', expires_at: T - 1 }), T)).toBe('expired');
  });
  it('hands commands to an attached adapter instead of MQTT', () => {
    const { r, sent } = setup();
    const got: string[] = [];
    const detach = r.attach('CP-9', (c) => got.push(c.command_id));
    expect(r.route('CP-9', cmd({ command_id: 'o', cp_id: 'CP-9' }), T)).toBe('sent');
    detach();
    expect(r.route('CP-9', cmd({ command_id: 'p', cp_id: 'CP-9' }), T)).toBe('held');
    expect(got).toEqual(['o']); expect(sent).toEqual([]);
  });
});

describe('embedded-bus durable sessions', () => {
  it('keeps persistent clients\' subscriptions in a file across restarts, and forgets a session started clean', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sessions-')), 'gw.sessions.json');
    const a = new DurableSessions(file);
    a.subscribed('evcharging-central', [{ topic: 'bus/driver.requests/+', qos: 1 }, { topic: 'bus/cp.status/+', qos: 1 }]);
    a.subscribed('driver-D-1', [{ topic: 'bus/driver.updates/D-1', qos: 1 }]);
    a.unsubscribed('evcharging-central', ['bus/cp.status/+']);
    await new Promise((r) => setImmediate(r));
    const b = new DurableSessions(file);
    expect(b.saved()).toEqual([['evcharging-central', [{ topic: 'bus/driver.requests/+', qos: 1 }]], ['driver-D-1', [{ topic: 'bus/driver.updates/D-1', qos: 1 }]]]);
    b.cleared('driver-D-1');
    await new Promise((r) => setImmediate(r));
    expect(new DurableSessions(file).saved().map(([id]) => id)).toEqual(['evcharging-central']);
    fs.writeFileSync(file, '{"torn');
    expect(new DurableSessions(file).size).toBe(0);
  });
});

describe('spool on disk', () => {
  const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spool-')), 'gw.spool');
  const fsynced = (s: Spool, topic: string, key: string, v: string) => new Promise<number>((resolve) => {
    let n: number | undefined;
    n = s.append(topic, key, Buffer.from(v), () => resolve(n!));
  });
  it('replays what was not acknowledged by the bus, in order, after the process is gone', async () => {
    const file = tmp();
    const a = new Spool({ file });
    const n1 = await fsynced(a, 'cp.status', 'CP-1', '{"a":1}');
    await fsynced(a, 'cp.status', 'CP-1', '{"a":2}');
    await fsynced(a, 'cp.status', 'CP-2', '{"a":3}');
    a.ack([n1]);
    // No close(): as after SIGKILL, only what the file holds counts. A torn last line is skipped.
    fs.appendFileSync(file, '{"n":99,"t":"cp.st');
    const b = new Spool({ file });
    expect(b.replayed.map((e) => [e.key, e.value.toString()])).toEqual([['CP-1', '{"a":2}'], ['CP-2', '{"a":3}']]);
    expect(b.stats.tornLines).toBe(1);
    // Numbers keep growing, so an old ack line can never acknowledge a new entry.
    const n4 = await fsynced(b, 'cp.status', 'CP-3', '{"a":4}');
    expect(n4).toBeGreaterThan(b.replayed.at(-1)!.n);
    b.ack(b.replayed.map((e) => e.n).concat(n4));
    expect(b.size).toBe(0);
    expect(fs.statSync(file).size).toBe(0); // everything acknowledged: the file is emptied
    b.close();
    expect(new Spool({ file }).replayed).toEqual([]);
  });
  it('is bounded: refuses when full (the caller then waits for the bus), and compacts a grown file', async () => {
    const file = tmp();
    const s = new Spool({ file, maxEntries: 2, compactBytes: 200 });
    const a = await fsynced(s, 't', 'k', 'x'.repeat(50));
    await fsynced(s, 't', 'k', 'y'.repeat(50));
    expect(s.append('t', 'k', Buffer.from('z'), () => undefined)).toBeUndefined();
    expect(s.stats.refused).toBe(1);
    s.ack([a]);
    const c = await fsynced(s, 't', 'k', 'w'.repeat(50));
    s.ack([c]);
    expect(s.stats.compactions).toBeGreaterThanOrEqual(2);
    s.close();
    expect(new Spool({ file }).replayed.map((e) => e.value.toString())).toEqual(['y'.repeat(50)]);
  });
});
