import { z } from 'zod';

/**
 * Where temperatures come from: OpenWeather's current-weather API (`GET
 * /data/2.5/weather?q=CITY&appid=KEY&units=metric` → `{"main":{"temp":…},"name":…}`), or a
 * built-in simulated weather (no network, no key) for demos and `npm start`.
 */
export interface WeatherSource {
  readonly kind: 'openweather' | 'sim';
  /** °C at `location` now; rejects with a short reason (timeout, HTTP status, bad body). */
  temperature(location: string): Promise<number>;
}

/** Only what we read of OpenWeather's answer; anything else in it is ignored. */
const OpenWeatherBody = z.object({ main: z.object({ temp: z.number().finite().min(-100).max(100) }) });

export class SourceError extends Error {}

export function openWeatherSource(o: { baseUrl: string; apiKey: string; timeoutMs: number }): WeatherSource {
  const base = o.baseUrl.replace(/\/+$/, '');
  return {
    kind: 'openweather',
    async temperature(location) {
      const url = `${base}/data/2.5/weather?q=${encodeURIComponent(location)}&appid=${encodeURIComponent(o.apiKey)}&units=metric`;
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs) });
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } };
        if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new SourceError(`no answer within ${o.timeoutMs} ms`);
        throw new SourceError(e.cause?.code ?? e.message);
      }
      if (!res.ok) { await res.body?.cancel(); throw new SourceError(`HTTP ${res.status} for ${location}`); }
      let body: unknown;
      try { body = await res.json(); } catch { throw new SourceError(`not JSON for ${location}`); }
      const r = OpenWeatherBody.safeParse(body);
      if (!r.success) throw new SourceError(`no main.temp in the answer for ${location}`);
      return r.data.main.temp;
    },
  };
}

/** A stable number in [0, 1) from a name. */
function hash01(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); }
  return (h >>> 0) / 2 ** 32;
}

/**
 * Simulated weather: each location has its own mean (−6 … 24 °C) and swings ±8 °C over a
 * period of a few minutes, so the colder places cross 0 °C now and then during a demo.
 */
export function simulatedSource(now: () => number = Date.now, periodMs = 240_000): WeatherSource {
  return {
    kind: 'sim',
    async temperature(location) {
      const h = hash01(location);
      const mean = -6 + 30 * h;
      const phase = 2 * Math.PI * (now() / periodMs + h);
      return Math.round((mean + 8 * Math.sin(phase)) * 10) / 10;
    },
  };
}
