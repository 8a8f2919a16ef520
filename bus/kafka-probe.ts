import net from 'node:net';
import tls from 'node:tls';

/**
 * Is every broker Kafka advertises reachable from here? The bootstrap connection can work while
 * the addresses Kafka hands out in its metadata (KAFKA_ADVERTISED_LISTENERS) do not — a broker
 * advertising `localhost` or a container name to another machine. kafkajs then retries for about a
 * minute before saying `ECONNREFUSED 127.0.0.1:…`; this probe asks the bootstrap server for its
 * broker list (one Metadata request: v4, which Kafka 1.0 through 4.x answer, else v1 for older
 * brokers and librdkafka's mock cluster) and opens a TCP
 * connection to each advertised address, so the cause is one line within seconds.
 */
export interface Broker { nodeId: number; host: string; port: number }
export interface ProbeOptions { ssl?: boolean | { ca: string[] }; timeoutMs?: number }
export type ProbeResult =
  | { ok: true; bootstrap: string; brokers: Broker[] }
  | { ok: false; stage: 'bootstrap'; bootstrap: string; reason: string }
  | { ok: false; stage: 'advertised'; bootstrap: string; brokers: Broker[]; unreachable: Array<{ address: string; reason: string }> };

const METADATA = 3;

/** A Metadata request (v1 or v4) for no topics: only the broker list. */
export function metadataRequest(correlationId: number, version: 1 | 4 = 4, clientId = 'evcharging-probe'): Buffer {
  const cid = Buffer.from(clientId, 'utf8');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + cid.length + 4 + (version >= 4 ? 1 : 0));
  let o = 0;
  o = body.writeInt16BE(METADATA, o);
  o = body.writeInt16BE(version, o);
  o = body.writeInt32BE(correlationId, o);
  o = body.writeInt16BE(cid.length, o);
  o += cid.copy(body, o);
  o = body.writeInt32BE(0, o); // topics: empty array = none
  if (version >= 4) body.writeInt8(0, o); // allow_auto_topic_creation
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  return Buffer.concat([size, body]);
}

/** The broker list of a Metadata v1/v4 response body (after the size prefix). Throws on a malformed one. */
export function parseMetadataBrokers(body: Buffer, version: 1 | 4 = 4): Broker[] {
  let o = version >= 4 ? 4 + 4 : 4; // correlation id, throttle_time_ms (v3+)
  const n = body.readInt32BE(o); o += 4;
  if (n < 0 || n > 10_000) throw new Error(`bad broker count ${n}`);
  const brokers: Broker[] = [];
  for (let i = 0; i < n; i++) {
    const nodeId = body.readInt32BE(o); o += 4;
    const hl = body.readInt16BE(o); o += 2;
    if (hl < 0 || o + hl > body.length) throw new Error('bad host length');
    const host = body.toString('utf8', o, o + hl); o += hl;
    const port = body.readInt32BE(o); o += 4;
    const rl = body.readInt16BE(o); o += 2;
    if (rl > 0) o += rl;
    brokers.push({ nodeId, host, port });
  }
  return brokers;
}

function connect(host: string, port: number, o: ProbeOptions): net.Socket {
  if (!o.ssl) return net.connect({ host, port });
  return tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...(typeof o.ssl === 'object' ? { ca: o.ssl.ca } : {}) });
}

const reasonOf = (err: unknown) => (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);

/** Asks one bootstrap server for the advertised brokers (v4; a broker that hangs up on it is asked v1). */
export async function fetchBrokers(host: string, port: number, o: ProbeOptions = {}): Promise<Broker[]> {
  try { return await fetchBrokersV(host, port, 4, o); } catch (e) {
    if ((e as Error).message !== 'connection closed') throw e;
    return fetchBrokersV(host, port, 1, o);
  }
}

function fetchBrokersV(host: string, port: number, version: 1 | 4, o: ProbeOptions): Promise<Broker[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(host, port, o);
    let buf = Buffer.alloc(0);
    const done = (err?: unknown, brokers?: Broker[]) => { clearTimeout(timer); sock.destroy(); if (err) reject(err); else resolve(brokers!); };
    const timer = setTimeout(() => done(new Error(`no answer within ${o.timeoutMs ?? 3000} ms`)), o.timeoutMs ?? 3000);
    sock.once(o.ssl ? 'secureConnect' : 'connect', () => sock.write(metadataRequest(1, version)));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 4) return;
      const size = buf.readInt32BE(0);
      if (size < 0 || size > 16 << 20) return done(new Error('not a Kafka answer'));
      if (buf.length < 4 + size) return;
      try { done(undefined, parseMetadataBrokers(buf.subarray(4, 4 + size), version)); } catch (e) { done(new Error(`not a Kafka answer (${reasonOf(e)})`)); }
    });
    sock.on('error', done);
    sock.on('close', () => done(new Error('connection closed')));
  });
}

/** Opens (and closes) a TCP connection: undefined when it worked, else the reason. */
export function tryConnect(host: string, port: number, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (reason?: string) => { clearTimeout(timer); sock.destroy(); resolve(reason); };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    sock.once('connect', () => done());
    sock.once('error', (e) => done(reasonOf(e)));
  });
}

const hostPort = (s: string) => {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
};

/** Tries the bootstrap servers in order; the first that answers gives the broker list to check. */
export async function probeAdvertised(bootstrap: string[], o: ProbeOptions = {}): Promise<ProbeResult> {
  let reason = 'no bootstrap server';
  for (const b of bootstrap) {
    const { host, port } = hostPort(b);
    let brokers: Broker[];
    try { brokers = await fetchBrokers(host, port, o); } catch (e) { reason = `${b}: ${reasonOf(e)}`; continue; }
    const results = await Promise.all(brokers.map(async (br) => ({ address: `${br.host}:${br.port}`, reason: await tryConnect(br.host, br.port, o.timeoutMs) })));
    const unreachable = results.filter((r): r is { address: string; reason: string } => r.reason !== undefined);
    return unreachable.length ? { ok: false, stage: 'advertised', bootstrap: b, brokers, unreachable } : { ok: true, bootstrap: b, brokers };
  }
  return { ok: false, stage: 'bootstrap', bootstrap: bootstrap.join(','), reason };
}

/** The one line an operator needs. */
export function advertisedProblem(r: Extract<ProbeResult, { stage: 'advertised' }>): string {
  const list = r.unreachable.map((u) => `${u.address} (${u.reason})`).join(', ');
  return `Kafka at ${r.bootstrap} advertises ${list}, which this machine cannot reach: set KAFKA_ADVERTISED_HOST on the Kafka machine to an address clients reach (KAFKA_ADVERTISED_LISTENERS)`;
}
