/**
 * MQTT load generator: many CP clients publishing valid telemetry (QoS 0) at a total rate,
 * paced in 10 ms slices. Run as a process so the load does not share an event loop with the
 * test or the benchmark that measures:
 *
 *   tsx bench/mqtt-load.ts --url mqtt://127.0.0.1:1883 --clients 500 --rate 10000 --seconds 60 [--prefix L1-] [--qos 0]
 *
 * Prints one JSON line at the end: {"offered":…, "sent":…, "seconds":…, "rate":…, "connected":…, "errors":…}.
 * With --rate 0 it publishes as fast as the sockets take (an overload).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { PROTOCOL_VERSION } from '../protocol/index.js';

export interface LoadResult { offered: number; sent: number; seconds: number; rate: number; connected: number; errors: number }

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const url = arg('url', 'mqtt://127.0.0.1:1883');
  const clients = Number(arg('clients', '200'));
  const rate = Number(arg('rate', '10000'));
  const seconds = Number(arg('seconds', '10'));
  const prefix = arg('prefix', 'L-');
  const qos = Number(arg('qos', '0')) as 0 | 1;
  let errors = 0;
  const cs: Array<{ id: string; c: MqttClient; seq: number }> = [];
  for (let i = 0; i < clients; i++) {
    const id = `${prefix}${String(i).padStart(5, '0')}`;
    const c = mqtt.connect(url, { clientId: id, username: id, clean: true, reconnectPeriod: 1000, protocolVersion: 4, keepalive: 60 });
    c.on('error', () => { errors++; });
    cs.push({ id, c, seq: 0 });
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20)); // a gentle ramp
  }
  const deadline = Date.now() + 30_000;
  while (cs.some((x) => !x.c.connected) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const connected = cs.filter((x) => x.c.connected).length;

  // One payload per client, built once: the generator should spend its time sending, not encoding.
  const payloads = new Map(cs.map((x) => [x.id, Buffer.from(JSON.stringify({
    v: PROTOCOL_VERSION, type: 'telemetry', cp_id: x.id, session_id: `S-${x.id}`, kw: 22, kwh: 1, eur: 0.3, seq: 1, ts: Date.now(),
  }))]));
  const payload = (x: { id: string }) => payloads.get(x.id)!;
  let offered = 0; let sent = 0; let next = 0; let attempts = 0;
  const start = Date.now();
  const end = start + seconds * 1000;
  const publishOne = () => {
    attempts++;
    const x = cs[next++ % cs.length]!;
    if (!x.c.connected) return;
    offered++;
    x.c.publish(`cp/${x.id}/telemetry`, payload(x), { qos }, (err) => { if (err) errors++; else sent++; });
  };
  // Each slice's writes are corked per socket and flushed together (fewer syscalls per message).
  const cork = () => { for (const x of cs) (x.c as unknown as { stream?: { cork?(): void } }).stream?.cork?.(); };
  const uncork = () => { for (const x of cs) (x.c as unknown as { stream?: { uncork?(): void } }).stream?.uncork?.(); };
  await new Promise<void>((resolve) => {
    const slice = () => {
      const now = Date.now();
      cork();
      try { burst(now); } finally { uncork(); }
      if (now >= end) return resolve();
      if (rate > 0) setTimeout(slice, 10); else setImmediate(slice);
    };
    const burst = (now: number) => {
      if (now >= end) return;
      if (rate > 0) {
        // Catch up at most two slices' worth: a generator that cannot keep up offers less (the printed
        // rate says so) instead of piling an ever larger burst into memory.
        const due = Math.floor(((now - start) / 1000) * rate);
        const cap = attempts + Math.max(1, Math.ceil(rate / 50));
        while (attempts < Math.min(due, cap)) publishOne();
      } else {
        // As fast as it goes: publish until the slice's 10 ms are spent, then let the sockets drain.
        while (Date.now() - now < 10) for (let k = 0; k < 100; k++) publishOne();
      }
    };
    slice();
  });
  const took = (Date.now() - start) / 1000;
  // Flush what the sockets still hold, but never wait long for a broker that does not read.
  await Promise.race([Promise.all(cs.map((x) => x.c.endAsync(false).catch(() => undefined))), new Promise((r) => setTimeout(r, 5_000))]);
  const result: LoadResult = { offered, sent, seconds: took, rate: Math.round(offered / took), connected, errors };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

if (process.argv[1] && /mqtt-load\.[tj]s$/.test(process.argv[1])) void main();
