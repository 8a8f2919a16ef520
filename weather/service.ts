import { errText, type Logger } from '../lib/log.js';
import { locationOf } from './locations.js';
import type { WeatherSource } from './sources.js';

/**
 * The weather service (the course's EV_W): every few seconds it reads the temperature at each
 * CP's location and tells central (`POST /weather/report`, admin token), which takes a CP out
 * of service at or below 0 °C and back when it warms. A weather source that fails or is slow
 * is one warning line per outage and no report at all: central keeps what it knew.
 */
export interface WeatherServiceOptions {
  centralUrl: string;
  adminToken: string;
  source: WeatherSource;
  locations: ReadonlyMap<string, string>;
  intervalMs: number;
  log: Logger;
  /** Locations asked at once. */
  concurrency?: number;
}

export interface WeatherStats { rounds: number; reports: number; source_failures: number; central_failures: number; cold_places: number }

export function startWeatherService(o: WeatherServiceOptions): { close(): Promise<void>; stats(): WeatherStats } {
  const stats: WeatherStats = { rounds: 0, reports: 0, source_failures: 0, central_failures: 0, cold_places: 0 };
  let sourceDown: string | undefined;
  let centralDown: string | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const auth = { authorization: `Bearer ${o.adminToken}` };

  const centralFailed = (why: string) => {
    stats.central_failures++;
    if (!centralDown) o.log.warn({ err: why }, 'central not reachable: no weather reports until it answers');
    centralDown = why;
  };

  async function cps(): Promise<string[] | undefined> {
    try {
      const r = await fetch(`${o.centralUrl}/cp`, { signal: AbortSignal.timeout(5_000) });
      if (!r.ok) { centralFailed(`HTTP ${r.status}`); return undefined; }
      const body = await r.json() as { charging_points?: Array<{ cp_id: string }> };
      if (centralDown) o.log.info('central answers again');
      centralDown = undefined;
      return (body.charging_points ?? []).map((c) => c.cp_id);
    } catch (err) {
      centralFailed(errText((err as { cause?: unknown }).cause ?? err));
      return undefined;
    }
  }

  async function report(cpId: string, location: string, tempC: number): Promise<void> {
    try {
      const r = await fetch(`${o.centralUrl}/weather/report`, {
        method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ cp_id: cpId, location, temp_c: tempC }), signal: AbortSignal.timeout(5_000),
      });
      const body = await r.json().catch(() => ({})) as { action?: string; error?: string };
      if (!r.ok) {
        if (r.status === 401) centralFailed(`refused: ${body.error ?? 'admin token'}`);
        else if (r.status !== 404) o.log.warn({ cp_id: cpId, status: r.status, err: body.error }, 'weather report refused');
        return;
      }
      stats.reports++;
      if (body.action === 'take_out') o.log.warn({ cp_id: cpId, location, temp_c: tempC }, `${cpId} out of service: ${tempC.toFixed(1)} °C in ${location}`);
      if (body.action === 'bring_back') o.log.info({ cp_id: cpId, location, temp_c: tempC }, `${cpId} back in service: ${tempC.toFixed(1)} °C in ${location}`);
    } catch (err) {
      centralFailed(errText((err as { cause?: unknown }).cause ?? err));
    }
  }

  async function round(): Promise<void> {
    stats.rounds++;
    const ids = await cps();
    if (!ids) return;
    // One temperature per place, however many CPs share it.
    const places = new Map<string, string[]>();
    for (const id of ids) { const l = locationOf(id, o.locations); places.set(l, [...(places.get(l) ?? []), id]); }
    const queue = [...places.keys()];
    const temps = new Map<string, number>();
    let failure: string | undefined;
    await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 8, queue.length) }, async () => {
      for (let place = queue.shift(); place !== undefined && !closed; place = queue.shift()) {
        try { temps.set(place, await o.source.temperature(place)); } catch (err) { failure ??= errText(err); stats.source_failures++; }
      }
    }));
    if (failure) {
      if (!sourceDown) o.log.warn({ source: o.source.kind, err: failure }, 'weather source not answering: no reports until it does; CPs keep their state');
      sourceDown = failure;
    } else if (sourceDown) {
      o.log.info({ source: o.source.kind }, 'weather source answers again');
      sourceDown = undefined;
    }
    const sends: Array<Promise<void>> = [];
    for (const [place, t] of temps) for (const id of places.get(place)!) sends.push(report(id, place, t));
    await Promise.all(sends);
    let cold = 0;
    for (const t of temps.values()) if (t <= 0) cold++;
    stats.cold_places = cold;
  }

  const loop = () => {
    if (closed) return;
    running = round().catch((err: unknown) => { o.log.warn({ err: errText(err) }, 'weather round failed'); })
      .then(() => { if (!closed) timer = setTimeout(loop, o.intervalMs); });
  };
  o.log.info({ source: o.source.kind, interval_ms: o.intervalMs, central: o.centralUrl }, 'weather service started');
  loop();
  return {
    stats: () => ({ ...stats }),
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
