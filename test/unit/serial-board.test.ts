import { describe, expect, it } from 'vitest';
import { Board } from '../../firmware/emulator/board.js';
import {
  crcOk, decodeReadResponse, encodeLcusCommand, encodeReadRequest, registersToFloat, LCUS_STATUS_QUERY,
} from '../../firmware/hal/serial-frames.js';
import { createFullDetector } from '../../firmware/hal/serial-full.js';

const fixedNoise = (n: number) => Buffer.alloc(n, 0x55);
const readFloat = (board: Board, addr: number, now: number) => {
  const [reply] = board.meterRx(encodeReadRequest(1, 4, addr, 2), now);
  const r = decodeReadResponse(reply!);
  if (!r.ok) throw new Error(`exception ${r.exception}`);
  return registersToFloat(r.data);
};

describe('board emulator core (pure)', () => {
  it('switches the relay on LCUS commands and reports it on the status query', () => {
    const b = new Board({ channels: 2 });
    expect(b.relayRx(encodeLcusCommand(2, true), 0)).toEqual([]);
    expect(b.relayRx(LCUS_STATUS_QUERY, 0)[0]!.toString()).toBe('CH1: OFF\r\nCH2: ON\r\n');
    // A command split across two reads still lands.
    b.relayRx(encodeLcusCommand(1, true).subarray(0, 2), 0);
    b.relayRx(encodeLcusCommand(1, true).subarray(2), 0);
    expect(b.relays).toEqual([true, true]);
    b.relayRx(Buffer.from([0x00, 0xa0, 0x01, 0x00, 0x00]), 0); // bad sum: ignored, counted
    expect(b.relays[0]).toBe(true);
    expect(b.counters.garbage_bytes).toBeGreaterThan(0);
  });

  it('the vehicle draws while the relay is closed until full; the meter integrates it', () => {
    const b = new Board({ vehicleKw: 10, batteryKwh: 1, socStart: 0.5, socTarget: 1, speed: 3600 });
    b.advance(0);
    expect(readFloat(b, 0x000c, 0)).toBe(0);
    b.relayRx(encodeLcusCommand(1, true), 0);
    expect(readFloat(b, 0x000c, 0)).toBe(10_000);
    // 10 kW for 10 ms x 3600 = 36 s = 0.1 kWh
    expect(readFloat(b, 0x0156, 10)).toBeCloseTo(0.1, 5);
    // Only 0.5 kWh fits; then it stops drawing.
    expect(readFloat(b, 0x0156, 10_000)).toBeCloseTo(0.5, 5);
    expect(readFloat(b, 0x000c, 10_000)).toBe(0);
    expect(b.state().vehicle_full).toBe(true);
    b.plug();
    expect(readFloat(b, 0x000c, 10_000)).toBe(10_000);
  });

  it('answers unknown registers and functions with Modbus exceptions, the fault input with function 0x02', () => {
    const b = new Board();
    expect(decodeReadResponse(b.meterRx(encodeReadRequest(1, 4, 0x0100, 2), 0)[0]!)).toEqual({ ok: false, exception: 2 });
    expect(decodeReadResponse(b.meterRx(encodeReadRequest(1, 3, 0x0000, 2), 0)[0]!)).toEqual({ ok: false, exception: 1 });
    const input = () => decodeReadResponse(b.meterRx(encodeReadRequest(2, 2, 0, 1), 0)[0]!);
    expect(input()).toEqual({ ok: true, data: Buffer.from([0]) });
    b.faults.faultInput = true;
    expect(input()).toEqual({ ok: true, data: Buffer.from([1]) });
    // Requests for units that are not on the bus get no answer at all.
    expect(b.meterRx(encodeReadRequest(9, 4, 0, 2), 0)).toEqual([]);
  });

  it('injects bad CRCs, noise before replies and silence, as many times as asked', () => {
    const b = new Board({}, fixedNoise);
    b.faults.badCrc = 1;
    const [bad] = b.meterRx(encodeReadRequest(1, 4, 0, 2), 0);
    expect(crcOk(bad!)).toBe(false);
    expect(crcOk(b.meterRx(encodeReadRequest(1, 4, 0, 2), 0)[0]!)).toBe(true);
    b.faults.noiseReplies = 1;
    b.faults.noiseBytes = 3;
    const out = b.meterRx(encodeReadRequest(1, 4, 0, 2), 0);
    expect(out[0]).toEqual(fixedNoise(3));
    expect(crcOk(out[1]!)).toBe(true);
    b.faults.meterSilent = true;
    expect(b.meterRx(encodeReadRequest(1, 4, 0, 2), 0)).toEqual([]);
  });

  it('the relay ignores commands while stuck', () => {
    const b = new Board();
    b.faults.relayStuck = true;
    b.relayRx(encodeLcusCommand(1, true), 0);
    expect(b.relays[0]).toBe(false);
  });
});

describe('vehicle-full detector (pure)', () => {
  const o = { belowKw: 0.1, afterMs: 1_000, noDrawMs: 10_000 };
  it('is full once power stays low for afterMs after the vehicle drew power', () => {
    const d = createFullDetector(o);
    expect(d.sample(0, true, 0)).toBe(false); // relay just closed, nothing yet
    expect(d.sample(100, true, 7.4)).toBe(false);
    expect(d.sample(5_000, true, 0.05)).toBe(false);
    expect(d.sample(5_500, true, 0.2)).toBe(false); // a blip resets the wait
    expect(d.sample(5_600, true, 0)).toBe(false);
    expect(d.sample(6_599, true, 0)).toBe(false);
    expect(d.sample(6_600, true, 0)).toBe(true);
    d.reset();
    expect(d.full).toBe(false);
  });
  it('an open relay is not a full vehicle; a vehicle that never draws is done after noDrawMs', () => {
    const d = createFullDetector(o);
    expect(d.sample(0, false, 0)).toBe(false);
    expect(d.sample(20_000, false, 0)).toBe(false);
    expect(d.sample(20_001, true, 0)).toBe(false);
    expect(d.sample(30_000, true, 0)).toBe(false);
    expect(d.sample(30_001, true, 0)).toBe(true);
  });
});
