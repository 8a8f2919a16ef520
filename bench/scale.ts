/**
 * Scale benchmark: the whole network at N CPs on this machine, side by side for several N.
 * For each N: `evcharging gateway` (dev mode; embedded bus, or Kafka with --kafka), `evcharging
 * central`, and `evcharging fleet --count N` (one worker per core). It measures the time until
 * central lists every CP ACTIVATED, sends one REQUEST per CP through the bus (N synthetic
 * drivers) and measures the time until every CP is SUPPLYING, then samples for --seconds while
 * every CP sends telemetry at 1 Hz: CPU (share of one core) and RSS per CP for each process,
 * engine → central telemetry delay p50/p99 (central's own histogram, /metrics
 * `central_telemetry_delay_seconds`: the reading's ts to the moment central applied it; no
 * second consumer adds its load), and msgs/s held (readings central applied) against offered.
 * Then the broker comparison: the same publish load (N MQTT clients in a separate load process,
 * one telemetry-shaped QoS 0 message a second each) into Mosquitto and into the gateway, one
 * subscriber counting what comes out (at the gateway: on the embedded bus topic it bridges to),
 * CPU per message and the ratio. Figures only; nothing is asserted.
 *   npm run bench:scale -- --cps 1000,5000,10000 [--seconds 60,60,600] [--kafka] [--no-compare | --only-compare]
 *     [--compare-cps N (default: the first of --cps)] [--compare-seconds 30] [--fleet-nice 10]
 * --seconds takes one figure per size (the last one holds for the rest); a sample longer than a
 * minute also prints a line a minute (msgs/s held and p99 in that minute), so a long run shows
 * that it held throughout and not only on average. A size where some CPs never meter within the
 * deadline is sampled anyway, with those CPs counted and the first few named.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { createBus } from '../bus/create.js';
import { CLI_ENTRY } from '../lib/paths.js';
import { createLogger } from '../lib/log.js';
import { PROTOCOL_VERSION, embeddedBusTopic } from '../protocol/index.js';
import { startKafkaMock, type KafkaMock } from '../test/helpers/kafka-mock.js';
import { freePort } from '../test/helpers/ports.js';
import { cpuSeconds, rssMb } from './proc-stats.js';
/** Every simulated CP connects from one address: lift the gateway's pending and per-address limits (a real site keeps them, docs/security-gateway.md). */
const ONE_ADDRESS_LIMITS = ['--max-pending', '100000', '--max-pending-per-address', '100000', '--connect-rate-per-address', '100000'];

const arg = (name: string, dflt?: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : dflt; };
const counts = (arg('cps', '1000') ?? '1000').split(',').map(Number).filter((n) => n > 0);
const secondsList = (arg('seconds', '30') ?? '30').split(',').map(Number).filter((x) => x > 0);
const secondsFor = (i: number) => secondsList[Math.min(i, secondsList.length - 1)] ?? 30;
const compareCps = Number(arg('compare-cps', String(counts[0] ?? 1000)));
const compareSeconds = Number(arg('compare-seconds', '30'));
const useKafka = process.argv.includes('--kafka');
const compare = !process.argv.includes('--no-compare');
/** --fleet-nice N (default 10; 0 = same priority as the rest): the fleet's scheduling priority. */
const fleetNice = Number(arg('fleet-nice', '10'));
/** Only the broker comparison (at the first --cps), no network. */
const onlyCompare = process.argv.includes('--only-compare');
const log = createLogger('bench-scale');
log.level = 'warn';

const children = new Set<ChildProcess>();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
process.on('SIGINT', () => process.exit(130));

/** BENCH_PROFILE=<dir>: gateway, central and the fleet (each worker too: they inherit the flags) write V8 CPU profiles there (read them in Chrome DevTools). */
const profileDir = process.env.BENCH_PROFILE;
/** BENCH_LOGS=<dir>: each process's log (warnings and above) goes to `<dir>/<command>.log` instead of nowhere. */
const logDir = process.env.BENCH_LOGS;
function run(args: string[], env: Record<string, string> = {}): ChildProcess {
  // The fleet's workers take its node flags: their profiles keep node's default names (one per pid).
  const prof = !profileDir ? [] : args[0] === 'fleet' ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir)]
    : args[0] === 'gateway' || args[0] === 'central' ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir), '--cpu-prof-name', `${args[0]}-${Date.now()}.cpuprofile`] : [];
  const out = logDir ? fs.openSync(path.join(path.resolve(logDir), `${args[0]}.log`), 'a') : 'ignore';
  const c = spawn(process.execPath, [...prof, CLI_ENTRY, ...args], { stdio: ['ignore', out, 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...env } });
  if (typeof out === 'number') fs.closeSync(out); // the child has its own copy
  children.add(c);
  c.on('exit', (code, signal) => { children.delete(c); if (!stopping.has(c)) console.error(`!! ${args[0]} exited (code ${code}, signal ${signal})`); });
  return c;
}
const stopping = new Set<ChildProcess>();
async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  stopping.add(c);
  await new Promise<void>((r) => { c.once('exit', () => r()); c.kill('SIGTERM'); setTimeout(() => c.kill('SIGKILL'), 40_000).unref(); });
}
async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 250): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    try { if (await probe()) return (Date.now() - t0) / 1000; } catch { /* not up yet */ }
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
const childPids = (pid: number): number[] => {
  try { return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number); } catch { return []; }
};
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');

/** Central's telemetry delay histogram (engine ts -> applied at central) and its count of readings, from /metrics. */
interface DelayHist { bounds: number[]; cumulative: number[]; count: number }
async function centralTelemetry(url: string): Promise<DelayHist> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const bounds: number[] = [];
  const cumulative: number[] = [];
  for (const m of text.matchAll(/^central_telemetry_delay_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
    bounds.push(m[1] === '+Inf' ? Infinity : Number(m[1]) * 1000);
    cumulative.push(Number(m[2]));
  }
  const count = Number(/^central_events_total\{kind="telemetry"\} (\d+)/m.exec(text)?.[1] ?? NaN);
  return { bounds, cumulative, count };
}
const delta = (a: DelayHist, b: DelayHist): DelayHist => ({ bounds: a.bounds, cumulative: a.cumulative.map((c, i) => c - (b.cumulative[i] ?? 0)), count: a.count - b.count });
/** A quantile in ms, linear inside its bucket (as Prometheus' histogram_quantile): exact to the bucket bounds. */
function quantileMs(h: DelayHist, q: number): number {
  const total = h.cumulative[h.cumulative.length - 1] ?? 0;
  if (!total) return NaN;
  const rank = q * total;
  const i = h.cumulative.findIndex((c) => c >= rank);
  const lo = i > 0 ? h.bounds[i - 1]! : 0;
  const hi = h.bounds[i]!;
  if (!Number.isFinite(hi)) return lo;
  const below = i > 0 ? h.cumulative[i - 1]! : 0;
  return lo + ((hi - lo) * (rank - below)) / Math.max(1, h.cumulative[i]! - below);
}

interface Row {
  cps: number; seconds?: number; activatedS: number; supplyingS: number; offered: number; held: number; p50: number; p99: number;
  procs: Array<{ name: string; cpu: number; rss: number }>;
}

async function network(n: number, seconds: number, kafka?: KafkaMock): Promise<Row> {
  const [mqttPort, gwHttp, centralPort, fleetHttp] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scale-'));
  const busArgs = kafka ? ['--kafka-bootstrap', kafka.bootstrap.join(',')] : [];
  const gateway = run(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp), ...ONE_ADDRESS_LIMITS, ...busArgs]);
  await until('gateway /health', async () => (await fetch(`http://127.0.0.1:${gwHttp}/health`)).ok, 30_000);
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const central = run(['central', '--host', '127.0.0.1', '--port', String(centralPort), '--data-dir', dir, '--admin-token', 'bench-token-0001',
    '--max-cps', String(n + 100), '--bus-mqtt', mqttUrl, ...busArgs]);
  const centralUrl = `http://127.0.0.1:${centralPort}`;
  await until('central /health', async () => (await fetch(`${centralUrl}/health`)).ok, 30_000);

  // Requests go in as drivers send them, through the bus; telemetry is measured where it lands, at central.
  const bus = createBus({ kafkaBootstrap: kafka?.bootstrap, mqttUrl, clientId: `bench-scale-${process.pid}-${n}` }, log);
  await bus.start();

  const t0 = Date.now();
  const fleet = run(['fleet', '--count', String(n), '--mqtt', mqttUrl, '--id-prefix', 'S-', '--http-port', String(fleetHttp), '--speed', '1', '--ramp-per-s', '1000', '--stats-s', '3600']);
  // The simulated CPs stand in for chargers on machines of their own: they yield the CPU to the
  // system under test (their workers, started later, inherit the priority). A fleet that then
  // cannot keep up sends fewer readings, which "msgs/s held" shows against "offered".
  if (fleetNice) os.setPriority(fleet.pid!, fleetNice);
  let others: string[] = [];
  let idle: string[] = [];
  type CpRow = { cp_id: string; state?: string; engine_state?: string; kwh?: number };
  // Listing every CP costs central about 10 ms per 1,000 (sort, views, JSON): polled as often as 4 times a second it would load what it measures.
  const listEveryMs = Math.max(250, n / 10);
  const cpsAt = async (state: string, also: (c: CpRow) => boolean = () => true) => {
    const list = ((await (await fetch(`${centralUrl}/cp`)).json()) as { charging_points: CpRow[] }).charging_points;
    const ours = list.filter((c) => c.cp_id.startsWith('S-'));
    const stateOf = (c: typeof ours[number]) => c.state ?? c.engine_state;
    const not = ours.filter((c) => !(stateOf(c) === state && also(c)));
    idle = not.filter((c) => stateOf(c) === 'ACTIVATED').map((c) => c.cp_id);
    others = not.slice(0, 8).map((c) => `${c.cp_id} ${stateOf(c)}`);
    if (ours.length < n) others.push(`${n - ours.length} not listed`);
    return ours.filter((c) => stateOf(c) === state && also(c)).length;
  };
  // A size that does not finish still says how far it got, and which CPs did not.
  const untilAll = async (state: string, onPoll?: () => void) => {
    let reached = 0;
    try { await until(`${n} CPs ${state} at central`, async () => { reached = await cpsAt(state); onPoll?.(); return reached >= n; }, 60_000 + n * 30, listEveryMs); } catch (err) {
      throw new Error(`${(err as Error).message} (${reached} of ${n} were; others: ${others.join(', ')})`);
    }
  };
  await untilAll('ACTIVATED');
  const activatedS = (Date.now() - t0) / 1000;

  // One REQUEST per CP, from N synthetic drivers, through the bus as drivers send them.
  const t1 = Date.now();
  const request = (i: number, attempt: number) => {
    const id = String(i).padStart(4, '0');
    void bus.publish('driver.requests', `driver-s${id}`, { v: PROTOCOL_VERSION, request_id: `bench-${n}-${i}-${attempt}`, driver_id: `driver-s${id}`, action: 'REQUEST', cp_id: `S-${id}`, ts: Date.now() });
  };
  for (let i = 1; i <= n; i++) {
    request(i, 0);
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
  }
  // As a driver would: a CP still idle after 15 s (the request refused or lost) is asked again, and counted.
  let retries = 0;
  let lastRetry = Date.now();
  await untilAll('SUPPLYING', () => {
    if (Date.now() - lastRetry < 15_000) return;
    lastRetry = Date.now();
    for (const c of idle) { retries++; request(Number(c.slice(2)), retries); }
  });
  if (retries) console.error(`   ${retries} requests sent again (their CP was still idle after 15 s)`);
  const supplyingS = (Date.now() - t1) / 1000;

  // Steady state: sample once central has a reading from every CP.
  // Sampled even if a few CPs never metered (they are counted and named): the figures then say so instead of being lost.
  let metering = 0;
  const meteringMs = 60_000 + n * 10;
  try {
    await until(`telemetry from all ${n} CPs at central`, async () => (metering = await cpsAt('SUPPLYING', (c) => (c.kwh ?? 0) > 0)) >= n, meteringMs, listEveryMs);
  } catch {
    console.error(`!! ${n - metering} of ${n} CPs not metering at central after ${meteringMs / 1000} s, sampling anyway: ${others.join(', ')}`);
  }
  const procs = [
    { name: 'gateway', pids: [gateway.pid!] },
    { name: 'central', pids: [central.pid!] },
    { name: 'fleet (all workers)', pids: [fleet.pid!, ...childPids(fleet.pid!)] },
  ];
  const cpu0 = procs.map((p) => p.pids.map((pid) => cpuSeconds(pid)).reduce((a, b) => a + b, 0));
  const s0 = Date.now();
  const first = await centralTelemetry(centralUrl);
  let last = first;
  for (let left = seconds, minute = 1; left > 0; minute++) {
    const step = Math.min(60, left);
    await new Promise((r) => setTimeout(r, step * 1000));
    left -= step;
    if (seconds > 60) {
      const now = await centralTelemetry(centralUrl);
      const d = delta(now, last);
      last = now;
      const alive = procs.filter((p) => { try { process.kill(p.pids[0]!, 0); return true; } catch { return false; } }).length;
      console.error(`   minute ${minute}: ${f1(d.count / step)} msgs/s held, p50 ${f1(quantileMs(d, 0.5))} ms, p99 ${f1(quantileMs(d, 0.99))} ms, ${alive}/${procs.length} processes up`);
    }
  }
  const d = delta(await centralTelemetry(centralUrl), first);
  const dt = (Date.now() - s0) / 1000;
  const row: Row = {
    cps: n, activatedS, supplyingS, offered: n, held: d.count / dt,
    p50: quantileMs(d, 0.5), p99: quantileMs(d, 0.99),
    procs: procs.map((p, i) => ({
      name: p.name,
      cpu: (p.pids.map((pid) => { try { return cpuSeconds(pid); } catch { return 0; } }).reduce((a, b) => a + b, 0) - cpu0[i]!) / dt,
      rss: p.pids.map((pid) => { try { return rssMb(pid); } catch { return 0; } }).reduce((a, b) => a + b, 0),
    })),
  };
  await bus.close();
  await stop(fleet);
  await stop(central);
  await stop(gateway);
  fs.rmSync(dir, { recursive: true, force: true });
  return row;
}

/**
 * The same load into a broker: N MQTT clients in a separate process, one telemetry-shaped message
 * a second each, and one subscriber counting what comes out: at Mosquitto the CPs' own topic, at
 * the gateway the bus topic its bridge forwards to, where central would be subscribed.
 */
async function brokerLoad(n: number, url: string, brokerPid: number, countOn: string): Promise<{ cpuPerMsgUs: number; msgsPerS: number }> {
  const counterClient = await mqtt.connectAsync(url, { clientId: `bench-count-${process.pid}` });
  let got = 0;
  counterClient.on('message', () => { got++; });
  await counterClient.subscribeAsync(countOn, { qos: 0 });
  const load = spawn(process.execPath, ['--input-type=module', '-e', LOAD_GENERATOR, url, String(n)], { stdio: ['ignore', 'inherit', 'inherit'], cwd: path.dirname(CLI_ENTRY) });
  children.add(load);
  // Every client has published twice: all are connected and on their 1 Hz beat.
  await until(`${n} load clients publishing`, () => got > 2 * n, 120_000);
  const c0 = cpuSeconds(brokerPid);
  const g0 = got;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, compareSeconds * 1000));
  const dt = (Date.now() - t0) / 1000;
  const msgs = got - g0;
  const cpu = cpuSeconds(brokerPid) - c0;
  stopping.add(load);
  load.kill('SIGKILL');
  await counterClient.endAsync();
  // One in, one out: the broker relays each message to the counter; the gateway validates, stamps and forwards it to the bus.
  return { cpuPerMsgUs: (cpu / Math.max(1, msgs)) * 1e6, msgsPerS: msgs / dt };
}

const LOAD_GENERATOR = `
import mqtt from 'mqtt';
const [url, n] = [process.argv[1], Number(process.argv[2])];
const body = (id, seq) => JSON.stringify({ v: 1, type: 'telemetry', cp_id: id, session_id: 'S-' + id, kw: 11, kwh: seq / 360, eur: seq / 1000, seq, ts: Date.now() });
const clients = [];
for (let i = 0; i < n; i++) {
  const id = 'L-' + String(i + 1).padStart(5, '0');
  const c = mqtt.connect(url, { clientId: id, reconnectPeriod: 1000, protocolVersion: 4 });
  c.on('error', () => {});
  let seq = 0;
  c.on('connect', () => { if (c.timer) return; c.timer = setInterval(() => c.publish('cp/' + id + '/telemetry', body(id, seq++), { qos: 0 }), 1000); });
  clients.push(c);
  if (i % 200 === 199) await new Promise((r) => setTimeout(r, 50));
}
`;

async function main(): Promise<void> {
  const kafka = useKafka ? await startKafkaMock(1) : undefined;
  const rows: Row[] = [];
  for (const [i, n] of (onlyCompare ? [] : counts).entries()) {
    console.error(`-- ${n} CPs (${useKafka ? 'Kafka' : 'embedded bus'}), sampling ${secondsFor(i)} s`);
    try { rows.push({ ...(await network(n, secondsFor(i), kafka)), seconds: secondsFor(i) }); } catch (err) {
      console.error(`!! ${n} CPs: ${(err as Error).message}`);
      // A size that failed must not leave its network running into the next one.
      await Promise.all([...children].map((c) => stop(c)));
    }
  }
  console.log(`\nscale (${useKafka ? 'Kafka bus, librdkafka mock cluster' : 'embedded bus'}; ${os.availableParallelism()} cores; telemetry 1 Hz per CP; fleet at nice ${fleetNice})`);
  console.log('| CPs | sampled s | all ACTIVATED s | all SUPPLYING s | msgs/s offered | msgs/s held | p50 ms | p99 ms | process | CPU (cores) | RSS MB | CPU ms/s per 1k CPs | RSS KB per CP |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    for (const [i, p] of r.procs.entries()) {
      const head = i === 0 ? `| ${r.cps} | ${r.seconds} | ${f1(r.activatedS)} | ${f1(r.supplyingS)} | ${r.offered} | ${f1(r.held)} | ${f1(r.p50)} | ${f1(r.p99)}` : '| | | | | | | |';
      console.log(`${head} | ${p.name} | ${f3(p.cpu)} | ${f1(p.rss)} | ${f1((p.cpu * 1000 * 1000) / r.cps)} | ${f1((p.rss * 1024) / r.cps)} |`);
    }
  }
  if (compare) {
    const n = compareCps;
    const { startMosquitto } = await import('../test/helpers/brokers.js');
    const mosq = await startMosquitto();
    const m = await brokerLoad(n, mosq.url, mosq.process.pid!, 'cp/+/telemetry');
    await mosq.stop();
    const [mqttPort, gwHttp] = await Promise.all([freePort(), freePort()]);
    const gw = run(['gateway', '--dev', 'true', '--host', '127.0.0.1', '--mqtt-port', String(mqttPort), '--http-port', String(gwHttp), ...ONE_ADDRESS_LIMITS, ...(kafka ? ['--kafka-bootstrap', kafka.bootstrap.join(',')] : [])]);
    await until('gateway /health', async () => (await fetch(`http://127.0.0.1:${gwHttp}/health`)).ok, 30_000);
    const g = await brokerLoad(n, `mqtt://127.0.0.1:${mqttPort}`, gw.pid!, kafka ? 'cp/+/telemetry' : embeddedBusTopic('cp.telemetry', '+'));
    await stop(gw);
    console.log(`\nbroker comparison: ${n} clients × 1 msg/s, QoS 0, one subscriber (Mosquitto: on cp/+/telemetry; gateway: ${kafka ? 'the same, besides its bridge to Kafka' : 'on the bus topic it bridges to'})`);
    console.log('| broker | msgs/s in | CPU µs per message | ratio to Mosquitto |');
    console.log('| --- | ---: | ---: | ---: |');
    console.log(`| Mosquitto | ${f1(m.msgsPerS)} | ${f1(m.cpuPerMsgUs)} | 1.0 |`);
    console.log(`| gateway (dev, ${kafka ? 'Kafka' : 'embedded'} bus) | ${f1(g.msgsPerS)} | ${f1(g.cpuPerMsgUs)} | ${f1(g.cpuPerMsgUs / m.cpuPerMsgUs)} |`);
  }
  await kafka?.stop();
  process.exit(0);
}

await main();
