import { describe, expect, it } from 'vitest';
import { weatherAction, type WeatherRecord } from '../../central/weather.js';
import { CITIES, locationOf, parseLocations } from '../../weather/locations.js';
import { simulatedSource } from '../../weather/sources.js';

const rec = (out: boolean): WeatherRecord => ({ location: 'Oslo,NO', temp_c: out ? -1 : 5, at: 0, out_of_service: out, stopped_by_weather: out });

describe('weather rules', () => {
  it('at or below 0 °C out of service; above, back; kept out while freezing', () => {
    expect(weatherAction(undefined, 0, false)).toBe('take_out');
    expect(weatherAction(undefined, 0.1, false)).toBe('none');
    expect(weatherAction(rec(true), -3, true)).toBe('none');
    expect(weatherAction(rec(true), -3, false)).toBe('keep_out'); // someone resumed it while it freezes
    expect(weatherAction(rec(true), 1, true)).toBe('bring_back');
    expect(weatherAction(rec(false), 1, false)).toBe('none');
  });

  it('locations: CP=PLACE lists, JSON, and a built-in city for every other CP', () => {
    expect([...parseLocations('CP-001=Oslo,NO; CP-002=Madrid,ES')]).toEqual([['CP-001', 'Oslo,NO'], ['CP-002', 'Madrid,ES']]);
    expect(parseLocations('{"CP-9":"Rome,IT"}').get('CP-9')).toBe('Rome,IT');
    expect(() => parseLocations('CP-001')).toThrow(/CP=PLACE/);
    expect(locationOf('CP-001', new Map())).toBe(CITIES[0]);
    expect(locationOf('CP-002', new Map([['CP-002', 'Lima,PE']]))).toBe('Lima,PE');
    expect(CITIES).toContain(locationOf('lab-x', new Map()));
  });

  it('simulated weather: stable per place and time, within −14 … 32 °C, some places freeze', async () => {
    let now = 0;
    const s = simulatedSource(() => now);
    const t = await s.temperature('Oslo,NO');
    expect(await s.temperature('Oslo,NO')).toBe(t);
    const all: number[] = [];
    for (now = 0; now < 240_000; now += 20_000) for (const c of CITIES) all.push(await s.temperature(c));
    expect(Math.min(...all)).toBeGreaterThanOrEqual(-14);
    expect(Math.max(...all)).toBeLessThanOrEqual(32);
    expect(all.some((x) => x <= 0)).toBe(true);
    expect(all.some((x) => x > 0)).toBe(true);
  });
});
