// Pure frame codecs for the serial HAL: Modbus RTU (CRC16, requests, responses, a resynchronising
// scanner) and LCUS relay board frames. No I/O here: the HAL and the board emulator share these.

/** Modbus RTU CRC16 (poly 0xA001 reflected, init 0xFFFF); transmitted low byte first. */
export function crc16Modbus(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** Appends the CRC16 (low byte first) to a frame body. */
export function withCrc(body: Uint8Array): Buffer {
  const crc = crc16Modbus(body);
  return Buffer.concat([Buffer.from(body), Buffer.from([crc & 0xff, crc >>> 8])]);
}

/** True when the last two bytes are the CRC16 of the rest. */
export function crcOk(frame: Uint8Array): boolean {
  if (frame.length < 4) return false;
  const crc = crc16Modbus(frame.subarray(0, frame.length - 2));
  return frame[frame.length - 2] === (crc & 0xff) && frame[frame.length - 1] === crc >>> 8;
}

// ---------------------------------------------------------------------------------------------
// LCUS-type USB relay boards (CH340 USB-serial). Commands get no reply; boards with the status
// query answer 0xFF with one text line per channel, e.g. "CH1: ON\r\n".

export const LCUS_HEAD = 0xa0;
export const LCUS_STATUS_QUERY = Buffer.from([0xff]);

/** LCUS-type USB relay board command: A0 <channel> <state> <sum of the first three, mod 256>. */
export function encodeLcusCommand(channel: number, on: boolean): Buffer {
  const state = on ? 1 : 0;
  return Buffer.from([LCUS_HEAD, channel & 0xff, state, (LCUS_HEAD + channel + state) & 0xff]);
}

export type LcusFrame = { kind: 'command'; channel: number; on: boolean } | { kind: 'query' };

/**
 * Board side: takes the next frame out of a byte stream. Bytes that cannot start a frame, and
 * A0 frames whose checksum or state byte is wrong, are skipped one byte at a time (resync).
 */
export function scanLcus(buf: Uint8Array): { frame?: LcusFrame; consumed: number; skipped: number } {
  let i = 0;
  let skipped = 0;
  while (i < buf.length) {
    if (buf[i] === 0xff) return { frame: { kind: 'query' }, consumed: i + 1, skipped };
    if (buf[i] === LCUS_HEAD) {
      if (buf.length - i < 4) break;
      const ch = buf[i + 1]!, st = buf[i + 2]!, sum = buf[i + 3]!;
      if ((st === 0 || st === 1) && ((LCUS_HEAD + ch + st) & 0xff) === sum) {
        return { frame: { kind: 'command', channel: ch, on: st === 1 }, consumed: i + 4, skipped };
      }
    }
    i++;
    skipped++;
  }
  return { consumed: i, skipped };
}

/** Board side: the status reply for channels 1..n. */
export function encodeLcusStatus(states: boolean[]): Buffer {
  return Buffer.from(states.map((on, i) => `CH${i + 1}: ${on ? 'ON' : 'OFF'}\r\n`).join(''), 'latin1');
}

/**
 * Host side: the state of `channel` in the status text received so far. Needs the line of that
 * channel complete (ending in \n); anything else (noise, other channels) is ignored.
 */
export function parseLcusStatus(text: string, channel: number): boolean | undefined {
  const re = /CH(\d+):\s*(ON|OFF)\r?\n/g;
  let found: boolean | undefined;
  for (let m = re.exec(text); m; m = re.exec(text)) if (Number(m[1]) === channel) found = m[2] === 'ON';
  return found;
}

// ---------------------------------------------------------------------------------------------
// Modbus RTU

export const FN_READ_DISCRETE_INPUTS = 0x02;
export const FN_READ_INPUT_REGISTERS = 0x04;

/** A read request: unit, function, start address, quantity (registers or inputs), CRC. */
export function encodeReadRequest(unit: number, fn: number, address: number, quantity: number): Buffer {
  return withCrc(Uint8Array.from([unit, fn, address >>> 8, address & 0xff, quantity >>> 8, quantity & 0xff]));
}

/** Bytes of data a read response carries for this request. */
export function responseDataBytes(fn: number, quantity: number): number {
  return fn === FN_READ_DISCRETE_INPUTS ? Math.ceil(quantity / 8) : quantity * 2;
}

export function encodeReadResponse(unit: number, fn: number, data: Uint8Array): Buffer {
  return withCrc(Uint8Array.from([unit, fn, data.length, ...data]));
}

export function encodeException(unit: number, fn: number, code: number): Buffer {
  return withCrc(Uint8Array.from([unit, fn | 0x80, code]));
}

/** Where a frame might start in a stream: its full length, 0 = not a start here, -1 = need more bytes to tell. */
export type FrameLength = (buf: Uint8Array, at: number) => number;

export interface RtuScan {
  /** A frame with a correct CRC, when one was found. */
  frame?: Buffer;
  /** Bytes to drop from the front of the buffer (skipped noise + the frame). */
  consumed: number;
  /** Bytes skipped while looking for a frame start. */
  noise: number;
  /** Candidate frames whose CRC was wrong (each also counted as skipped bytes). */
  crcErrors: number;
}

/**
 * Resynchronising scanner: finds the next frame with a correct CRC in `buf`. A start that does
 * not fit, or a full-length candidate with a bad CRC, is skipped one byte at a time, so a frame
 * behind noise bytes or behind a corrupt frame is still found. Stops (consuming what it skipped)
 * when a candidate needs more bytes than have arrived.
 */
export function scanRtu(buf: Uint8Array, lengthAt: FrameLength): RtuScan {
  let i = 0;
  let crcErrors = 0;
  while (i < buf.length) {
    const len = lengthAt(buf, i);
    if (len < 0) break;
    if (len > 0) {
      if (buf.length - i < len) break;
      const cand = buf.subarray(i, i + len);
      if (crcOk(cand)) return { frame: Buffer.from(cand), consumed: i + len, noise: i, crcErrors };
      crcErrors++;
    }
    i++;
  }
  return { consumed: i, noise: i, crcErrors };
}

/** Host side: the length of the response (or exception) to a read request, at `at`. */
export function responseLength(unit: number, fn: number, quantity: number): FrameLength {
  const dataBytes = responseDataBytes(fn, quantity);
  return (buf, at) => {
    if (buf[at] !== unit) return 0;
    if (buf.length - at < 2) return -1;
    const f = buf[at + 1]!;
    if (f === (fn | 0x80)) return 5;
    if (f !== fn) return 0;
    if (buf.length - at < 3) return -1;
    return buf[at + 2] === dataBytes ? 5 + dataBytes : 0;
  };
}

/** Device side: the length of a read request (functions 0x01-0x04 are 8 bytes) for any of `units`. */
export function requestLength(units: readonly number[]): FrameLength {
  return (buf, at) => {
    if (!units.includes(buf[at]!)) return 0;
    if (buf.length - at < 2) return -1;
    const f = buf[at + 1]!;
    return f >= 0x01 && f <= 0x04 ? 8 : 0;
  };
}

export interface ReadRequest { unit: number; fn: number; address: number; quantity: number }

export function decodeReadRequest(frame: Uint8Array): ReadRequest {
  return { unit: frame[0]!, fn: frame[1]!, address: (frame[2]! << 8) | frame[3]!, quantity: (frame[4]! << 8) | frame[5]! };
}

/** A decoded response: the data bytes, or the exception code. */
export type ReadResponse = { ok: true; data: Buffer } | { ok: false; exception: number };

export function decodeReadResponse(frame: Uint8Array): ReadResponse {
  if (frame[1]! & 0x80) return { ok: false, exception: frame[2]! };
  return { ok: true, data: Buffer.from(frame.subarray(3, 3 + frame[2]!)) };
}

/** Eastron meters store values as IEEE-754 single floats, high word first (big-endian). */
export function floatToRegisters(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatBE(v);
  return b;
}
export function registersToFloat(data: Uint8Array, offset = 0): number {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).readFloatBE(offset);
}

/** Eastron SDM input registers the HAL reads (addresses in the 3xxxx space, 0-based). */
export const SDM_REGISTERS = {
  sdm120: { power_w: 0x000c, energy_kwh: 0x0156 },
  /** SDM630: total system power (all phases) at 0x0034. */
  sdm630: { power_w: 0x0034, energy_kwh: 0x0156 },
} as const;
