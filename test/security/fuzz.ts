/**
 * A seeded fuzzer: the same seed gives the same inputs (FUZZ_SEED overrides it; a failure
 * prints the seed), so any failure can be replayed. No dependency: a small PRNG and generators
 * that mutate valid messages, which find more than pure noise.
 */
export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20_261_203);

export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  /** mulberry32 */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  chance(p: number): boolean { return this.next() < p; }
  bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = this.int(256); return b; }
  str(max: number): string { const n = this.int(max + 1); let s = ''; for (let i = 0; i < n; i++) s += String.fromCharCode(this.chance(0.9) ? 32 + this.int(95) : this.int(0x3000)); return s; }
}

/** Values that break naive code: non-finite (as JSON can say them: huge literals), negative, absurd, wrong types. */
const NASTY = ['1e303', '1e400', '-1e400', '-0', '-1', '1.5', '9007199254740993', '1e-320', 'null', 'true', '"1"', '""', '[]', '{}', '[[[[[[[[[[]]]]]]]]]]', '"NaN"', '"Infinity"', `"${'x'.repeat(300)}"`, '{"__proto__":{"polluted":1}}'];

/** A mutation of a valid JSON object: a field dropped, retyped, set to a nasty value, or an extra one; or the text garbled. */
export function mutateJson(rng: Rng, valid: Record<string, unknown>): string {
  const obj: Record<string, unknown> = { ...valid };
  const keys = Object.keys(obj);
  const text = () => {
    let t = JSON.stringify(obj);
    // Substitute raw nasty literals for some values (JSON.stringify cannot write 1e400 or -0).
    for (const k of keys) if (rng.chance(0.15) && k in obj) t = t.replace(new RegExp(`"${k}":(("[^"]*")|[^,}]*)`), `"${k}":${rng.pick(NASTY)}`);
    return t;
  };
  switch (rng.int(8)) {
    case 0: return JSON.stringify(obj); // valid as is
    case 1: delete obj[rng.pick(keys)]; return text();
    case 2: obj[rng.pick(keys)] = rng.pick([null, 0, -1, 1e303, 'x', [], {}, true, rng.str(40)]); return text();
    case 3: obj[rng.str(8) || 'extra'] = rng.str(20); return text();
    case 4: { const t = JSON.stringify(obj); const i = rng.int(t.length); return t.slice(0, i) + rng.str(3) + t.slice(i + 1); }
    case 5: return JSON.stringify(obj).slice(0, rng.int(60));
    case 6: return text();
    default: return rng.chance(0.5) ? rng.bytes(rng.int(64)).toString('latin1') : JSON.stringify([obj]);
  }
}

/** MQTT remaining-length varint. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; out.push(b); } while (n > 0 && out.length < 4);
  return Buffer.from(out);
}
const utf8 = (s: string) => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]); };

/** A CONNECT for MQTT 3.1.1 (the guess an attacker makes at credentials is in `user`/`pass`). */
export function connectPacket(clientId: string, user?: string, pass?: string, version = 4): Buffer {
  const flags = 0x02 | (user !== undefined ? 0x80 : 0) | (pass !== undefined ? 0x40 : 0);
  const body = Buffer.concat([utf8('MQTT'), Buffer.from([version, flags, 0, 30]), utf8(clientId), user !== undefined ? utf8(user) : Buffer.alloc(0), pass !== undefined ? utf8(pass) : Buffer.alloc(0)]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
}

export function publishPacket(topic: string, payload: Buffer, qos = 0, retain = false): Buffer {
  const body = Buffer.concat([utf8(topic), qos ? Buffer.from([0, 1]) : Buffer.alloc(0), payload]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1) | (retain ? 1 : 0)]), varint(body.length), body]);
}

/** One raw MQTT input: noise, a garbled CONNECT, or a CONNECT (bad credentials) followed by garbled packets. */
export function mqttInput(rng: Rng): Buffer {
  const topics = ['cp/CP-001/status', 'bus/#', '#', '$SYS/#', 'bus/central.commands/CP-001', 'cp/+/cmd', rng.str(20), ''];
  const connect = connectPacket(rng.chance(0.5) ? rng.pick(['CP-001', 'central', 'x', '']) : rng.str(30), rng.chance(0.7) ? rng.pick(['CP-001', 'central', 'driver-a', rng.str(10)]) : undefined, rng.chance(0.7) ? rng.str(16) : undefined, rng.pick([3, 4, 4, 4, 5, 0, 255]));
  const flip = (b: Buffer) => { const c = Buffer.from(b); for (let i = rng.int(4); i >= 0; i--) c[rng.int(c.length)] = rng.int(256); return c; };
  switch (rng.int(7)) {
    case 0: return rng.bytes(1 + rng.int(200));
    case 1: return flip(connect);
    case 2: return connect.subarray(0, rng.int(connect.length));
    case 3: return Buffer.concat([Buffer.from([rng.pick([0x10, 0x30, 0x82, 0xc0, 0xe0, 0xf0])]), Buffer.from([0xff, 0xff, 0xff, rng.pick([0x7f, 0xff])]), rng.bytes(rng.int(64))]);
    case 4: return Buffer.concat([connect, publishPacket(rng.pick(topics), rng.bytes(rng.int(100)), rng.int(3), rng.chance(0.3))]);
    case 5: return Buffer.concat([connect, flip(publishPacket(rng.pick(topics), rng.bytes(rng.int(50))))]);
    default: return Buffer.concat([connect, Buffer.from([0x82, 5, 0, 1, 0, 1, 0x23]), rng.bytes(rng.int(20))]); // SUBSCRIBE '#', truncated
  }
}

/** One health-port line: noise, near-miss verbs, over-long lines, valid PING/STATUS. */
export function healthLine(rng: Rng): string {
  const verbs = ['PING', 'ping', 'STATUS', 'FAULT', 'REPAIR', 'FAUL', 'PINGG', 'status', 'STAT US', 'HELP', ''];
  switch (rng.int(6)) {
    case 0: return rng.bytes(rng.int(80)).toString('latin1').replace(/\n/g, '');
    case 1: return `${rng.pick(verbs)} ${rng.str(12)}`.replace(/\n/g, '');
    case 2: return `${rng.pick(verbs)}${' '.repeat(rng.int(4))}${rng.pick(['', 'ground_fault', 'GROUND_FAULT', 'ground', 'x y', '1e303', '../../etc'])}`;
    case 3: return 'A'.repeat(200 + rng.int(400));
    case 4: return `${rng.pick(['PING', 'STATUS'])}${rng.pick(['', '\r', ' ', '\t'])}`;
    default: return rng.str(30).replace(/\n/g, '');
  }
}
