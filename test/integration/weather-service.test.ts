import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig } from '../helpers/central-rig.js';

/**
 * The weather service (`evcharging weather`) against a local HTTP server that answers in
 * OpenWeather's format, with a real gateway and central: a CP at a freezing place goes out of
 * service and comes back when it warms; a broken (HTTP 500) or slow (no answer in time) source
 * is one warning line per outage and changes nothing at central.
 */
type Mode = 'ok' | 'broken' | 'slow';
const temps: Record<string, number> = { 'Oslo,NO': -4.5, 'Madrid,ES': 18 };
let mode: Mode = 'ok';
const seen: Array<{ q: string; appid: string; units: string; at: number }> = [];
const held: http.ServerResponse[] = [];
const weatherServer = http.createServer((req, res) => {
  const u = new URL(req.url ?? '/', 'http://x');
  const q = u.searchParams.get('q') ?? '';
  seen.push({ q, appid: u.searchParams.get('appid') ?? '', units: u.searchParams.get('units') ?? '', at: Date.now() });
  if (u.pathname !== '/data/2.5/weather') { res.writeHead(404).end(); return; }
  if (mode === 'broken') { res.writeHead(500, { 'content-type': 'application/json' }).end('{"cod":500,"message":"internal error"}'); return; }
  if (mode === 'slow') { held.push(res); return; } // answers never come in time
  const t = temps[q];
  if (t === undefined) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"cod":"404","message":"city not found"}'); return; }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
    coord: { lon: 10.75, lat: 59.91 }, weather: [{ id: 600, main: 'Snow', description: 'light snow' }], base: 'stations',
    main: { temp: t, feels_like: t - 3, temp_min: t - 1, temp_max: t + 1, pressure: 1012, humidity: 80 }, name: q.split(',')[0], cod: 200,
  }));
});

let rig: CentralRig | undefined;
let weather: CliProcess | undefined;
let base = '';
beforeAll(async () => {
  await new Promise<void>((r) => weatherServer.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(weatherServer.address() as { port: number }).port}`;
  rig = await CentralRig.start();
  for (const id of ['CP-701', 'CP-702']) { await rig.announce(id, 'boot-1', 0.35); await rig.status(id, 'ACTIVATED', 1); }
  await waitFor(async () => (await rig!.cp('CP-702'))?.state === 'ACTIVATED', { timeoutMs: 30_000, what: 'CPs ACTIVATED' });
}, 120_000);
afterAll(async () => {
  await weather?.kill('SIGTERM');
  for (const r of held) r.destroy();
  weatherServer.closeAllConnections();
  await new Promise<void>((r) => weatherServer.close(() => r()));
  await rig?.stop();
}, 60_000);

const warnings = (p: CliProcess, re: RegExp) => p.logs().filter((l) => Number(l.level) === 40 && re.test(String(l.msg)));
const rounds = async (n: number) => { const from = seen.length; await waitFor(() => seen.length >= from + n, { timeoutMs: 20_000, what: `${n} more weather requests` }); };

describe('weather service against an OpenWeather-format server', () => {
  it('freezing: out of service with the reason; warmer: back; a broken or slow source is one warning and changes nothing', async () => {
    const r = rig!;
    weather = spawnCli(['weather', '--central', r.centralUrl, '--admin-token', r.token, '--source', 'openweather', '--api-key', 'test-key',
      '--openweather-url', base, '--interval-s', '0.3', '--timeout-ms', '300', '--locations', 'CP-701=Oslo,NO;CP-702=Madrid,ES']);

    // −4.5 °C in Oslo: CP-701 out of service, with the reason at central; Madrid's CP-702 untouched.
    await waitFor(async () => (await r.cp('CP-701'))?.state === 'STOPPED', { timeoutMs: 20_000, what: `CP-701 out of service\n${weather!.lines.join('\n')}` });
    expect(seen[0]).toMatchObject({ appid: 'test-key', units: 'metric' });
    type W = Record<string, { out_of_service: boolean; temp_c: number; location: string }>;
    // Both CPs' reports (sent side by side) have arrived.
    const w1 = await waitFor(async () => { const w = (await r.get('/weather')).body.weather as W; return w['CP-701'] && w['CP-702'] ? w : undefined; }, { timeoutMs: 10_000, what: 'both weather records' });
    expect(w1['CP-701']).toMatchObject({ out_of_service: true, temp_c: -4.5, location: 'Oslo,NO' });
    expect(w1['CP-702']).toMatchObject({ out_of_service: false, temp_c: 18 });
    expect((await r.cp('CP-702'))?.state).toBe('ACTIVATED');
    await waitFor(() => r.of('central.commands', 'CP-701').some((c) => c.command === 'STOP_CP'), { timeoutMs: 10_000, what: 'STOP_CP to CP-701 on the bus' });
    await weather.waitForLine(/CP-701 out of service: -4\.5 °C in Oslo,NO/);

    // 2 °C: back in service.
    temps['Oslo,NO'] = 2;
    await waitFor(async () => (await r.cp('CP-701'))?.admin_stopped === false, { timeoutMs: 20_000, what: 'CP-701 back in service' });
    expect((await r.cp('CP-701'))?.state).toBe('ACTIVATED');
    await weather.waitForLine(/CP-701 back in service: 2\.0 °C/);

    // Broken source (HTTP 500) while Oslo freezes again: one warning, nothing changes.
    mode = 'broken';
    temps['Oslo,NO'] = -10;
    await waitFor(() => warnings(weather!, /weather source not answering/).length === 1, { timeoutMs: 10_000, what: 'the outage warning' });
    await rounds(4); // past any report of a round that began before the outage
    const before = (await r.get('/weather')).body.weather as Record<string, { at: number }>;
    await rounds(6);
    expect(warnings(weather, /weather source not answering/)).toHaveLength(1);
    expect(String(warnings(weather, /weather source not answering/)[0]!.err)).toMatch(/HTTP 500/);
    expect((await r.cp('CP-701'))?.state).toBe('ACTIVATED');
    expect(((await r.get('/weather')).body.weather as Record<string, { at: number }>)['CP-701']!.at).toBe(before['CP-701']!.at);

    // Back (warm), then slow: a second outage, again one warning, nothing changes.
    temps['Oslo,NO'] = 5;
    mode = 'ok';
    await weather.waitForLine(/weather source answers again/);
    mode = 'slow';
    temps['Oslo,NO'] = -10;
    await rounds(6);
    const all = warnings(weather, /weather source not answering/);
    expect(all).toHaveLength(2);
    expect(String(all[1]!.err)).toMatch(/no answer within 300 ms/);
    expect((await r.cp('CP-701'))?.state).toBe('ACTIVATED');
    expect((await r.cp('CP-702'))?.state).toBe('ACTIVATED');

    // No stack trace, no error line anywhere in its output.
    expect(weather.lines.filter((l) => /^\s+at |"level":50/.test(l))).toEqual([]);

    // When it answers again the frost takes effect.
    mode = 'ok';
    await waitFor(async () => (await r.cp('CP-701'))?.state === 'STOPPED', { timeoutMs: 20_000, what: 'CP-701 out of service again' });
  }, 120_000);
});
