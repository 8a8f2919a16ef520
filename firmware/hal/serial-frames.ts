// Pure frame codecs for the serial HAL: Modbus RTU CRC16 and LCUS relay command frames.

/** Modbus RTU CRC16 (poly 0xA001 reflected, init 0xFFFF); transmitted low byte first. */
export function crc16Modbus(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/** LCUS-type USB relay board command: A0 <channel> <state> <sum of the first three, mod 256>. */
export function encodeLcusCommand(channel: number, on: boolean): Buffer {
  const state = on ? 1 : 0;
  return Buffer.from([0xa0, channel & 0xff, state, (0xa0 + channel + state) & 0xff]);
}
