import { randomBytes } from 'node:crypto';
import {
  FN_READ_DISCRETE_INPUTS, FN_READ_INPUT_REGISTERS, SDM_REGISTERS,
  decodeReadRequest, encodeException, encodeLcusStatus, encodeReadResponse, floatToRegisters, requestLength, scanLcus, scanRtu,
} from '../hal/serial-frames.js';

export interface BoardOptions {
  /** Relay channels on the board (LCUS-1/2/4/8). */
  channels: number;
  meterUnit: number;
  /** Unit id of the digital input module on the meter bus (its input 0 is the fault contact). */
  inputUnit: number;
  vehicleKw: number;
  batteryKwh: number;
  socStart: number;
  socTarget: number;
  /** Simulated time runs this many times faster than the clock. */
  speed: number;
  voltage: number;
}

export const DEFAULT_BOARD: BoardOptions = {
  channels: 1, meterUnit: 1, inputUnit: 2, vehicleKw: 7.4, batteryKwh: 60, socStart: 0.2, socTarget: 0.9, speed: 1, voltage: 230,
};

export interface BoardFaults {
  /** The next N meter replies carry a wrong CRC. */
  badCrc: number;
  /** The next N meter replies are preceded by `noiseBytes` random bytes. */
  noiseReplies: number;
  noiseBytes: number;
  /** The meter does not answer at all. */
  meterSilent: boolean;
  /** The fault contact (digital input 0 of the input module) is closed. */
  faultInput: boolean;
  /** The relay ignores commands (welded or broken coil). */
  relayStuck: boolean;
}

export interface BoardCounters { meter_requests: number; meter_replies: number; relay_commands: number; relay_queries: number; garbage_bytes: number; bad_crc_sent: number; noise_sent: number }

/**
 * The hardware on the far side of the serial lines, pure (bytes in, bytes out; time passed in):
 * an LCUS-type relay board, an Eastron SDM meter on a Modbus bus (with a digital input module for
 * a fault contact), and a vehicle that draws power while the relay is closed until it is full.
 */
export class Board {
  readonly o: BoardOptions;
  relays: boolean[];
  energyKwh = 0;
  soc: number;
  private lastMs: number | undefined;
  private meterRxBuf = Buffer.alloc(0);
  private relayRxBuf = Buffer.alloc(0);
  readonly faults: BoardFaults = { badCrc: 0, noiseReplies: 0, noiseBytes: 0, meterSilent: false, faultInput: false, relayStuck: false };
  readonly counters: BoardCounters = { meter_requests: 0, meter_replies: 0, relay_commands: 0, relay_queries: 0, garbage_bytes: 0, bad_crc_sent: 0, noise_sent: 0 };

  constructor(o: Partial<BoardOptions> = {}, private readonly noise: (n: number) => Buffer = randomBytes) {
    this.o = { ...DEFAULT_BOARD, ...o };
    this.relays = Array.from({ length: this.o.channels }, () => false);
    this.soc = this.o.socStart;
  }

  /** The vehicle draws on channel 1. */
  get powerKw(): number {
    return this.relays[0] && this.soc < this.o.socTarget ? this.o.vehicleKw : 0;
  }

  advance(nowMs: number): void {
    if (this.lastMs !== undefined && nowMs > this.lastMs) {
      const hours = ((nowMs - this.lastMs) * this.o.speed) / 3_600_000;
      const kw = this.powerKw;
      if (kw > 0) {
        const kwh = Math.min(kw * hours, (this.o.socTarget - this.soc) * this.o.batteryKwh);
        this.energyKwh += kwh;
        this.soc = Math.min(this.o.socTarget, this.soc + kwh / this.o.batteryKwh);
      }
    }
    this.lastMs = Math.max(nowMs, this.lastMs ?? nowMs);
  }

  /** A fresh vehicle plugs in. */
  plug(): void { this.soc = this.o.socStart; }

  /** Bytes from the host on the relay line; returns what the board sends back. */
  relayRx(bytes: Uint8Array, nowMs: number): Buffer[] {
    this.advance(nowMs);
    this.relayRxBuf = Buffer.concat([this.relayRxBuf, bytes]);
    const out: Buffer[] = [];
    for (;;) {
      const s = scanLcus(this.relayRxBuf);
      this.counters.garbage_bytes += s.skipped;
      this.relayRxBuf = this.relayRxBuf.subarray(s.consumed);
      if (!s.frame) break;
      if (s.frame.kind === 'query') {
        this.counters.relay_queries++;
        out.push(encodeLcusStatus(this.relays));
      } else {
        this.counters.relay_commands++;
        const i = s.frame.channel - 1;
        if (i >= 0 && i < this.relays.length && !this.faults.relayStuck) this.relays[i] = s.frame.on;
      }
    }
    return out;
  }

  /** Bytes from the host on the meter bus; returns what the devices on it send back. */
  meterRx(bytes: Uint8Array, nowMs: number): Buffer[] {
    this.advance(nowMs);
    this.meterRxBuf = Buffer.concat([this.meterRxBuf, bytes]);
    const out: Buffer[] = [];
    const lengthAt = requestLength([this.o.meterUnit, this.o.inputUnit]);
    for (;;) {
      const s = scanRtu(this.meterRxBuf, lengthAt);
      this.counters.garbage_bytes += s.noise;
      this.meterRxBuf = this.meterRxBuf.subarray(s.consumed);
      if (!s.frame) break;
      this.counters.meter_requests++;
      const reply = this.answer(s.frame);
      if (!reply || this.faults.meterSilent) continue;
      out.push(...this.disturb(reply));
    }
    return out;
  }

  private answer(frame: Buffer): Buffer | undefined {
    const req = decodeReadRequest(frame);
    if (req.unit === this.o.inputUnit) {
      if (req.fn !== FN_READ_DISCRETE_INPUTS) return encodeException(req.unit, req.fn, 1);
      if (req.quantity < 1 || req.quantity > 8 || req.address > 7) return encodeException(req.unit, req.fn, 2);
      const bits = (this.faults.faultInput ? 1 : 0) >> req.address;
      return encodeReadResponse(req.unit, req.fn, Uint8Array.from([bits & ((1 << req.quantity) - 1)]));
    }
    if (req.fn !== FN_READ_INPUT_REGISTERS) return encodeException(req.unit, req.fn, 1);
    const regs = this.registers();
    if (req.quantity < 1 || req.quantity > 80 || req.address % 2 || req.quantity % 2) return encodeException(req.unit, req.fn, 2);
    const data: Buffer[] = [];
    for (let a = req.address; a < req.address + req.quantity; a += 2) {
      const v = regs.get(a);
      if (v === undefined) return encodeException(req.unit, req.fn, 2);
      data.push(floatToRegisters(v));
    }
    return encodeReadResponse(req.unit, req.fn, Buffer.concat(data));
  }

  /** The SDM input registers this board knows (pairs of 16-bit registers holding floats). */
  registers(): Map<number, number> {
    const w = this.powerKw * 1000;
    return new Map([
      [0x0000, this.o.voltage],
      [0x0006, w / this.o.voltage],
      [SDM_REGISTERS.sdm120.power_w, w],
      [SDM_REGISTERS.sdm630.power_w, w],
      [SDM_REGISTERS.sdm120.energy_kwh, this.energyKwh],
    ]);
  }

  private disturb(reply: Buffer): Buffer[] {
    this.counters.meter_replies++;
    const out: Buffer[] = [];
    if (this.faults.noiseReplies > 0) {
      this.faults.noiseReplies--;
      this.counters.noise_sent += this.faults.noiseBytes;
      out.push(this.noise(this.faults.noiseBytes));
    }
    if (this.faults.badCrc > 0) {
      this.faults.badCrc--;
      this.counters.bad_crc_sent++;
      const bad = Buffer.from(reply);
      bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0x5a, bad.length - 1);
      out.push(bad);
    } else out.push(reply);
    return out;
  }

  state() {
    return {
      relays: [...this.relays], power_kw: this.powerKw, energy_kwh: this.energyKwh, soc: this.soc,
      vehicle_full: this.soc >= this.o.socTarget, faults: { ...this.faults }, counters: { ...this.counters },
    };
  }
}
