import { Gauge, Histogram, Registry } from 'prom-client';
import type { Bus } from '../bus/types.js';
import type { Controller } from './controller.js';

/**
 * What central counts: every input and outcome by kind (shown in /health `counters` and as
 * `central_events_total{kind}`). The rules (central/rules) name what to count; the controller adds it up.
 * `forged_*`: input refused because its sender does not own what it names (another CP's
 * session, another driver's id or request); `rate_limited`: driver requests over the per-driver limit.
 */
export const COUNTER_NAMES = [
  'requests', 'accepted', 'rejected', 'duplicate_requests', 'stops', 'queries', 'cancels', 'expired_requests', 'rate_limited',
  'statuses', 'stale_statuses', 'announces', 'acks', 'failed_acks', 'session_ends', 'duplicate_session_ends', 'rebilled_sessions', 'unknown_session_ends',
  'telemetry', 'telemetry_ignored', 'monitor_reports', 'monitor_reports_refused', 'closed_by_central', 'publish_failures',
  'unconfirmed_closed', 'late_start_stops', 'gateway_beats', 'unreachable_holds', 'self_pauses',
  'forged_statuses', 'forged_acks', 'forged_session_ends', 'forged_telemetry', 'forged_requests', 'forged_beats',
  'pruned_requests', 'pruned_sessions',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export type Counters = Record<CounterName, number>;
export const newCounters = (): Counters => Object.fromEntries(COUNTER_NAMES.map((n) => [n, 0])) as Counters;

/**
 * Engine -> central telemetry delay (the reading's own `ts` to the moment central applies it,
 * after its input queue): what a dashboard lags behind the CPs. On no registry of its own;
 * central's /metrics registers it.
 */
export const newTelemetryDelayHistogram = () => new Histogram({
  name: 'central_telemetry_delay_seconds', help: 'telemetry reading time (engine clock) to applied at central',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [],
});

/**
 * Central's Prometheus metrics, read at scrape time from the counters central keeps anyway
 * (the same figures /health shows), on their own registry.
 */
export function createCentralMetrics(ctl: Controller, bus: Pick<Bus, 'health' | 'stats'>, httpErrors: Map<number, number>): Registry {
  const registry = new Registry();
  registry.registerMetric(ctl.telemetryDelay);
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void) =>
    new Gauge({ name, help, labelNames, registers: [registry], collect() { this.reset(); collect(this); } });
  gauge('central_events_total', 'inputs and outcomes central counted, by kind (requests, rejected, duplicate_session_ends, ...)', ['kind'], (g) => {
    for (const [k, v] of Object.entries(ctl.counters)) g.set({ kind: k }, v);
  });
  gauge('central_rejected_requests_total', 'driver requests refused, by reason', ['reason'], (g) => {
    for (const [k, v] of ctl.rejectReasons) g.set({ reason: k }, v);
  });
  gauge('central_http_errors_total', 'HTTP requests answered with an error, by status', ['status'], (g) => {
    for (const [k, v] of httpErrors) g.set({ status: String(k) }, v);
  });
  gauge('central_bus_messages_total', 'bus messages published, received, and received invalid (dropped)', ['kind'], (g) => {
    for (const [k, v] of Object.entries(bus.stats())) g.set({ kind: k }, v);
  });
  gauge('central_bus_up', '1 while the bus producer and consumer are connected', [], (g) => {
    const h = bus.health();
    g.set(h.producer === 'connected' && h.consumer === 'connected' ? 1 : 0);
  });
  gauge('central_charging_points', 'charging points by shown state', ['state'], (g) => {
    for (const v of ctl.cpViews()) g.inc({ state: v.state });
  });
  gauge('central_active_sessions', 'sessions running now', [], (g) => g.set(ctl.activeSessions()));
  gauge('central_journal_total', 'journal events appended, fsyncs and compactions', ['kind'], (g) => {
    for (const [k, v] of Object.entries(ctl.storeCounters)) g.set({ kind: k }, v);
  });
  return registry;
}
