import type { FaultKind } from '../../protocol/index.js';
import type { HwProfile, SerialHalSettings } from '../../hw-profiles/profile.js';
import type { Logger } from '../../lib/log.js';
import type { Hal, HalInputs } from './types.js';
import { FN_READ_DISCRETE_INPUTS, FN_READ_INPUT_REGISTERS, SDM_REGISTERS, registersToFloat } from './serial-frames.js';
import { SerialLine } from './serial-line.js';
import { ModbusMaster, type ModbusRead } from './serial-modbus.js';
import { LcusRelay } from './serial-relay.js';
import { createFullDetector } from './serial-full.js';

/** A vehicle that never draws power after the relay closed counts as full after this long. */
const NO_DRAW_MS = 60_000;

export interface SerialHal extends Hal {
  stats(): Record<string, number | boolean>;
}

/**
 * The `serial` HAL: an LCUS-type relay board and an Eastron SDM meter (plus, optionally, a
 * Modbus digital input for a fault contact) polled in the background every poll_ms; read()
 * returns the cached image. Faults:
 *  - link_lost: a port is gone (cable pulled) or a device stopped answering;
 *  - meter_failure: the meter answers only with corrupt frames or exceptions;
 *  - relay_failure: relay feedback disagrees with the command for more than `retries` polls.
 * Each clears by itself when the hardware behaves again.
 */
export function createSerialHal(s: SerialHalSettings, ctx: { profile: HwProfile; log: Logger }): SerialHal {
  const { log } = ctx;
  const relayLine = new SerialLine({ name: 'relay', path: s.relay.path, baudRate: s.relay.baud_rate, log });
  const meterLine = new SerialLine({ name: 'meter', path: s.meter.path, baudRate: s.meter.baud_rate, log });
  const relay = new LcusRelay(relayLine, { channel: s.relay.channel, timeoutMs: s.timeout_ms, retries: s.retries });
  const modbus = new ModbusMaster(meterLine, { timeoutMs: s.timeout_ms, retries: s.retries });
  const regs = SDM_REGISTERS[s.meter.model];
  const full = createFullDetector({ belowKw: s.full_below_kw, afterMs: s.full_after_ms, noDrawMs: NO_DRAW_MS });

  let want = false;
  let relayClosed = false;
  let mismatchPolls = 0;
  let meterKwh = 0;
  let powerKw = 0;
  let polls = 0;
  let implausible = 0;
  let backwards = 0;
  /** Faults seen by each part of the hardware; the union is reported. */
  const relayFaults = new Set<FaultKind>();
  const meterFaults = new Set<FaultKind>();
  const inputFaults = new Set<FaultKind>();
  let stopped = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  const faults = (): FaultKind[] => [...new Set([...relayFaults, ...meterFaults, ...inputFaults])];

  /** One log line each time a part of the hardware raises or clears a fault. */
  function setFault(set: Set<FaultKind>, kind: FaultKind, on: boolean, detail: string) {
    if (on === set.has(kind)) return;
    if (on) set.add(kind); else set.delete(kind);
    const part = set === relayFaults ? 'relay' : set === meterFaults ? 'meter' : 'fault input';
    if (on) log.warn({ part, fault: kind, detail, ...stats() }, `serial hardware fault ${kind} (${part}): ${detail}`);
    else log.info({ part, fault: kind, detail, ...stats() }, `serial hardware fault ${kind} (${part}) cleared: ${detail}`);
  }

  async function pollRelay() {
    if (s.relay.feedback === 'none') {
      const sent = relayLine.isOpen && (await relay.command(want));
      if (sent) relayClosed = want;
      setFault(relayFaults, 'link_lost', !sent, sent ? 'relay port back' : `relay port ${s.relay.path} not open`);
      return;
    }
    // The command is resent until the feedback agrees (an LCUS command has no reply of its own).
    if (relayClosed !== want || mismatchPolls > 0) await relay.command(want);
    const r = await relay.query();
    if (!r.ok) {
      setFault(relayFaults, 'link_lost', true, r.why === 'closed' ? `relay port ${s.relay.path} not open` : 'relay board does not answer its status query');
      return;
    }
    setFault(relayFaults, 'link_lost', false, 'relay board answers again');
    relayClosed = r.closed;
    if (r.closed !== want) {
      mismatchPolls++;
      relay.counters.mismatches++;
      if (mismatchPolls > s.retries) setFault(relayFaults, 'relay_failure', true, `relay feedback ${r.closed ? 'closed' : 'open'}, commanded ${want ? 'closed' : 'open'}`);
    } else {
      mismatchPolls = 0;
      setFault(relayFaults, 'relay_failure', false, 'relay feedback agrees');
    }
  }

  function meterResult(r: ModbusRead, what: string): Buffer | undefined {
    if (r.ok) return r.data;
    if (r.why === 'closed' || r.why === 'timeout') {
      setFault(meterFaults, 'link_lost', true, r.why === 'closed' ? `meter port ${s.meter.path} not open` : `${what}: no reply after ${s.retries + 1} tries`);
    } else {
      setFault(meterFaults, 'meter_failure', true, `${what}: ${r.why === 'bad_frame' ? `only corrupt frames after ${s.retries + 1} tries` : r.detail}`);
    }
    return undefined;
  }

  async function pollMeter() {
    const p = meterResult(await modbus.read(s.meter.unit_id, FN_READ_INPUT_REGISTERS, regs.power_w, 2), 'meter power');
    if (!p) return;
    const e = meterResult(await modbus.read(s.meter.unit_id, FN_READ_INPUT_REGISTERS, regs.energy_kwh, 2), 'meter energy');
    if (!e) return;
    const w = registersToFloat(p);
    const kwh = registersToFloat(e);
    if (!Number.isFinite(w) || !Number.isFinite(kwh) || kwh < 0) {
      setFault(meterFaults, 'meter_failure', true, `meter values out of range (${w} W, ${kwh} kWh)`);
      return;
    }
    if (kwh + 1e-6 < meterKwh) {
      // An energy register never runs backwards: one such reading is a misread and is dropped;
      // if it persists, the meter was replaced or reset and its register is the new baseline.
      implausible++;
      if (++backwards <= s.retries) return;
      log.warn({ from_kwh: meterKwh, to_kwh: kwh }, 'meter energy register went backwards and stays there: meter replaced or reset, taking its reading');
    }
    backwards = 0;
    setFault(meterFaults, 'link_lost', false, 'meter answers again');
    setFault(meterFaults, 'meter_failure', false, 'meter frames valid again');
    powerKw = Math.max(0, w / 1000);
    meterKwh = kwh;
    full.sample(Date.now(), relayClosed, powerKw);
    if (s.fault_input) {
      const fi = s.fault_input;
      const r = await modbus.read(fi.unit_id, FN_READ_DISCRETE_INPUTS, fi.input, 1);
      if (!r.ok) { meterResult(r, 'fault input'); return; }
      const high = (r.data[0]! & 1) === 1;
      const active = fi.active === 'high' ? high : !high;
      setFault(inputFaults, fi.kind, active, `fault input ${active ? 'active' : 'inactive'}`);
    }
  }

  async function run() {
    while (!stopped) {
      const started = Date.now();
      // A bug in one poll must not end the loop (nor the process): log it and poll again.
      await Promise.all([pollRelay(), pollMeter()].map((p) => p.catch((err: unknown) => {
        log.error({ err: (err as Error).message }, 'serial poll failed');
      })));
      polls++;
      const wait = Math.max(0, s.poll_ms - (Date.now() - started));
      if (stopped) break;
      await new Promise<void>((r) => { const t = setTimeout(r, wait); wake = () => { clearTimeout(t); r(); }; });
      wake = undefined;
    }
  }

  function stats() {
    return {
      relay_open: relayLine.isOpen, meter_open: meterLine.isOpen, polls,
      relay_commands: relay.counters.commands, relay_queries: relay.counters.queries, relay_timeouts: relay.counters.timeouts, relay_mismatches: relay.counters.mismatches,
      meter_requests: modbus.counters.requests, meter_replies: modbus.counters.replies, meter_retries: modbus.counters.retries,
      meter_timeouts: modbus.counters.timeouts, meter_crc_errors: modbus.counters.crc_errors, meter_noise_bytes: modbus.counters.noise_bytes,
      meter_exceptions: modbus.counters.exceptions, meter_implausible: implausible, stale_bytes: relayLine.staleBytes + meterLine.staleBytes,
      reopens: Math.max(0, relayLine.opens - 1) + Math.max(0, meterLine.opens - 1),
    };
  }

  return {
    driver: 'serial',
    async start() {
      await Promise.all([relayLine.start(), meterLine.start()]);
      // Until the first poll proves otherwise, a port that did not open is a lost link.
      if (!relayLine.isOpen) setFault(relayFaults, 'link_lost', true, `relay port ${s.relay.path} not open`);
      if (!meterLine.isOpen) setFault(meterFaults, 'link_lost', true, `meter port ${s.meter.path} not open`);
      loop = run();
    },
    read(): HalInputs {
      return { meterKwh, powerKw: relayClosed ? powerKw : 0, relayClosed, vehiclePlugged: true, vehicleFull: full.full, faults: faults() };
    },
    setRelay(closed) {
      if (closed === want) return;
      want = closed;
      mismatchPolls = 0;
      wake?.(); // act now, not at the next poll
    },
    sessionStarted() { full.reset(); },
    sessionEnded() { full.reset(); },
    stats,
    async close() {
      stopped = true;
      wake?.();
      await loop;
      // Leave the contactor open behind us.
      if (relayLine.isOpen) await relay.command(false);
      await Promise.all([relayLine.close(), meterLine.close()]);
    },
  };
}
