/**
 * Gateway throughput and latency, MQTT → Kafka. N simulated CPs (MQTT clients in this process,
 * each with its own credentials) publish one message a second each (every 10th a status at
 * QoS 1, the rest telemetry at QoS 0, shapes from protocol/) through `evcharging gateway` (a
 * separate process, credentials on) into the librdkafka mock cluster (kcat); a kafkajs consumer
 * here timestamps each message as it comes off Kafka. The same load then runs through the
 * BASELINE, a bare aedes broker producing each message with kafkajs (no auth, validation or
 * buffer; bench/gateway-baseline-broker.ts), and the ratios are printed. Figures only.
 *   npm run bench:gateway -- [cps=1000] [seconds=30] [msgs per CP per second=1] [--gateway-only]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { Kafka, logLevel } from 'kafkajs';
import { cpuSeconds } from './proc-stats.js';
import { startKafkaMock, type KafkaMock } from '../test/helpers/kafka-mock.js';
/** Every simulated CP connects from one address: lift the gateway's pending and per-address limits (a real site keeps them, docs/security-gateway.md). */
const ONE_ADDRESS_LIMITS = ['--max-pending', '100000', '--max-pending-per-address', '100000', '--connect-rate-per-address', '100000'];

const cps = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 30);
const rate = Number(process.argv[4] ?? 1);
const warmupS = Math.min(5, Math.max(1, Math.round(seconds / 3)));
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLI = path.join(ROOT, 'bin/evcharging.js');

const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
process.on('SIGINT', () => process.exit(130));

function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); }); });
}
async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try { if (await probe()) return; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);
const ids = Array.from({ length: cps }, (_, i) => `CP-B${String(i + 1).padStart(5, '0')}`);
const secretOf = (id: string) => `bench-${id}`;

/** A credentials file for every simulated CP, hashed in parallel off the event loop. */
async function writeCredentials(file: string): Promise<void> {
  const clients = await Promise.all(ids.map((id) => new Promise<object>((resolve, reject) => {
    const salt = crypto.randomBytes(16).toString('hex');
    crypto.scrypt(secretOf(id), salt, 32, (err, hash) => (err ? reject(err) : resolve({ id, role: 'cp', salt, hash: hash.toString('hex') })));
  })));
  fs.writeFileSync(file, JSON.stringify({ clients }));
}

interface Result {
  name: string; published: number; consumed: number; windowRate: number; offered: number;
  p50: number; p99: number; brokerCpu: number; kafkaCpu: number;
}

async function scenario(name: 'gateway' | 'baseline', credentialsFile: string): Promise<Result> {
  const mock: KafkaMock = await startKafkaMock(1);
  const bootstrap = mock.bootstrap.join(',');
  const mqttPort = await freePort();
  let broker: ChildProcess;
  if (name === 'gateway') {
    const httpPort = await freePort();
    broker = spawn(process.execPath, [CLI, 'gateway', '--credentials', credentialsFile, '--host', '127.0.0.1', '--mqtt-port', String(mqttPort),
      '--http-port', String(httpPort), '--kafka-bootstrap', bootstrap, ...ONE_ADDRESS_LIMITS], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
    children.add(broker);
    await until('gateway connected to Kafka', async () => ((await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json()) as { kafka_up?: boolean }).kafka_up === true, 60_000);
  } else {
    broker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/gateway-baseline-broker.ts'), String(mqttPort), bootstrap],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(broker);
    let out = '';
    broker.stdout!.on('data', (d) => { out += d.toString(); });
    await until('baseline broker ready', () => out.includes('ready'), 60_000);
  }

  // The consumer: when each message comes off Kafka, against the ts its publisher put in it.
  const arrivals: Array<{ at: number; pubTs: number }> = [];
  const kafka = new Kafka({ brokers: mock.bootstrap, clientId: 'bench-reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-${name}-${process.pid}`, maxWaitTimeInMs: 20, allowAutoTopicCreation: true });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => { joined = true; });
  await consumer.connect();
  await consumer.subscribe({ topics: ['cp.status', 'cp.telemetry'], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const at = Date.now();
      try { arrivals.push({ at, pubTs: (JSON.parse(message.value!.toString()) as { ts: number }).ts }); } catch { /* not ours */ }
    },
  });
  await until('consumer joined', () => joined, 60_000);

  // N clients, connected in waves.
  const clients: MqttClient[] = [];
  for (let i = 0; i < ids.length; i += 50) {
    clients.push(...await Promise.all(ids.slice(i, i + 50).map((id) => mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`,
      { clientId: id, username: id, password: secretOf(id), reconnectPeriod: 1000, connectTimeout: 60_000, protocolVersion: 4 }))));
  }

  // One scheduler: each CP publishes every 1/rate s, phases spread evenly over the period.
  const periodMs = 1000 / rate;
  const t0 = Date.now() + 200;
  const windowStart = t0 + warmupS * 1000;
  const windowEnd = windowStart + seconds * 1000;
  const next = ids.map((_, i) => t0 + (i / ids.length) * periodMs);
  const count = ids.map(() => 0);
  let published = 0; let publishedInWindow = 0;
  const cpu0 = { at: 0, broker: 0, kafka: 0 };
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      if (!cpu0.at && now >= windowStart) Object.assign(cpu0, { at: now, broker: cpuSeconds(broker.pid!), kafka: cpuSeconds(mock.process.pid!) });
      if (now >= windowEnd) { clearInterval(timer); resolve(); return; }
      for (let i = 0; i < ids.length; i++) {
        while (next[i]! <= now) {
          const id = ids[i]!; const seq = ++count[i]!;
          const ts = Date.now();
          if (seq % 10 === 1) {
            clients[i]!.publish(`cp/${id}/status`, JSON.stringify({ v: 1, type: 'status', cp_id: id, state: 'SUPPLYING', seq, ts }), { qos: 1 });
          } else {
            clients[i]!.publish(`cp/${id}/telemetry`, JSON.stringify({ v: 1, type: 'telemetry', cp_id: id, session_id: `S-${id}`, kw: 22, kwh: seq / 160, eur: seq / 500, soc: 0.5, seq, ts }), { qos: 0 });
          }
          published++;
          if (ts >= windowStart) publishedInWindow++;
          next[i]! += periodMs;
        }
      }
    }, 5);
  });
  const cpuDt = (Date.now() - cpu0.at) / 1000;
  const brokerCpu = (cpuSeconds(broker.pid!) - cpu0.broker) / cpuDt;
  const kafkaCpu = (cpuSeconds(mock.process.pid!) - cpu0.kafka) / cpuDt;

  // Drain: everything published should come off Kafka; give up after 15 s without progress or 2 minutes in all.
  let last = -1; let still = Date.now();
  await until('drained', () => {
    if (arrivals.length >= published) return true;
    if (arrivals.length !== last) { last = arrivals.length; still = Date.now(); }
    return Date.now() - still > 15_000;
  }, 120_000).catch(() => undefined);

  const inWindow = arrivals.filter((a) => a.at >= windowStart && a.at < windowEnd).length;
  const lat = arrivals.filter((a) => a.pubTs >= windowStart && a.pubTs < windowEnd).map((a) => a.at - a.pubTs).sort((a, b) => a - b);
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  await consumer.disconnect().catch(() => undefined);
  const gone = new Promise((r) => broker.once('exit', r));
  broker.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
  broker.kill('SIGKILL'); children.delete(broker);
  await mock.stop();
  return {
    name, published, consumed: arrivals.length, windowRate: inWindow / seconds, offered: publishedInWindow / seconds,
    p50: pct(lat, 50), p99: pct(lat, 99), brokerCpu, kafkaCpu,
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-gw-'));
try {
  const creds = path.join(dir, 'credentials.json');
  await writeCredentials(creds);
  console.log(`gateway throughput: ${cps} CPs x ${rate} msg/s for ${seconds} s (after ${warmupS} s warm-up), ${os.cpus().length} cores, Kafka = librdkafka mock cluster (kcat)`);
  const results: Result[] = [];
  for (const name of process.argv.includes('--gateway-only') ? ['gateway'] as const : ['gateway', 'baseline'] as const) {
    const r = await scenario(name, creds);
    results.push(r);
    console.log(`${name.padEnd(8)}: ${r.windowRate.toFixed(1)} msgs/s MQTT→Kafka (offered ${r.offered.toFixed(1)}), delivered ${r.consumed}/${r.published}, `
      + `latency p50 ${r.p50} ms p99 ${r.p99} ms, broker CPU ${(r.brokerCpu * 100).toFixed(0)} % of a core, kafka mock CPU ${(r.kafkaCpu * 100).toFixed(0)} %`);
  }
  const [g, b] = results as [Result, Result | undefined];
  if (b) console.log(`ratio gateway/baseline: throughput ${(g.windowRate / b.windowRate).toFixed(2)}, latency p50 ${(g.p50 / b.p50).toFixed(2)} p99 ${(g.p99 / b.p99).toFixed(2)}, broker CPU ${(g.brokerCpu / b.brokerCpu).toFixed(2)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
