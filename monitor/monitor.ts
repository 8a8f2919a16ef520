import type { Logger } from '../lib/log.js';
import { PROTOCOL_VERSION, type MonitorReportMsg } from '../protocol/index.js';
import { createCentralReporter, type ReporterCounters } from './central-reporter.js';
import { createHealthProbe } from './health-probe.js';
import { initialWatchdog, onAcked, onPoll, type WatchdogStep, type PollResult, type WatchdogState } from './watchdog.js';

export interface MonitorOptions {
  cpId: string;
  engine: { host: string; port: number };
  centralUrl: string;
  intervalMs: number;
  maxMisses: number;
  /** Poll timeout; must be below the interval so a hung engine cannot stretch the cadence. */
  timeoutMs: number;
  token?: string;
  monitorId?: string;
  log: Logger;
}

export interface MonitorTotals {
  cp_id: string;
  faulty: boolean;
  reason?: string;
  central_down: boolean;
  polls: { ok: number; ko: number; miss: number };
  reports: ReporterCounters;
}

export interface Monitor {
  status(): MonitorTotals;
  close(): Promise<void>;
}

/** Default poll timeout: most of the interval, leaving room to report before the next poll. */
export const defaultTimeoutMs = (intervalMs: number) => Math.max(50, Math.floor(intervalMs * 0.8));

/**
 * One CP's monitor: polls the engine's health port every interval, feeds the watchdog and
 * reports its decisions to central. No process globals, so a process can run many.
 */
export function startMonitor(o: MonitorOptions): Monitor {
  const log = o.log.child({ cp_id: o.cpId });
  const monitorId = o.monitorId ?? `monitor-${o.cpId}`;
  const probe = createHealthProbe(o.engine.host, o.engine.port, o.timeoutMs);
  const reporter = createCentralReporter({ centralUrl: o.centralUrl, token: o.token, timeoutMs: Math.max(o.timeoutMs, 1000), log, cpId: o.cpId });
  const polls = { ok: 0, ko: 0, miss: 0 };
  let state: WatchdogState = initialWatchdog();
  let stopped = false;
  let last: PollResult['kind'] | undefined;
  let wake: (() => void) | undefined;

  // The kept-open connection closed by itself: poll at once (only after a good poll, so an
  // engine that accepts and drops connections cannot make us spin).
  probe.onDrop(() => { if (last === 'ok') wake?.(); });

  let pending: NonNullable<WatchdogStep['report']> | undefined;
  let pumping: Promise<void> | undefined;
  function offer(report: NonNullable<WatchdogStep['report']>) {
    pending = report; // only the newest verdict matters
    pumping ??= pump().finally(() => { pumping = undefined; });
  }
  async function pump() {
    while (pending && !stopped) {
      const report = pending;
      pending = undefined;
      const msg: MonitorReportMsg = { v: PROTOCOL_VERSION, cp_id: o.cpId, monitor_id: monitorId, kind: report.kind, engine_ok: report.engine_ok, ts: Date.now() };
      if (report.reason) msg.reason = report.reason.slice(0, 256);
      const out = await reporter.send(msg);
      if (out.ok) {
        state = onAcked(state, report);
        if (report.kind !== 'heartbeat') log.info({ kind: report.kind }, `central accepted the ${report.kind} report`);
      }
    }
  }

  async function loop() {
    while (!stopped) {
      const started = Date.now();
      const r = await probe.ping();
      if (stopped) break;
      polls[r.kind]++;
      if (r.kind !== 'ok' && last === 'ok') log.info({ result: r.kind, reason: r.reason, bad: state.bad + 1, max_misses: o.maxMisses }, 'engine poll failed');
      last = r.kind;
      const d = onPoll(state, r, o.maxMisses);
      state = d.state;
      if (d.transition === 'fault') log.warn({ reason: state.reason, bad_polls: state.bad }, 'engine fault detected, reporting to central');
      if (d.transition === 'recovered') log.info('engine recovered, reporting to central');
      if (d.report) offer(d.report);
      const wait = Math.max(0, o.intervalMs - (Date.now() - started));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        wake = () => { clearTimeout(t); resolve(); };
      });
      wake = undefined;
    }
  }

  log.info({ engine: `${o.engine.host}:${o.engine.port}`, central: o.centralUrl, interval_ms: o.intervalMs, max_misses: o.maxMisses, timeout_ms: o.timeoutMs }, 'monitor started');
  const running = loop().catch((err: unknown) => log.error({ err: (err as Error).message }, 'monitor loop failed'));

  return {
    status: () => ({
      cp_id: o.cpId, faulty: state.faulty, reason: state.reason, central_down: reporter.down,
      polls: { ...polls }, reports: { ...reporter.counters },
    }),
    async close() {
      stopped = true;
      wake?.();
      probe.close();
      await running;
      await Promise.race([pumping, new Promise((r) => setTimeout(r, 2_000).unref())]);
    },
  };
}
