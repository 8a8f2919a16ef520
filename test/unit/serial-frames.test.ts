import { describe, expect, it } from 'vitest';
import { crc16Modbus, encodeLcusCommand } from '../../firmware/hal/serial-frames.js';

describe('serial frame codecs', () => {
  it('computes the Modbus CRC16 known vector (01 03 00 00 00 01 → 84 0A on the wire)', () => {
    const crc = crc16Modbus(Uint8Array.from([0x01, 0x03, 0x00, 0x00, 0x00, 0x01]));
    expect([crc & 0xff, crc >>> 8]).toEqual([0x84, 0x0a]);
  });
  it('encodes LCUS relay commands with their checksum', () => {
    expect([...encodeLcusCommand(1, true)]).toEqual([0xa0, 0x01, 0x01, 0xa2]);
    expect([...encodeLcusCommand(1, false)]).toEqual([0xa0, 0x01, 0x00, 0xa1]);
  });
});
