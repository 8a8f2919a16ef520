import { describe, expect, it } from 'vitest';
import {
  crc16Modbus, crcOk, decodeReadRequest, decodeReadResponse, encodeException, encodeLcusCommand, encodeLcusStatus, encodeReadRequest,
  encodeReadResponse, floatToRegisters, parseLcusStatus, registersToFloat, requestLength, responseLength, scanLcus, scanRtu, withCrc,
} from '../../firmware/hal/serial-frames.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const bytes = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('Modbus CRC16', () => {
  it('computes the Modbus CRC16 known vector (01 03 00 00 00 01 → 84 0A on the wire)', () => {
    const crc = crc16Modbus(Uint8Array.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x01]));
    expect([crc & 0xff, crc >>> 8]).toEqual([0x84, 0x0a]);
  });
  it('has the CRC-16/MODBUS check value 0x4B37 for "123456789"', () => {
    expect(crc16Modbus(Buffer.from('123456789'))).toBe(0x4b37);
  });
  it('encodes the SDM reads seen in Eastron documentation byte by byte', () => {
    expect(bytes(encodeReadRequest(1, 0x04, 0x0000, 2))).toBe('01040000000271cb'); // voltage
    expect(bytes(encodeReadRequest(1, 0x04, 0x0156, 2))).toBe('0104015600029027'); // total active energy
  });
  it('checks and rejects CRCs', () => {
    const f = withCrc(hex('01 04 04 45 e7 40 00'));
    expect(crcOk(f)).toBe(true);
    f.writeUInt8(f.readUInt8(f.length - 1) ^ 1, f.length - 1);
    expect(crcOk(f)).toBe(false);
    expect(crcOk(hex('0104'))).toBe(false);
  });
});

describe('Modbus frames', () => {
  it('round-trips requests, responses, exceptions and IEEE-754 register pairs', () => {
    expect(decodeReadRequest(encodeReadRequest(7, 4, 0x0156, 2))).toEqual({ unit: 7, fn: 4, address: 0x0156, quantity: 2 });
    expect(bytes(floatToRegisters(7400))).toBe('45e74000');
    expect(registersToFloat(hex('45e74000'))).toBe(7400);
    const resp = encodeReadResponse(1, 4, floatToRegisters(12.5));
    expect(bytes(resp.subarray(0, 3))).toBe('010404');
    expect(decodeReadResponse(resp)).toEqual({ ok: true, data: floatToRegisters(12.5) });
    expect(decodeReadResponse(encodeException(1, 4, 2))).toEqual({ ok: false, exception: 2 });
    expect(bytes(encodeException(1, 4, 2).subarray(0, 3))).toBe('018402');
  });
});

describe('resynchronising RTU scanner', () => {
  const want = responseLength(1, 4, 2);
  const good = encodeReadResponse(1, 4, floatToRegisters(3.25));

  it('takes a clean frame whole', () => {
    expect(scanRtu(good, want)).toEqual({ frame: good, consumed: 9, noise: 0, crcErrors: 0 });
  });
  it('skips noise bytes in front of a frame', () => {
    const r = scanRtu(Buffer.concat([hex('ff 00 13 37 01 99'), good]), want);
    expect(r.frame).toEqual(good);
    expect(r.noise).toBe(6);
    expect(r.consumed).toBe(15);
  });
  it('rejects a frame with a bad CRC and finds the good one behind it', () => {
    const bad = Buffer.from(good);
    bad.writeUInt8(bad.readUInt8(8) ^ 0x5a, 8);
    const r = scanRtu(Buffer.concat([bad, good]), want);
    expect(r.frame).toEqual(good);
    expect(r.crcErrors).toBe(1);
    expect(r.consumed).toBe(18);
  });
  it('waits for the rest of a partial frame without consuming it', () => {
    expect(scanRtu(good.subarray(0, 1), want)).toEqual({ consumed: 0, noise: 0, crcErrors: 0 });
    expect(scanRtu(good.subarray(0, 2), want)).toEqual({ consumed: 0, noise: 0, crcErrors: 0 });
    expect(scanRtu(good.subarray(0, 6), want)).toEqual({ consumed: 0, noise: 0, crcErrors: 0 });
    // Noise in front is consumed at once, the partial frame kept.
    const r = scanRtu(Buffer.concat([hex('aa bb'), good.subarray(0, 5)]), want);
    expect(r).toEqual({ consumed: 2, noise: 2, crcErrors: 0 });
  });
  it('does not take noise that looks like a frame start (unit, function, wrong byte count)', () => {
    const r = scanRtu(Buffer.concat([hex('01 04 09 01 04'), good]), want);
    expect(r.frame).toEqual(good);
    expect(r.noise).toBe(5);
  });
  it('a false start with the right header fails its CRC and the real frame still comes through', () => {
    const r = scanRtu(Buffer.concat([hex('01 04 04 00 00 00 00 00 00'), good]), want);
    expect(r.frame).toEqual(good);
    expect(r.crcErrors).toBeGreaterThanOrEqual(1);
  });
  it('takes an exception reply for the request', () => {
    const ex = encodeException(1, 4, 2);
    expect(scanRtu(Buffer.concat([hex('00'), ex]), want).frame).toEqual(ex);
  });
  it('ignores replies from another unit or function', () => {
    const other = encodeReadResponse(2, 4, floatToRegisters(1));
    const r = scanRtu(other, want);
    expect(r.frame).toBeUndefined();
    expect(r.consumed).toBe(other.length);
  });
  it('finds requests for the device side, 8 bytes each, for its units only', () => {
    const req = encodeReadRequest(2, 2, 0, 1);
    const dev = requestLength([1, 2]);
    expect(scanRtu(Buffer.concat([encodeReadRequest(9, 4, 0, 2), hex('77'), req]), dev).frame).toEqual(req);
  });
});

describe('LCUS relay frames', () => {
  it('encodes relay commands with their checksum', () => {
    expect([...encodeLcusCommand(1, true)]).toEqual([0xa0, 0x01, 0x01, 0xa2]);
    expect([...encodeLcusCommand(1, false)]).toEqual([0xa0, 0x01, 0x00, 0xa1]);
    expect([...encodeLcusCommand(4, true)]).toEqual([0xa0, 0x04, 0x01, 0xa5]);
  });
  it('board side: scans commands and status queries out of a noisy stream', () => {
    const stream = Buffer.concat([hex('13 a0 01 01 a3'), encodeLcusCommand(2, true), hex('ff')]);
    let buf = stream;
    const frames = [];
    let skipped = 0;
    for (;;) {
      const s = scanLcus(buf);
      skipped += s.skipped;
      buf = buf.subarray(s.consumed);
      if (!s.frame) break;
      frames.push(s.frame);
    }
    // 13 is noise; a0 01 01 a3 has a wrong sum: skipped byte by byte until the good frame.
    expect(frames).toEqual([{ kind: 'command', channel: 2, on: true }, { kind: 'query' }]);
    expect(skipped).toBe(5);
    expect(buf.length).toBe(0);
  });
  it('board side: keeps a partial command until it is complete', () => {
    expect(scanLcus(hex('a0 01'))).toEqual({ consumed: 0, skipped: 0 });
    expect(scanLcus(hex('a0 01 00 a1')).frame).toEqual({ kind: 'command', channel: 1, on: false });
  });
  it('status replies: encodes per channel and parses only complete lines of the wanted channel', () => {
    const st = encodeLcusStatus([false, true]);
    expect(st.toString('latin1')).toBe('CH1: OFF\r\nCH2: ON\r\n');
    expect(parseLcusStatus(st.toString('latin1'), 1)).toBe(false);
    expect(parseLcusStatus(st.toString('latin1'), 2)).toBe(true);
    expect(parseLcusStatus('\u0013\u00ffCH1: O', 1)).toBeUndefined();
    expect(parseLcusStatus('#$%CH1:ON\n', 1)).toBe(true);
    expect(parseLcusStatus('CH2: ON\r\n', 1)).toBeUndefined();
  });
});
