import { VERSION } from '../lib/paths.js';
import { randomUUID } from 'node:crypto';
import {
  FAULT_KINDS, cpStatus,
  type CentralCommandMsg, type CommandAckMsg, type CpState, type CpStatusMsg, type FaultKind, type SessionEndMsg,
} from '../protocol/index.js';
import type { HwProfile } from '../hw-profiles/profile.js';
import type { Logger } from '../lib/log.js';
import type { Hal, HalInputs } from './hal/types.js';
import { initialContext, step, type CpContext, type CpEvent, type Effect } from './state-machine.js';
import type { LinkPort } from './link.js';
import { ackMsg, announceMsg, round, sessionEndMsg, telemetryMsg } from './engine-messages.js';

export const FW_VERSION = VERSION;

export type { LinkPort } from './link.js';

export interface Clock { now(): number }
export const systemClock: Clock = { now: () => Date.now() };

export interface EngineOptions {
  cpId: string;
  profile: HwProfile;
  hal: Hal;
  link: LinkPort;
  log: Logger;
  clock?: Clock;
  /** Loop period; 0 = no timer, the caller drives tick() (tests, fleets with their own scheduler). */
  tickMs?: number;
  telemetryMs?: number;
  healthPort?: number;
  healthHost?: string;
  bootId?: string;
}

export interface EngineCounters { commands: number; rejected: number; duplicates: number; badCommands: number; transitions: number; ticks: number }

export interface Engine {
  readonly cpId: string;
  readonly state: CpState;
  readonly context: Readonly<CpContext>;
  readonly counters: Readonly<EngineCounters>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** One pass of the loop at clock time `now`. */
  tick(now?: number): void;
  /** Link events and commands are queued and applied on the next tick, in order. */
  linkUp(): void;
  linkDown(): void;
  command(msg: CentralCommandMsg): void;
  /** A command that failed validation at the link: counted here so STATUS shows it. */
  badCommand(): void;
  injectFault(kind: FaultKind): void;
  /** Caps the charging power (an OCPP charging profile), kW; undefined lifts it. False when the HAL cannot. */
  setPowerLimit(kw: number | undefined): boolean;
  repair(kind?: FaultKind): void;
  /** Healthy = loop running and no fault; the health port answers PING with this. */
  health(now?: number): { ok: true } | { ok: false; reason: string };
  snapshot(now?: number): Record<string, unknown>;
}

type Queued = { kind: 'link'; up: boolean } | { kind: 'command'; msg: CentralCommandMsg };
const ACK_MEMORY = 512;

/**
 * One charging point's firmware loop. Each tick: read the HAL, turn what changed into events
 * (faults appearing/clearing, vehicle full), apply queued link events and commands, step the
 * pure state machine, drive the relay, publish. No process globals: many engines can share a process.
 */
export function createEngine(o: EngineOptions): Engine {
  const { cpId, profile, hal, link, log } = o;
  const clock = o.clock ?? systemClock;
  const tickMs = o.tickMs ?? 100;
  const telemetryMs = o.telemetryMs ?? 1_000;
  const bootId = o.bootId ?? randomUUID();
  const price = profile.price_eur_kwh;
  // Sequence numbers start at the boot time so they keep growing across restarts.
  let seq = clock.now();
  let ctx = initialContext();
  const queue: Queued[] = [];
  const acks = new Map<string, CommandAckMsg>();
  /** Session ends that happened while the link was down, published on reconnect. */
  const outbox: SessionEndMsg[] = [];
  const counters: EngineCounters = { commands: 0, rejected: 0, duplicates: 0, badCommands: 0, transitions: 0, ticks: 0 };
  let inputs: HalInputs | undefined;
  let sessionMeterStart = 0;
  let lastTelemetryAt = 0;
  let lastTickAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let statusDirty = false;
  let powerLimitKw: number | undefined;

  const sessionKwh = () => Math.max(0, (inputs?.meterKwh ?? sessionMeterStart) - sessionMeterStart);

  function statusMsg(reason?: string): CpStatusMsg {
    return cpStatus({ cpId, state: ctx.state, faults: ctx.faults, reason, sessionId: ctx.session?.session_id, seq: ++seq, ts: clock.now() });
  }
  const announce = () => link.send(announceMsg({ cpId, profile, fwVersion: FW_VERSION, bootId, healthPort: o.healthPort, healthHost: o.healthHost, now: clock.now() }));

  /** Steps the machine and carries out the effects; returns the rejection reason, if any. */
  function apply(ev: CpEvent, now: number): string | undefined {
    const r = step(ctx, ev, now);
    if (r.rejected) {
      log.info({ cp_id: cpId, event: ev.type, state: ctx.state, reason: r.rejected }, `${cpId}: ${ev.type} rejected in ${ctx.state}: ${r.rejected}`);
      return r.rejected;
    }
    const before = ctx;
    ctx = r.ctx;
    if (r.transition) {
      counters.transitions++;
      log.info({ cp_id: cpId, from: r.transition.from, event: ev.type, to: r.transition.to }, `${cpId}: ${r.transition.from} + ${ev.type} -> ${r.transition.to}`);
    }
    for (const e of r.effects) effect(e);
    if (r.transition || before.faults.length !== ctx.faults.length || before.session !== ctx.session) statusDirty = true;
    return undefined;
  }

  function effect(e: Effect) {
    switch (e.type) {
      case 'relay': hal.setRelay(e.closed); break;
      case 'session_start':
        hal.sessionStarted();
        sessionMeterStart = inputs?.meterKwh ?? 0;
        lastTelemetryAt = e.session.started_at; // first telemetry one period in, with the relay closed
        break;
      case 'session_end': {
        const msg = sessionEndMsg({ cpId, session: e.session, kwh: sessionKwh(), price, reason: e.reason, endedAt: e.at, now: clock.now() });
        hal.sessionEnded();
        log.info({ cp_id: cpId, session_id: msg.session_id, kwh: msg.kwh, eur: msg.eur, reason: msg.reason }, 'session ended');
        if (ctx.linkUp) link.send(msg);
        else outbox.push(msg);
        break;
      }
    }
  }

  function handleCommand(msg: CentralCommandMsg, now: number) {
    const seen = acks.get(msg.command_id);
    if (seen) {
      counters.duplicates++;
      log.info({ cp_id: cpId, command_id: msg.command_id }, 'repeated command: same ack again, no action');
      link.send(seen);
      return;
    }
    counters.commands++;
    let reason: string | undefined;
    if (msg.cp_id !== cpId) reason = `command is for ${msg.cp_id}, this is ${cpId}`;
    else {
      switch (msg.command) {
        case 'START_SUPPLY':
          reason = msg.session_id ? apply({ type: 'START_SUPPLY', session_id: msg.session_id, driver_id: msg.driver_id, expires_at: msg.expires_at }, now) : 'START_SUPPLY needs a session_id';
          break;
        case 'STOP_SUPPLY':
          if (msg.session_id && ctx.session && msg.session_id !== ctx.session.session_id) reason = `session ${msg.session_id} is not the active session`;
          // Central names the driver when the driver asked to stop.
          else reason = apply({ type: 'STOP_SUPPLY', reason: msg.driver_id ? 'driver_stop' : 'central_stop' }, now);
          break;
        case 'STOP_CP': reason = apply({ type: 'STOP_CP' }, now); break;
        case 'RESUME_CP': reason = apply({ type: 'RESUME_CP' }, now); break;
      }
    }
    if (reason) counters.rejected++;
    const ack = ackMsg({ cpId, cmd: msg, reason, state: ctx.state, now: clock.now() });
    acks.set(msg.command_id, ack);
    if (acks.size > ACK_MEMORY) acks.delete(acks.keys().next().value!);
    link.send(ack);
  }

  function onLink(up: boolean, now: number) {
    if (up) {
      apply({ type: 'CONNECT' }, now);
      announce();
      statusDirty = true; // re-published after every reconnect, even without a state change
      for (const m of outbox.splice(0)) link.send(m);
    } else {
      apply({ type: 'DISCONNECT' }, now);
    }
  }

  function tick(now = clock.now()) {
    if (stopped) return;
    counters.ticks++;
    inputs = hal.read(now);
    // Hardware first: a fault must open the relay before any command is considered.
    for (const kind of inputs.faults) if (!ctx.faults.includes(kind)) apply({ type: 'FAULT', kind }, now);
    for (const kind of ctx.faults) if (!inputs.faults.includes(kind)) apply({ type: 'FAULT_CLEARED', kind }, now);
    if (ctx.state === 'SUPPLYING' && inputs.vehicleFull) apply({ type: 'VEHICLE_FULL' }, now);
    for (const q of queue.splice(0)) {
      if (q.kind === 'link') onLink(q.up, now);
      else handleCommand(q.msg, now);
    }
    if (statusDirty && ctx.linkUp) {
      statusDirty = false;
      link.send(statusMsg());
    }
    if (ctx.state === 'SUPPLYING' && ctx.linkUp && ctx.session && now - lastTelemetryAt >= telemetryMs) {
      // From the ideal time, not from `now`: a late tick must not stretch the period (true 1 Hz);
      // after a stall longer than a period it starts afresh instead of sending a burst.
      lastTelemetryAt = now - lastTelemetryAt >= 2 * telemetryMs ? now : lastTelemetryAt + telemetryMs;
      link.send(telemetryMsg({ cpId, sessionId: ctx.session.session_id, kw: inputs.powerKw, kwh: sessionKwh(), price, soc: inputs.soc, seq: ++seq, now: clock.now() }));
    }
    lastTickAt = now; // only a pass that completed counts as alive
  }

  function health(now = clock.now()): { ok: true } | { ok: false; reason: string } {
    if (ctx.faults.length) return { ok: false, reason: `fault ${ctx.faults.join(',')}` };
    const stallMs = Math.max(2_000, tickMs * 20);
    if (tickMs > 0 && lastTickAt !== undefined && now - lastTickAt > stallMs) return { ok: false, reason: `loop stalled ${now - lastTickAt} ms` };
    if (stopped) return { ok: false, reason: 'engine stopped' };
    return { ok: true };
  }

  return {
    cpId,
    get state() { return ctx.state; },
    get context() { return ctx; },
    get counters() { return counters; },
    async start() {
      await hal.start();
      lastTickAt = clock.now();
      tick(lastTickAt);
      if (tickMs > 0) timer = setInterval(() => {
        try { tick(); } catch (err) { log.error({ cp_id: cpId, err: (err as Error).message }, 'loop pass failed'); }
      }, tickMs);
    },
    async stop() {
      if (stopped) return;
      if (timer) clearInterval(timer);
      const now = clock.now();
      tick(now);
      // A clean shutdown ends a running session and leaves a DISCONNECTED status behind.
      hal.setRelay(false);
      if (ctx.session) effect({ type: 'session_end', session: ctx.session, reason: 'disconnected', at: now });
      if (ctx.state !== 'DISCONNECTED') log.info({ cp_id: cpId }, `${cpId}: ${ctx.state} + SHUTDOWN -> DISCONNECTED`);
      ctx = { ...ctx, state: 'DISCONNECTED', session: undefined };
      if (ctx.linkUp) link.send(statusMsg('shutdown'));
      stopped = true;
      await hal.close();
    },
    tick,
    linkUp: () => { queue.push({ kind: 'link', up: true }); },
    linkDown: () => { queue.push({ kind: 'link', up: false }); },
    command: (msg) => { queue.push({ kind: 'command', msg }); },
    badCommand: () => { counters.badCommands++; },
    injectFault(kind) {
      if (!hal.injectFault) throw new Error(`the ${hal.driver} HAL cannot inject faults`);
      if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw new Error(`unknown fault kind ${kind}`);
      hal.injectFault(kind);
      log.warn({ cp_id: cpId, kind }, 'fault injected');
    },
    setPowerLimit(kw) {
      if (!hal.setPowerLimitKw) return false;
      if (kw !== powerLimitKw) log.info({ cp_id: cpId, limit_kw: kw ?? null }, kw === undefined ? 'power limit lifted' : 'power limited');
      powerLimitKw = kw;
      hal.read(clock.now()); // the energy so far at the old power
      hal.setPowerLimitKw(kw);
      return true;
    },
    repair(kind) {
      if (!hal.clearFault) throw new Error(`the ${hal.driver} HAL cannot clear faults`);
      hal.clearFault(kind);
      log.info({ cp_id: cpId, kind: kind ?? 'all' }, 'fault repaired');
    },
    health,
    snapshot(now = clock.now()) {
      const h = health(now);
      return {
        cp_id: cpId, state: ctx.state, link_up: ctx.linkUp, faults: ctx.faults, healthy: h.ok, ...(h.ok ? {} : { reason: h.reason }),
        session: ctx.session ? { ...ctx.session, kwh: round(sessionKwh(), 4), eur: round(sessionKwh() * price, 4) } : null,
        kw: inputs ? round(inputs.powerKw, 3) : 0, soc: inputs?.soc, meter_kwh: inputs ? round(inputs.meterKwh, 4) : 0,
        profile: profile.name, boot_id: bootId, counters, ...(powerLimitKw !== undefined ? { power_limit_kw: powerLimitKw } : {}), ...(hal.stats ? { hal: hal.stats() } : {}),
      };
    },
  };
}
