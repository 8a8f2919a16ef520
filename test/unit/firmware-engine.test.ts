import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { CentralCommandMsg, CommandAckMsg, CpAnnounceMsg, CpStatusMsg, CpTelemetryMsg, SessionEndMsg, mqttRouteOf, type Command, type CpOutMsg } from '../../protocol/index.js';
import { createEngine } from '../../firmware/engine.js';
import type { LinkPort } from '../../firmware/link.js';
import { createSimHal } from '../../firmware/hal/sim.js';
import { loadProfile, withOverrides, type HwProfile } from '../../hw-profiles/profile.js';

/** The engine's link port, in memory: records what would go out over MQTT (routed by the channel table, as the MQTT link does). */
class MemoryLink implements LinkPort {
  sent: Array<{ topic: string; msg: Record<string, unknown>; qos: 0 | 1; retain: boolean }> = [];
  send(msg: CpOutMsg) {
    const { topic, qos, retain } = mqttRouteOf(msg.cp_id, msg);
    this.sent.push({ topic, msg: JSON.parse(JSON.stringify(msg)), qos, retain });
  }
  on(channel: string) { return this.sent.filter((s) => s.topic.endsWith(`/${channel}`)); }
}

function setup(opts: { profile?: HwProfile; speed?: number } = {}) {
  const profile = opts.profile ?? loadProfile('ac-22kw');
  if (profile.hal.driver !== 'sim') throw new Error('sim profile expected');
  const hal = createSimHal({ maxKw: profile.max_kw, battery: profile.hal, speed: opts.speed ?? 1 });
  const link = new MemoryLink();
  let t = 1_800_000_000_000;
  const clock = { now: () => t };
  const logLines: string[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { logLines.push(s); } });
  const engine = createEngine({ cpId: 'CP-T1', profile, hal, link, log, clock, tickMs: 0, healthPort: 8123, bootId: 'boot-1' });
  /** Advances the fake clock in loop-sized steps, ticking each time. */
  const advance = (ms: number, stepMs = 100) => { for (let done = 0; done < ms; done += stepMs) { t += stepMs; engine.tick(t); } };
  let n = 0;
  const cmd = (command: Command, extra: Partial<CentralCommandMsg> = {}) =>
    CentralCommandMsg.parse({ v: 1, command_id: `c-${++n}`, cp_id: 'CP-T1', command, ts: t, ...extra });
  return { engine, hal, link, clock, advance, cmd, logLines, now: () => t };
}

async function connected(opts?: Parameters<typeof setup>[0]) {
  const s = setup(opts);
  await s.engine.start();
  s.engine.linkUp();
  s.advance(100);
  return s;
}

describe('firmware engine (in-memory link, fake clock)', () => {
  it('on connect: announce (profile, health port, fw, boot id) and a retained QoS1 status ACTIVATED', async () => {
    const { link, engine, logLines } = await connected();
    expect(engine.state).toBe('ACTIVATED');
    const ann = link.on('announce');
    expect(ann).toHaveLength(1);
    expect(CpAnnounceMsg.parse(ann[0]!.msg)).toMatchObject({ cp_id: 'CP-T1', health_port: 8123, boot_id: 'boot-1', profile: { name: 'ac-22kw', max_kw: 22, hal: 'sim' } });
    const st = link.on('status');
    expect(st).toHaveLength(1);
    expect(st[0]).toMatchObject({ topic: 'cp/CP-T1/status', qos: 1, retain: true });
    expect(CpStatusMsg.parse(st[0]!.msg)).toMatchObject({ state: 'ACTIVATED', source: 'engine' });
    expect(logLines.some((l) => JSON.parse(l).msg === 'CP-T1: DISCONNECTED + CONNECT -> ACTIVATED')).toBe(true);
  });

  it('START_SUPPLY: ack ok, status SUPPLYING, telemetry about once a second at QoS0', async () => {
    const { link, engine, advance, cmd } = await connected();
    engine.command(cmd('START_SUPPLY', { session_id: 'S-1', driver_id: 'D-1' }));
    advance(100);
    const acks = link.on('ack').map((a) => CommandAckMsg.parse(a.msg));
    expect(acks).toEqual([expect.objectContaining({ command_id: 'c-1', command: 'START_SUPPLY', ok: true, state: 'SUPPLYING' })]);
    expect(link.on('status').map((s) => s.msg.state)).toEqual(['ACTIVATED', 'SUPPLYING']);
    expect(link.on('status')[1]!.msg.session_id).toBe('S-1');
    advance(5_000);
    const tel = link.on('telemetry');
    expect(tel.length).toBeGreaterThanOrEqual(4);
    expect(tel.length).toBeLessThanOrEqual(6);
    for (const t of tel) expect(t.qos).toBe(0);
    const last = CpTelemetryMsg.parse(tel.at(-1)!.msg);
    expect(last).toMatchObject({ session_id: 'S-1', kw: 22 });
    expect(last.kwh).toBeGreaterThan(0);
    expect(last.eur).toBeCloseTo(last.kwh * 0.35, 3);
    const seqs = tel.map((t) => t.msg.seq as number);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('telemetry keeps a true 1 Hz when every tick is late (scheduled from the ideal time, not from the tick)', async () => {
    const { link, engine, advance, cmd } = await connected();
    engine.command(cmd('START_SUPPLY', { session_id: 'S-1', driver_id: 'D-1' }));
    advance(100);
    // Ticks every 600 ms: a period counted from each late tick would send every 1.2 s (50 in 60 s).
    advance(60_000, 600);
    expect(link.on('telemetry').length).toBeGreaterThanOrEqual(59);
    expect(link.on('telemetry').length).toBeLessThanOrEqual(61);
  });

  it('a repeated command id gets the same ack again and no second action', async () => {
    const { link, engine, advance, cmd } = await connected();
    const start = cmd('START_SUPPLY', { session_id: 'S-1' });
    engine.command(start);
    advance(100);
    const stop = cmd('STOP_SUPPLY');
    engine.command(stop);
    advance(100);
    engine.command(start); // replayed after the stop: must not start a new session
    advance(100);
    expect(engine.state).toBe('ACTIVATED');
    const acks = link.on('ack');
    expect(acks).toHaveLength(3);
    expect(acks[2]!.msg).toEqual(acks[0]!.msg);
    expect(link.on('session')).toHaveLength(1);
    expect(engine.counters.duplicates).toBe(1);
  });

  it('rejected commands are acked with the reason', async () => {
    const { link, engine, advance, cmd } = await connected();
    engine.command(cmd('STOP_CP'));
    engine.command(cmd('START_SUPPLY', { session_id: 'S-9' }));
    engine.command(cmd('RESUME_CP'));
    engine.command(cmd('START_SUPPLY'));
    engine.command(cmd('STOP_CP', { cp_id: 'CP-OTHER' }));
    advance(100);
    const acks = link.on('ack').map((a) => CommandAckMsg.parse(a.msg));
    expect(acks.map((a) => [a.command, a.ok, a.reason ?? null])).toEqual([
      ['STOP_CP', true, null],
      ['START_SUPPLY', false, 'CP is STOPPED'],
      ['RESUME_CP', true, null],
      ['START_SUPPLY', false, 'START_SUPPLY needs a session_id'],
      ['STOP_CP', false, 'command is for CP-OTHER, this is CP-T1'],
    ]);
    expect(engine.counters.rejected).toBe(3);
  });

  it('a START past its expires_at is refused with the reason and starts no supply', async () => {
    const { link, engine, advance, cmd, now } = await connected();
    engine.command(cmd('START_SUPPLY', { session_id: 'S-LATE', expires_at: now() - 5_000 }));
    advance(100);
    const acks = link.on('ack').map((a) => CommandAckMsg.parse(a.msg));
    expect(acks).toEqual([expect.objectContaining({ command: 'START_SUPPLY', ok: false, state: 'ACTIVATED' })]);
    expect(acks[0]!.reason).toMatch(/^START expired \d+ ms ago$/);
    expect(engine.state).toBe('ACTIVATED');
    expect(link.on('telemetry')).toHaveLength(0);
    engine.command(cmd('START_SUPPLY', { session_id: 'S-OK', expires_at: now() + 60_000 }));
    advance(100);
    expect(engine.state).toBe('SUPPLYING');
  });

  it('a full session: vehicle full ends it with metered kWh and EUR = kWh x price', async () => {
    // ac-22kw: 60 kWh battery from 20% to 90% = 42 kWh; x600 so it takes seconds of fake time
    const { link, engine, advance, cmd } = await connected({ speed: 600 });
    engine.command(cmd('START_SUPPLY', { session_id: 'S-1', driver_id: 'D-7' }));
    advance(60_000, 200);
    expect(engine.state).toBe('ACTIVATED');
    const ends = link.on('session');
    expect(ends).toHaveLength(1);
    expect(ends[0]!.qos).toBe(1);
    const end = SessionEndMsg.parse(ends[0]!.msg);
    expect(end).toMatchObject({ session_id: 'S-1', driver_id: 'D-7', reason: 'full', price_eur_kwh: 0.35 });
    expect(end.kwh).toBeCloseTo(42, 2);
    expect(end.eur).toBeCloseTo(end.kwh * 0.35, 3);
  });

  it('22 kW for one simulated hour bills 22 kWh within 1% and EUR = kWh x price', async () => {
    const base = loadProfile('ac-22kw');
    const profile = { ...withOverrides(base, { price: 0.4 }), hal: { driver: 'sim' as const, battery_kwh: 500, soc_start: 0, soc_target: 1, taper_from_soc: 0.95 } };
    const { link, engine, advance, cmd } = await connected({ profile, speed: 60 });
    engine.command(cmd('START_SUPPLY', { session_id: 'S-H' }));
    advance(100);
    advance(60_000); // one wall minute at x60
    engine.command(cmd('STOP_SUPPLY'));
    advance(100);
    const end = SessionEndMsg.parse(link.on('session')[0]!.msg);
    expect(end.reason).toBe('central_stop');
    expect(end.kwh).toBeGreaterThan(22 * 0.99);
    expect(end.kwh).toBeLessThan(22 * 1.01);
    expect(end.eur).toBeCloseTo(end.kwh * 0.4, 3);
  });

  it('STOP_SUPPLY naming the driver ends with driver_stop', async () => {
    const { link, engine, advance, cmd } = await connected();
    engine.command(cmd('START_SUPPLY', { session_id: 'S-1', driver_id: 'D-1' }));
    advance(1_000);
    engine.command(cmd('STOP_SUPPLY', { session_id: 'S-1', driver_id: 'D-1' }));
    advance(100);
    expect(link.on('session')[0]!.msg.reason).toBe('driver_stop');
  });

  it('a hardware fault opens the relay, ends the session (fault), makes health KO; repair returns to ACTIVATED', async () => {
    const { link, engine, hal, advance, cmd } = await connected();
    engine.command(cmd('START_SUPPLY', { session_id: 'S-1' }));
    advance(2_000);
    engine.injectFault('ground_fault');
    advance(100);
    expect(engine.state).toBe('FAULTY');
    expect(hal.read(Number.MAX_SAFE_INTEGER).relayClosed).toBe(false);
    expect(link.on('session')[0]!.msg.reason).toBe('fault');
    expect(link.on('status').at(-1)!.msg).toMatchObject({ state: 'FAULTY', faults: ['ground_fault'] });
    expect(engine.health()).toEqual({ ok: false, reason: 'fault ground_fault' });
    engine.repair();
    advance(100);
    expect(engine.state).toBe('ACTIVATED');
    expect(engine.health()).toEqual({ ok: true });
  });

  it('link lost while SUPPLYING: keeps supplying; a session ending offline is published after reconnect', async () => {
    const { link, engine, advance, cmd } = await connected({ speed: 600 });
    engine.command(cmd('START_SUPPLY', { session_id: 'S-1' }));
    advance(200);
    engine.linkDown();
    advance(200);
    expect(engine.state).toBe('SUPPLYING');
    const sentBefore = link.sent.length;
    advance(60_000, 200); // the vehicle fills up while offline
    expect(link.sent.length).toBe(sentBefore); // nothing goes out on a dead link
    expect(engine.state).toBe('DISCONNECTED');
    engine.linkUp();
    advance(100);
    const after = link.sent.slice(sentBefore).map((s) => s.topic.split('/')[2]);
    expect(after).toEqual(['announce', 'session', 'status']);
    expect(link.on('session')[0]!.msg).toMatchObject({ reason: 'full', session_id: 'S-1' });
    expect(engine.state).toBe('ACTIVATED');
  });

  it('re-announces and re-publishes status after every reconnect', async () => {
    const { link, engine, advance } = await connected();
    engine.linkDown();
    advance(100);
    engine.linkUp();
    advance(100);
    expect(link.on('announce')).toHaveLength(2);
    expect(link.on('status').map((s) => s.msg.state)).toEqual(['ACTIVATED', 'ACTIVATED']);
  });

  it('stop() publishes a retained DISCONNECTED status and ends a running session', async () => {
    const { link, engine, advance, cmd } = await connected();
    engine.command(cmd('START_SUPPLY', { session_id: 'S-1' }));
    advance(1_000);
    await engine.stop();
    expect(link.on('session')[0]!.msg.reason).toBe('disconnected');
    const last = link.on('status').at(-1)!;
    expect(last).toMatchObject({ retain: true, qos: 1 });
    expect(last.msg).toMatchObject({ state: 'DISCONNECTED', reason: 'shutdown', source: 'engine' });
  });

  it('health reports a stalled loop', () => {
    const profile = loadProfile('ac-22kw');
    const hal = createSimHal({ maxKw: 22, battery: { battery_kwh: 60, soc_start: 0.2, soc_target: 0.9, taper_from_soc: 0.8 } });
    const t = 1_000;
    const engine = createEngine({ cpId: 'CP-S', profile, hal, link: new MemoryLink(), log: pino({ level: 'silent' }), clock: { now: () => t }, tickMs: 100 });
    engine.tick(t);
    expect(engine.health(t + 500)).toEqual({ ok: true });
    expect(engine.health(t + 10_000)).toEqual({ ok: false, reason: 'loop stalled 10000 ms' });
  });

  it('engines share nothing: two in one process keep their own state', async () => {
    const a = await connected();
    const b = await connected();
    a.engine.command(a.cmd('STOP_CP'));
    a.advance(100);
    b.advance(100);
    expect(a.engine.state).toBe('STOPPED');
    expect(b.engine.state).toBe('ACTIVATED');
  });
});
