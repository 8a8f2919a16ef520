/**
 * The embedded-bus gateway under offered load, as real processes (gateway, central consuming
 * the bus, load generators): for each rate, what was offered, received, bridged and shed, the
 * gateway's CPU per message and RSS, and the slowest /health answer while loaded.
 *
 *   npm run bench:overload -- --rates 5000,10000,20000 --seconds 20 [--generators 2] [--clients 250] [--buffer-max 100000] [--kafka]
 *
 * With --kafka the bus is Kafka (the librdkafka mock cluster from kcat): "bridged" is then what
 * Kafka acknowledged, and "held" what it acknowledged per second while the load ran.
 *
 * Prints figures only; a rate of 0 means "as fast as the generators go".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI_ENTRY } from '../lib/paths.js';
import { freePort } from '../test/helpers/ports.js';
import { runLoad, sample } from '../test/helpers/load.js';
import { cpuSeconds, rssMb } from './proc-stats.js';
import { startKafkaMock, type KafkaMock } from '../test/helpers/kafka-mock.js';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] ?? def : def; };
const rates = arg('rates', '5000,10000,20000').split(',').map(Number);
const seconds = Number(arg('seconds', '20'));
const generators = Number(arg('generators', '2'));
const clients = Number(arg('clients', '250'));
const bufferMax = Number(arg('buffer-max', '100000'));
const useKafka = process.argv.includes('--kafka');

async function until(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) { try { if ((await fetch(url)).ok) return; } catch { /* not yet */ } await new Promise((r) => setTimeout(r, 100)); }
  throw new Error(`${url} did not answer`);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-overload-'));
  const [mqttPort, httpPort, centralPort] = [await freePort(), await freePort(), await freePort()];
  const procs: ChildProcess[] = [];
  const kafka: KafkaMock | undefined = useKafka ? await startKafkaMock(1) : undefined;
  const busArgs = kafka ? ['--kafka-bootstrap', kafka.bootstrap.join(',')] : [];
  const start = (args: string[]) => { const p = spawn(process.execPath, [CLI_ENTRY, ...args], { stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'warn' } }); procs.push(p); return p; };
  try {
    const gw = start(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(httpPort), '--buffer-max', String(bufferMax), '--state-dir', path.join(dir, 'gw'), ...busArgs]);
    await until(`http://127.0.0.1:${httpPort}/health`);
    start(['central', '--host', '127.0.0.1', '--port', String(centralPort), '--data-dir', path.join(dir, 'central'), '--bus-mqtt', `mqtt://127.0.0.1:${mqttPort}`, ...busArgs]);
    await until(`http://127.0.0.1:${centralPort}/health`);
    if (kafka) for (let i = 0; i < 600 && !(((await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json()) as { kafka_up?: boolean }).kafka_up); i++) await new Promise((r) => setTimeout(r, 100));
    const metrics = async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    console.log(`gateway overload bench: ${generators} generators × ${clients} clients, ${seconds} s per rate, buffer ${bufferMax}, bus ${kafka ? 'Kafka (librdkafka mock)' : 'embedded'}, ${os.cpus().length} cores`);
    console.log('offered msgs/s | achieved | received | bridged | held msgs/s | shed | gw CPU µs/msg | gw RSS MB | slowest /health ms | gateway alive');
    for (const rate of rates) {
      const m0 = await metrics();
      const cpu0 = cpuSeconds(gw.pid!);
      let slowest = 0; let done = false;
      const probe = (async () => {
        while (!done) {
          const t = Date.now();
          try { await fetch(`http://127.0.0.1:${httpPort}/health`, { signal: AbortSignal.timeout(60_000) }); } catch { /* counted as slow */ }
          slowest = Math.max(slowest, Date.now() - t);
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      const loads = await Promise.all([...Array(generators).keys()].map((k) => runLoad({ url: `mqtt://127.0.0.1:${mqttPort}`, clients, rate: rate / generators, seconds, prefix: `B${rate}-${k}-` })));
      done = true; await probe;
      const mLoaded = await metrics();
      // Let the buffer drain into the bus before reading the counters (bounded: a gateway that cannot drain is reported as it is).
      let m1 = await metrics();
      for (const deadline = Date.now() + 10_000; sample(m1, 'gateway_buffer_size') > 0 && Date.now() < deadline; m1 = await metrics()) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const d = (name: string) => sample(m1, name) - sample(m0, name);
      const offered = loads.reduce((a, l) => a + l.offered, 0);
      const took = Math.max(...loads.map((l) => l.seconds));
      const received = d('gateway_mqtt_received_total{channel="telemetry"}');
      const held = (sample(mLoaded, 'gateway_bridged_total{topic="cp.telemetry"}') - sample(m0, 'gateway_bridged_total{topic="cp.telemetry"}')) / took;
      const cpuUs = ((cpuSeconds(gw.pid!) - cpu0) / Math.max(1, received)) * 1e6;
      console.log([rate || 'max', Math.round(offered / took), received, d('gateway_bridged_total{topic="cp.telemetry"}'), Math.round(held), d('gateway_buffer_shed_total'),
        cpuUs.toFixed(1), rssMb(gw.pid!).toFixed(0), slowest, gw.exitCode === null && gw.signalCode === null ? 'yes' : 'NO'].join(' | '));
    }
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await kafka?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
