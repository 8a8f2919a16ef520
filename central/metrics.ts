import { Gauge, Registry } from 'prom-client';
import type { Bus } from '../bus/types.js';
import type { Controller } from './controller.js';

/**
 * Central's Prometheus metrics, read at scrape time from the counters central keeps anyway
 * (the same figures /health shows), on their own registry.
 */
export function createCentralMetrics(ctl: Controller, bus: Pick<Bus, 'health' | 'stats'>, httpErrors: Map<number, number>): Registry {
  const registry = new Registry();
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
  gauge('central_active_sessions', 'sessions running now', [], (g) => g.set(ctl.activeRequests()));
  gauge('central_journal_total', 'journal events appended, fsyncs and compactions', ['kind'], (g) => {
    for (const [k, v] of Object.entries(ctl.storeCounters)) g.set({ kind: k }, v);
  });
  return registry;
}
