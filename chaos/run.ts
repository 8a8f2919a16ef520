import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { healthRequest } from '../firmware/health-client.js';
import {
  centralSpec, centralUrl, cpIdForIndex, driverIdForIndex, driverSpec, engineSpec, gatewaySpec, monitorSpec, requestLines,
  type ComponentSpec, type NetworkSettings,
} from '../network/plan.js';
import { allocatePort } from '../network/ports.js';
import {
  isProblemLine, verdict, type CentralSession, type ConvergenceSample, type Death, type DriverView, type LogProblem, type MeteredRecord, type Supply,
} from './invariants.js';
import { Procs, type ProcLine } from './procs.js';
import { lastRecovery, makeSchedule, type Fault, type Target } from './schedule.js';
import { createTopology, type Topology } from './topology.js';

/**
 * `npm run chaos -- --minutes M --seed S [--kafka] [--netns] [--cps N] [--drivers N]`: the whole
 * network as real processes (command lines from network/plan.ts, as `evcharging up` builds
 * them), drivers working through request files, and a seeded schedule of faults. Afterwards
 * the invariants are checked and printed with their figures; exit 1 on any violation.
 */

export interface ChaosOptions {
  minutes: number;
  seed: number;
  kafka: boolean;
  netns: boolean;
  cps: number;
  drivers: number;
  meanGapMs: number;
  maxDownMs: number;
  speed: number;
  maxChargeS: number;
  requestTimeoutMs: number;
  driverWaitS: number;
  settleS: number;
  dir?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TRUTH_POLL_MS = 400;

export function parseArgs(argv: string[]): ChaosOptions {
  const o: ChaosOptions = {
    minutes: 2, seed: Math.floor(Math.random() * 1e9), kafka: false, netns: false, cps: 3, drivers: 3,
    meanGapMs: 3_000, maxDownMs: 6_000, speed: 10, maxChargeS: 8, requestTimeoutMs: 5_000, driverWaitS: 1, settleS: 25,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => { const v = Number(argv[++i]); if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a non-negative number`); return v; };
    switch (a) {
      case '--minutes': o.minutes = num(); break;
      case '--seed': o.seed = Math.floor(num()); break;
      case '--kafka': o.kafka = true; break;
      case '--netns': o.netns = true; break;
      case '--cps': o.cps = Math.max(1, Math.floor(num())); break;
      case '--drivers': o.drivers = Math.max(1, Math.floor(num())); break;
      case '--gap-ms': o.meanGapMs = Math.max(200, num()); break;
      case '--max-down-ms': o.maxDownMs = Math.max(600, num()); break;
      case '--speed': o.speed = Math.max(1, num()); break;
      case '--max-charge-s': o.maxChargeS = Math.max(1, num()); break;
      case '--request-timeout-ms': o.requestTimeoutMs = Math.max(500, num()); break;
      case '--settle-s': o.settleS = Math.max(5, num()); break;
      case '--dir': o.dir = argv[++i]; break;
      case '--': break;
      default: throw new Error(`unknown option ${a} (--minutes M --seed S [--kafka] [--netns] [--cps N] [--drivers N] [--gap-ms MS] [--max-down-ms MS] [--speed X] [--max-charge-s S] [--request-timeout-ms MS] [--settle-s S] [--dir D])`);
    }
  }
  return o;
}

interface Timed { at: number; text: string }

export async function runChaos(o: ChaosOptions, out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Promise<{ violations: number }> {
  const dir = path.resolve(o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'evcharging-chaos-')));
  fs.mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const rel = (at: number) => `+${((at - t0) / 1000).toFixed(1)} s`;
  const replay = `npm run chaos -- --minutes ${o.minutes} --seed ${o.seed}${o.kafka ? ' --kafka' : ''}${o.netns ? ' --netns' : ''} --cps ${o.cps} --drivers ${o.drivers}`;
  const notes: Timed[] = [];
  const note = (text: string) => { notes.push({ at: Date.now(), text }); out(`chaos ${rel(Date.now())} ${text}`); };

  // What the run observes.
  const records: MeteredRecord[] = [];
  const supplies = new Map<string, Supply>();
  const deaths: Death[] = [];
  const logProblems: LogProblem[] = [];
  const lastProgress = new Map<string, { at: number; following: boolean }>();
  const cpIds = Array.from({ length: o.cps }, (_, i) => cpIdForIndex(i));
  const driverIds = Array.from({ length: o.drivers }, (_, i) => driverIdForIndex(i));
  let kafkaBootstrap: string[] | undefined;
  let bootstrapResolve: ((b: string[]) => void) | undefined;

  const onLine = (l: ProcLine) => {
    if (l.name === 'kafka') {
      const m = /bootstrap\.servers=(\S+)/.exec(l.line);
      if (m && bootstrapResolve) { bootstrapResolve(m[1]!.split(',').filter(Boolean)); bootstrapResolve = undefined; }
      return; // kcat's mock-cluster debug output is not a product log
    }
    if (isProblemLine(l.line)) logProblems.push({ name: l.name, at: l.at, line: l.line });
    if (l.line.startsWith('{')) {
      try {
        const j = JSON.parse(l.line) as Record<string, unknown>;
        if (j.msg === 'session ended' && typeof j.session_id === 'string') {
          records.push({ cp_id: String(j.cp_id), session_id: j.session_id, kwh: Number(j.kwh), eur: Number(j.eur), reason: String(j.reason), at: l.at });
        }
      } catch { /* not JSON after all */ }
      return;
    }
    if (driverIds.includes(l.name) && l.line.startsWith(`${l.name} `) && !l.line.includes(' summary: ')) {
      lastProgress.set(l.name, { at: l.at, following: / (IN_PROGRESS|ACCEPTED)\b/.test(l.line) });
    }
  };
  const killedBySchedule = new Set<string>();
  const procs = new Procs(path.join(dir, 'logs'), onLine, (e) => {
    if (e.name === 'kafka' && e.expected) return;
    const how = e.signal ?? `code ${e.code}`;
    // A driver that worked through its whole file ends with code 0: not a death.
    const finished = driverIds.includes(e.name) && e.code === 0;
    deaths.push({ name: e.name, at: e.at, how, expected: e.expected || finished || killedBySchedule.has(e.name) });
    killedBySchedule.delete(e.name);
  });
  let topo: Topology | undefined;
  const cleanup = () => { procs.killAllNow(); topo?.destroySync(); };
  process.once('exit', cleanup);

  try {
    topo = await createTopology(o.netns, path.join(dir, 'netns'));
    out(`chaos seed ${o.seed}: ${o.minutes} min of faults, bus ${o.kafka ? 'kafka (kcat mock cluster)' : 'embedded'}, ${topo.describe}; ${o.cps} CPs, ${o.drivers} drivers; data in ${dir}`);

    // --- the network -------------------------------------------------------------------------
    if (o.kafka) {
      const got = new Promise<string[]>((r) => { bootstrapResolve = r; });
      procs.start('kafka', 'kafka', ['kcat', '-C', '-b', 'x:1', '-X', 'test.mock.num.brokers=1', '-d', 'mock', '-t', 'keepalive', '-o', 'end', '-q'], topo.nsOf('core'));
      kafkaBootstrap = await Promise.race([got, sleep(20_000).then(() => { throw new Error('kcat mock cluster did not start (is kcat installed?)'); })]);
      kafkaBootstrap = await topo.exposeKafka(kafkaBootstrap);
    }
    const host = topo.addressOf('core');
    const s: NetworkSettings = {
      host, gatewayMqttPort: await allocatePort('127.0.0.1'), gatewayHttpPort: await allocatePort('127.0.0.1'), centralPort: await allocatePort('127.0.0.1'),
      kafkaBootstrap, dataDir: dir, adminToken: `chaos-${o.seed}-token`, speed: o.speed, driverWaitS: o.driverWaitS, maxChargeS: o.maxChargeS,
    };
    const healthPorts = new Map<string, number>();
    for (const id of cpIds) healthPorts.set(id, await allocatePort('127.0.0.1'));
    const specs: Array<ComponentSpec & { ns?: string }> = [];
    specs.push({ ...gatewaySpec(s), ns: topo.nsOf('core') });
    specs.push({ ...centralSpec(s), ns: topo.nsOf('core') });
    for (const id of cpIds) {
      // Engines listen on their host's address; their MQTT goes to the gateway on the core host.
      const cp = { id, healthPort: healthPorts.get(id)! };
      const eng = engineSpec({ ...s, host: topo.addressOf('cps') }, cp);
      eng.args = eng.args.map((a) => a.replace(`mqtt://${topo!.addressOf('cps')}:`, `mqtt://${host}:`));
      specs.push({ ...eng, ns: topo.nsOf('cps') });
      const mon = monitorSpec({ ...s, host: topo.addressOf('cps') }, cp);
      mon.args = mon.args.map((a) => (a === centralUrl({ ...s, host: topo!.addressOf('cps') }) ? centralUrl(s) : a));
      specs.push({ ...mon, ns: topo.nsOf('cps') });
    }
    const reqDir = path.join(dir, 'requests');
    fs.mkdirSync(reqDir, { recursive: true });
    driverIds.forEach((id, i) => {
      const file = path.join(reqDir, `${id}.txt`);
      fs.writeFileSync(file, Array.from({ length: 200 }, () => requestLines(cpIds, i)).join(''));
      const d = driverSpec(s, id, file);
      d.args.push('--request-timeout-ms', String(o.requestTimeoutMs));
      specs.push({ ...d, ns: topo!.nsOf('drivers') });
    });

    const byKind = (k: string) => specs.filter((x) => x.kind === k);
    const startAll = async (k: string) => { for (const x of byKind(k)) procs.startCli(x.name, x.kind, x.args, x.ns); };
    await startAll('gateway');
    await waitHttp(`http://${host}:${s.gatewayHttpPort}/health`, 60_000, topo.nsOf('core') !== undefined ? topo : undefined);
    await startAll('central');
    await waitHttp(`${centralUrl(s)}/health`, 60_000);
    await startAll('engine');
    await startAll('monitor');
    note('network starting: waiting for every CP to be ACTIVATED at central');
    await waitFor(async () => {
      if (deaths.length) throw new Error(`${deaths.map((d) => `${d.name} (${d.how})`).join(', ')} ended during start-up; see ${path.join(dir, 'logs')}`);
      const cps = await centralCps(centralUrl(s));
      return cpIds.every((id) => cps.get(id) === 'ACTIVATED');
    }, 90_000, 'every CP ACTIVATED at central');
    await startAll('driver');
    note('network up; drivers started');

    // --- truth, polled all along -----------------------------------------------------------------
    const truth = new Map<string, string>();
    let polling = true;
    const cpHost = topo.addressOf('cps');
    const poller = (async () => {
      while (polling) {
        await Promise.all(cpIds.map(async (id) => {
          if (!procs.alive(id)) { truth.set(id, 'DISCONNECTED'); return; }
          try {
            const reply = await healthRequest(cpHost, healthPorts.get(id)!, 'STATUS', 1_000);
            if (!reply.startsWith('OK ')) return;
            const st = JSON.parse(reply.slice(3)) as { state: string; link_up: boolean; session: { session_id: string; driver_id?: string; started_at: number } | null };
            truth.set(id, st.link_up ? st.state : 'DISCONNECTED');
            if (st.session) {
              const sp = supplies.get(st.session.session_id);
              if (sp) sp.lastSeen = Date.now();
              else supplies.set(st.session.session_id, { cp_id: id, session_id: st.session.session_id, driver_id: st.session.driver_id, firstSeen: st.session.started_at, lastSeen: Date.now() });
            }
          } catch { truth.set(id, 'DISCONNECTED'); }
        }));
        await sleep(TRUTH_POLL_MS);
      }
    })();

    // --- faults ----------------------------------------------------------------------------------
    // The weather service (when planned) is not a fault target: it holds no session state.
    const targets: Target[] = specs.flatMap((x) => (x.kind === 'weather' ? [] : [{ name: x.name, kind: x.kind }]));
    const faults = makeSchedule({ seed: o.seed, durationMs: o.minutes * 60_000, targets, kafka: o.kafka, links: topo.links, meanGapMs: o.meanGapMs, maxDownMs: o.maxDownMs });
    const faultStart = Date.now();
    const byFaultKind = new Map<string, number>();
    const pending: Array<Promise<void>> = [];
    let kafkaPaused = false;
    const inject = async (f: Fault) => {
      const label = f.kind === 'kill' ? `kill ${specs.find((x) => x.name === f.target)!.kind}` : f.kind;
      byFaultKind.set(label, (byFaultKind.get(label) ?? 0) + 1);
      if (f.kind === 'kill') {
        if (!procs.alive(f.target)) return;
        killedBySchedule.add(f.target);
        note(`SIGKILL ${f.target} (back in ${f.downMs} ms)`);
        await procs.signal(f.target, 'SIGKILL');
        await sleep(f.downMs);
        procs.restart(f.target);
      } else if (f.kind === 'pause-kafka') {
        note(`SIGSTOP kafka for ${f.downMs} ms`);
        kafkaPaused = true;
        await procs.signal('kafka', 'SIGSTOP');
        await sleep(f.downMs);
        await procs.signal('kafka', 'SIGCONT');
        kafkaPaused = false;
      } else {
        note(`cut link ${f.target} for ${f.downMs} ms`);
        await topo!.cut(f.target);
        await sleep(f.downMs);
        await topo!.restore(f.target);
      }
    };
    for (const f of faults) {
      const wait = faultStart + f.at - Date.now();
      if (wait > 0) await sleep(wait);
      pending.push(inject(f).catch((err: Error) => note(`fault ${f.kind} ${f.target} failed: ${err.message}`)));
    }
    await Promise.all(pending);
    const recoveredAt = Math.max(Date.now(), faultStart + lastRecovery(faults));
    note(`last fault over (${faults.length} faults); measuring convergence and letting the network settle for ${o.settleS} s`);

    // --- convergence and settle ------------------------------------------------------------------
    const convergeMs = 20_000;
    const converged = new Map<string, number>();
    const settleUntil = recoveredAt + Math.max(o.settleS * 1000, convergeMs);
    while (Date.now() < settleUntil) {
      const view = await centralCps(centralUrl(s)).catch(() => new Map<string, string>());
      for (const id of cpIds) if (!converged.has(id) && truth.has(id) && view.get(id) === truth.get(id)) converged.set(id, Date.now() - recoveredAt);
      await sleep(250);
    }
    const convergence: ConvergenceSample[] = cpIds.map((id) => ({ cp_id: id, ms: converged.has(id) && converged.get(id)! <= convergeMs ? converged.get(id)! : null }));
    const verdictAt = Date.now();
    const drivers: DriverView[] = driverIds.map((id) => ({ name: id, alive: procs.alive(id), lastProgressAt: lastProgress.get(id)?.at ?? 0, following: lastProgress.get(id)?.following ?? false }));

    // --- wind down: drivers quit (stopping what they charge), then every session must close ---------
    note('stopping the drivers (each stops its session on the way out)');
    await Promise.all(driverIds.map((id) => procs.signal(id, 'SIGTERM', 4 * o.requestTimeoutMs + 5_000)));
    let sessions: CentralSession[] = [];
    await waitFor(async () => {
      sessions = await centralSessions(centralUrl(s));
      return sessions.every((x) => x.ticket) && cpIds.every((id) => truth.get(id) !== 'SUPPLYING');
    }, 60_000, 'every session closed').catch(() => undefined);
    sessions = await centralSessions(centralUrl(s)).catch(() => sessions);
    polling = false;
    await poller;
    if (kafkaPaused) await procs.signal('kafka', 'SIGCONT');

    // --- verdict ---------------------------------------------------------------------------------
    const supplyMs = o.maxChargeS * 1000 + 3 * o.requestTimeoutMs + o.maxDownMs + 15_000;
    const stuckMs = o.maxChargeS * 1000 + 4 * o.requestTimeoutMs + o.driverWaitS * 1000 + o.maxDownMs + 15_000;
    const v = verdict({ records, supplies: [...supplies.values()], sessions, deaths, logProblems, drivers, convergence, at: verdictAt }, { supplyMs, stuckMs, convergeMs });

    out('');
    out(`chaos summary — seed ${o.seed}, ${o.minutes} min, bus ${o.kafka ? 'kafka' : 'embedded'}, ${topo.describe}, ${o.cps} CPs, ${o.drivers} drivers`);
    out(`faults injected: ${faults.length} (${[...byFaultKind].sort().map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`);
    const ticketed = sessions.filter((x) => x.ticket);
    const interrupted = ticketed.filter((x) => x.ticket!.interrupted);
    const reasons = new Map<string, number>();
    for (const x of ticketed) reasons.set(x.ticket!.reason, (reasons.get(x.ticket!.reason) ?? 0) + 1);
    out(`sessions: ${sessions.length} at central, ${supplies.size} supplied at CPs, ${new Set(records.map((r) => r.session_id)).size} metered records`);
    out(`tickets: ${ticketed.length} (${ticketed.length - interrupted.length} completed, ${interrupted.length} interrupted; ${[...reasons].sort().map(([k, n]) => `${k} ${n}`).join(', ')})`);
    out('invariants:');
    for (const i of v.invariants) out(`  ${i.ok ? 'ok  ' : 'FAIL'} ${i.name}: ${i.figures}`);
    out(`violations: ${v.violations.length}`);
    for (const x of v.violations.slice(0, 200)) out(`  ${rel(x.at)} (${new Date(x.at).toISOString()}) [${x.invariant}] ${x.text} — seed ${o.seed}`);
    if (v.violations.length > 200) out(`  … and ${v.violations.length - 200} more`);
    if (v.violations.length) out(`replay: ${replay}`);
    out(`logs: ${path.join(dir, 'logs')}`);
    return { violations: v.violations.length };
  } finally {
    await procs.stopAll(['driver', 'monitor', 'engine', 'central', 'gateway', 'kafka']).catch(() => undefined);
    await topo?.destroy().catch(() => undefined);
    process.removeListener('exit', cleanup);
  }
}

async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try { if (await probe()) return; } catch (err) { if (/ended during start-up/.test((err as Error).message)) throw err; /* else: not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function waitHttp(url: string, timeoutMs: number, _topo?: Topology): Promise<void> {
  await waitFor(async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok, timeoutMs, url);
}

async function centralCps(base: string): Promise<Map<string, string>> {
  const r = await fetch(`${base}/cp`, { signal: AbortSignal.timeout(2_000) });
  const j = (await r.json()) as { charging_points: Array<{ cp_id: string; state: string }> };
  return new Map(j.charging_points.map((c) => [c.cp_id, c.state]));
}

async function centralSessions(base: string): Promise<CentralSession[]> {
  const r = await fetch(`${base}/sessions`, { signal: AbortSignal.timeout(5_000) });
  return ((await r.json()) as { sessions: CentralSession[] }).sessions;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]).replace(/\.ts$/, '') === path.resolve(new URL(import.meta.url).pathname).replace(/\.ts$/, '');
if (isMain) {
  let opts: ChaosOptions;
  try { opts = parseArgs(process.argv.slice(2)); } catch (err) { process.stderr.write(`chaos: ${(err as Error).message}\n`); process.exit(2); }
  runChaos(opts).then(({ violations }) => process.exit(violations ? 1 : 0), (err: Error) => { process.stderr.write(`chaos: ${err.message}\n`); process.exit(2); });
}
