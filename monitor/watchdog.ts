import type { MonitorReportMsg } from '../protocol/index.js';

/**
 * The monitor's pure core: poll results in, report decisions out. No sockets, no timers.
 *
 * - `ok`: the engine answered `OK`.
 * - `ko`: the engine answered `KO <reason>` (it is up, its hardware is not).
 * - `miss`: no usable answer (timeout, refused, closed, garbage).
 *
 * `maxMisses` consecutive bad polls (ko or miss, in any mix) make the engine faulty; one `ok`
 * makes it healthy again. Every poll (but those of a monitor that has not yet heard its engine,
 * below the threshold) yields one report: `fault` / `recovered` while central has
 * not yet acknowledged the current verdict (so a verdict reached while central was down is sent
 * once it is back), otherwise a `heartbeat` carrying the verdict.
 */
export type PollResult = { kind: 'ok' } | { kind: 'ko'; reason: string } | { kind: 'miss'; reason: string };
export type ReportKind = MonitorReportMsg['kind'];

export interface WatchdogState {
  /** Consecutive bad polls. */
  readonly bad: number;
  /** The debounced verdict. */
  readonly faulty: boolean;
  /** An OK was seen since start: until then the engine is not claimed healthy. */
  readonly seenOk: boolean;
  /** Why the engine is (or is suspected to be) unhealthy. */
  readonly reason?: string;
  /** The verdict central last accepted: undefined until the first report went through. */
  readonly acked?: 'ok' | 'fault';
}

export interface WatchdogStep {
  state: WatchdogState;
  /** Undefined while just started, not answered OK yet and below the threshold: nothing to say yet. */
  report?: { kind: ReportKind; engine_ok: boolean; reason?: string };
  /** Set when this poll changed the verdict, for one log line. */
  transition?: 'fault' | 'recovered';
}

export const initialWatchdog = (): WatchdogState => ({ bad: 0, faulty: false, seenOk: false });

function reportFor(s: WatchdogState): WatchdogStep['report'] {
  if (s.faulty && s.acked !== 'fault') return { kind: 'fault', engine_ok: false, reason: s.reason };
  if (!s.faulty && s.acked === 'fault') return { kind: 'recovered', engine_ok: true };
  // Just started beside an engine that is not listening yet (below the threshold): a KO
  // heartbeat would have central refuse a CP that is only booting, an OK one would vouch for
  // an engine never heard. Say nothing until the first OK or the fault threshold.
  if (!s.faulty && !s.seenOk) return undefined;
  return s.faulty ? { kind: 'heartbeat', engine_ok: false, reason: s.reason } : { kind: 'heartbeat', engine_ok: true };
}

/** Applies one poll result. */
export function onPoll(s: WatchdogState, r: PollResult, maxMisses: number): WatchdogStep {
  let next: WatchdogState;
  let transition: WatchdogStep['transition'];
  if (r.kind === 'ok') {
    next = { ...s, bad: 0, faulty: false, seenOk: true, reason: undefined };
    if (s.faulty) transition = 'recovered';
  } else {
    const bad = s.bad + 1;
    const faulty = s.faulty || bad >= maxMisses;
    next = { ...s, bad, faulty, reason: r.kind === 'ko' ? `KO ${r.reason}` : r.reason };
    if (faulty && !s.faulty) transition = 'fault';
  }
  return { state: next, report: reportFor(next), transition };
}

/** Central accepted a report (reports go out one at a time, in order): it now holds that verdict. */
export function onAcked(s: WatchdogState, report: { kind: ReportKind; engine_ok: boolean }): WatchdogState {
  // A not-yet-OK heartbeat before any verdict is no fault to recover from later.
  if (report.kind === 'heartbeat' && !report.engine_ok && s.acked === undefined && !s.faulty) return s;
  return { ...s, acked: report.engine_ok ? 'ok' : 'fault' };
}
