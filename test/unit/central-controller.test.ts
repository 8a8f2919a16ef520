import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Controller } from '../../central/controller.js';
import { replay, Store } from '../../central/store.js';
import { silentLogger } from '../../lib/log.js';
import { PROTOCOL_VERSION as v, type BusTopic } from '../../protocol/index.js';
import { profile } from '../helpers/central-rules.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The controller around central's rules, constructed directly on a real store (temp dir) with
 * a recording publish: inputs one at a time, events on disk before what follows is published,
 * listeners told, and what the bus took journaled after (ticket_sent).
 */
let dir: string | undefined;
afterEach(async () => { if (dir) await fs.rm(dir, { recursive: true, force: true }); dir = undefined; });

async function rig(o: { busUp?: () => boolean; failPublish?: boolean } = {}) {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'central-ctl-'));
  const { store } = await Store.open(dir);
  const sent: Array<{ topic: BusTopic; key: string; value: Record<string, unknown>; durableEvents: number; call: number }> = [];
  let clock = 1_000_000;
  let calls = 0;
  const ctl = new Controller(store, async (topic, key, value) => {
    if (o.failPublish) throw new Error('bus away');
    const call = calls++;
    // What is on disk at the moment of publishing (read asynchronously: kept in call order, not in the order the reads finish).
    const onDisk = (await replay(dir!)).report.replayed;
    sent.push({ topic, key, value: value as Record<string, unknown>, durableEvents: onDisk, call });
    sent.sort((a, b) => a.call - b.call);
  }, silentLogger, { monitorTimeoutMs: 3000, endGraceMs: 5000, startConfirmMs: 30_000, maxCps: 100, busUp: o.busUp }, () => clock);
  return { ctl, store, sent, advance: (ms: number) => { clock += ms; } };
}


describe('central controller', () => {
  it('runs a request through the rules: the session is on disk before START_SUPPLY and ACCEPTED leave; listeners are told', async () => {
    const { ctl, store, sent } = await rig();
    let changes = 0;
    ctl.onChange(() => changes++);
    await ctl.onCpStatusTopic({ v, type: 'announce', cp_id: 'CP-1', profile, fw_version: 't', boot_id: 'b1', ts: 1 }, { topic: 'cp.status', key: 'CP-1' });
    await ctl.onCpStatusTopic({ v, type: 'status', cp_id: 'CP-1', state: 'ACTIVATED', faults: [], source: 'engine', seq: 1, ts: 1 }, { topic: 'cp.status', key: 'CP-1' });
    await ctl.onDriverRequest({ v, request_id: 'q1', driver_id: 'd1', action: 'REQUEST', cp_id: 'CP-1', ts: 1 }, { topic: 'driver.requests', key: 'd1' });
    await waitFor(() => sent.length === 2, { timeoutMs: 10_000, what: 'START_SUPPLY and ACCEPTED published' });
    expect(changes).toBe(3);
    expect(sent.map((s) => [s.topic, s.value.command ?? s.value.status])).toEqual([['central.commands', 'START_SUPPLY'], ['driver.updates', 'ACCEPTED']]);
    // announce, status, session_started, request_done: all four on disk before the first publish.
    expect(sent[0]!.durableEvents).toBe(4);
    expect(ctl.counters).toMatchObject({ requests: 1, accepted: 1, announces: 1, statuses: 1 });
    expect(ctl.sessionViews()).toHaveLength(1);
    expect(ctl.cpViewOf('CP-1')).toMatchObject({ state: 'SUPPLYING', reachable: true });
    expect(ctl.activeSessions()).toBe(1);
    await store.close();
  });

  it('bills a session_end, then journals ticket_sent once the bus took the ticket; rejections are counted by reason', async () => {
    const { ctl, store, sent } = await rig();
    const meta = { topic: 'cp.status' as const, key: 'CP-1' };
    await ctl.onCpStatusTopic({ v, type: 'announce', cp_id: 'CP-1', profile, fw_version: 't', boot_id: 'b1', ts: 1 }, meta);
    await ctl.onCpStatusTopic({ v, type: 'status', cp_id: 'CP-1', state: 'ACTIVATED', faults: [], source: 'engine', seq: 1, ts: 1 }, meta);
    await ctl.onDriverRequest({ v, request_id: 'q1', driver_id: 'd1', action: 'REQUEST', cp_id: 'CP-1', ts: 1 });
    await ctl.onDriverRequest({ v, request_id: 'q2', driver_id: 'd2', action: 'REQUEST', cp_id: 'CP-1', ts: 1 });
    const sid = [...ctl.state.sessions.keys()][0]!;
    await ctl.onCpStatusTopic({ v, type: 'session_end', cp_id: 'CP-1', session_id: sid, kwh: 5, eur: 2, price_eur_kwh: 0.4, started_at: 1, ended_at: 2, reason: 'full', ts: 1 }, meta);
    await waitFor(() => ctl.state.sessions.get(sid)!.ticket_sent, { timeoutMs: 10_000, what: 'ticket_sent journaled' });
    expect(sent.find((s) => s.value.status === 'COMPLETED')!.value.ticket).toMatchObject({ kwh: 5, eur: 2 });
    expect(Object.fromEntries(ctl.rejectReasons)).toEqual({ 'CP busy': 1 });
    // Forged input reaches the refused listeners every time (an audit trail), and is counted.
    const refused: string[] = [];
    ctl.onRefused((x) => refused.push(`${x.counter}:${x.source}`));
    for (let i = 0; i < 2; i++) await ctl.onCpStatusTopic({ v, type: 'session_end', cp_id: 'CP-2', session_id: sid, kwh: 1, eur: 1, price_eur_kwh: 1, started_at: 1, ended_at: 2, reason: 'full', ts: 1 }, { topic: 'cp.status', key: 'CP-2' });
    expect(refused).toEqual(['forged_session_ends:CP-2', 'forged_session_ends:CP-2']);
    expect(ctl.counters.forged_session_ends).toBe(2);
    await store.close();
  });

  it('a failed publish is counted and the ticket stays unsent (it goes again when the bus is back)', async () => {
    const { ctl, store } = await rig({ failPublish: true });
    const meta = { topic: 'cp.status' as const, key: 'CP-1' };
    await ctl.onCpStatusTopic({ v, type: 'announce', cp_id: 'CP-1', profile, fw_version: 't', boot_id: 'b1', ts: 1 }, meta);
    await ctl.onCpStatusTopic({ v, type: 'status', cp_id: 'CP-1', state: 'ACTIVATED', faults: [], source: 'engine', seq: 1, ts: 1 }, meta);
    await ctl.onDriverRequest({ v, request_id: 'q1', driver_id: 'd1', action: 'REQUEST', cp_id: 'CP-1', ts: 1 });
    const sid = [...ctl.state.sessions.keys()][0]!;
    await ctl.onCpStatusTopic({ v, type: 'session_end', cp_id: 'CP-1', session_id: sid, kwh: 5, eur: 2, price_eur_kwh: 0.4, started_at: 1, ended_at: 2, reason: 'full', ts: 1 }, meta);
    await waitFor(() => ctl.counters.publish_failures === 3, { timeoutMs: 10_000, what: 'three failed publishes counted' });
    await ctl.idle();
    expect(ctl.state.sessions.get(sid)!.ticket_sent).toBe(false);
    await store.close();
  });

  it('sweep asks the bus: a CP behind a silent gateway shows DISCONNECTED and not reachable; a monitor report and an admin action answer', async () => {
    let busUp = true;
    const { ctl, store, advance } = await rig({ busUp: () => busUp });
    const meta = { topic: 'cp.status' as const, key: 'CP-1' };
    await ctl.sweep();
    await ctl.onCpStatusTopic({ v, type: 'announce', cp_id: 'CP-1', gw: 'GW-A', profile, fw_version: 't', boot_id: 'b1', ts: 1 }, meta);
    await ctl.onCpStatusTopic({ v, type: 'status', cp_id: 'CP-1', gw: 'GW-A', state: 'ACTIVATED', faults: [], source: 'engine', seq: 1, ts: 1 }, meta);
    await ctl.onCpStatusTopic({ v, type: 'gateway', gateway_id: 'GW-A', boot_id: 'g1', interval_ms: 1000, cps: 1, seq: 1, ts: 1 }, { topic: 'cp.status', key: 'GW-A' });
    expect(ctl.cpViewOf('CP-1')).toMatchObject({ state: 'ACTIVATED', reachable: true, gw: 'GW-A' });
    // Swept every 250 ms as central does (one long gap would be central's own pause).
    let changed = false;
    for (let t = 0; t < 3250; t += 250) { advance(250); changed = (await ctl.sweep()) || changed; }
    expect(changed).toBe(true);
    expect(ctl.cpViewOf('CP-1')).toMatchObject({ state: 'DISCONNECTED', reachable: false, unreachable: 'gateway GW-A silent' });
    busUp = false;
    await ctl.sweep();
    expect(ctl.cpViewOf('CP-1')).toMatchObject({ unreachable: "central's bus is down" });
    expect(await ctl.onMonitorReport({ v, cp_id: 'CP-1', monitor_id: 'm', kind: 'heartbeat', engine_ok: true, ts: 1 })).toBe(true);
    expect(ctl.monitorOf('CP-1')).toBe('OK');
    expect(await ctl.adminSet('CP-1', true)).toMatchObject({ cp_id: 'CP-1', admin_stopped: true });
    expect(await ctl.adminSet('CP-404', true)).toBeUndefined();
    await store.close();
  });

  it('measures each telemetry reading from its engine time to applied at central (a clock ahead counts as no delay)', async () => {
    const { ctl, store } = await rig();
    const t = (seq: number, ts: number) => ctl.onTelemetry({ v, type: 'telemetry', cp_id: 'CP-1', session_id: 's-none', kw: 1, kwh: 0.1, eur: 0.05, seq, ts }, { topic: 'cp.telemetry', key: 'CP-1' });
    await t(1, 1_000_000 - 40); // 40 ms late
    await t(2, 1_000_000 - 3_000); // 3 s late
    await t(3, 1_000_000 + 500); // from a clock ahead
    const h = (await ctl.telemetryDelay.get()).values;
    const le = (bound: number) => h.find((x) => x.metricName === 'central_telemetry_delay_seconds_bucket' && x.labels.le === bound)!.value;
    expect([le(0.005), le(0.05), le(2.5), le(5)]).toEqual([1, 2, 2, 3]);
    expect(h.find((x) => x.metricName === 'central_telemetry_delay_seconds_sum')!.value).toBeCloseTo(3.04, 5);
    await store.close();
  });
});
