import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { launchChromium, type TestBrowser } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig } from '../helpers/central-rig.js';

/**
 * Central's dashboard in real headless Chromium against a real gateway and central: the chart
 * of network power moves as telemetry arrives (no reload), the battery level shows on the
 * tile, stop all / resume all work with the admin token, and with 1,000 CPs the page keeps up
 * (the time from a bus message to the page, and the page's cost to draw an update, are printed).
 */
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const SMALL = ['CP-601', 'CP-602', 'CP-603'];
let rig: CentralRig | undefined;
let browser: TestBrowser | undefined;

beforeAll(async () => {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  [rig, browser] = await Promise.all([CentralRig.start(), launchChromium()]);
  for (const id of SMALL) { await rig.announce(id, 'boot-1', 0.35); await rig.status(id, 'ACTIVATED', 1); }
  await waitFor(async () => (await rig!.cp('CP-603'))?.state === 'ACTIVATED', { timeoutMs: 30_000, what: 'CPs ACTIVATED' });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await rig?.stop();
}, 60_000);

const tileState = (page: Page, id: string) => page.locator(`[data-cp-id="${id}"]`).first().getAttribute('data-state', { timeout: 2000 }).catch(() => null);
const chart = (page: Page) => page.evaluate(() => {
  const c = (window as unknown as { __chart?: { data: number[][] } }).__chart;
  return c ? { points: c.data[0]!.length, lastKw: c.data[1]!.at(-1) ?? 0, lastSessions: c.data[2]!.at(-1) ?? 0 } : null;
});
const dash = (page: Page) => page.evaluate(() => (window as unknown as { __dash: { renders: number; lastMs: number; maxMs: number; totalMs: number; cps: number } }).__dash);
const count = async (page: Page, filter: string) => Number(await page.locator(`#filters button[data-filter="${filter}"]`).getAttribute('data-count', { timeout: 2000 }).catch(() => '-1'));

describe('central dashboard, live, in headless Chromium', () => {
  let page: Page;
  const errors: string[] = [];
  let navigations = 0;

  it('the chart moves with the network power and the tile shows the battery, without a reload', async () => {
    const r = rig!;
    page = await browser!.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    page.on('pageerror', (e) => errors.push(e.message));
    // The one 401 is the test's own stop-all without a token (Chromium logs refused fetches).
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text()); });
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${r.centralUrl}/`, { waitUntil: 'domcontentloaded', timeout: 30_000 });
    await waitFor(async () => (await tileState(page, 'CP-601')) === 'ACTIVATED', { timeoutMs: 20_000, what: 'tile CP-601' });
    await waitFor(async () => (await chart(page))?.points, { timeoutMs: 20_000, what: 'chart drawn' });
    expect((await chart(page))!.lastKw).toBe(0);

    // A session with telemetry: 22 kW and a battery at 40 % → 46 %.
    const rid = await r.request('driver-dash', 'REQUEST', 'CP-601');
    const acc = await r.update('driver-dash', (u) => u.request_id === rid && u.status === 'ACCEPTED', 'ACCEPTED');
    const sessionId = String(acc.session_id);
    await r.status('CP-601', 'SUPPLYING', 2, { session_id: sessionId });
    let seq = 0;
    const telemetry = (soc: number) => r.publish('cp.telemetry', 'CP-601', {
      v: PROTOCOL_VERSION, type: 'telemetry', cp_id: 'CP-601', session_id: sessionId, kw: 22, kwh: 0.5 * ++seq, eur: 0.175 * seq, soc, seq, ts: Date.now(),
    });
    const before = (await chart(page))!.points;
    await waitFor(async () => {
      await telemetry(0.4 + seq * 0.01);
      const c = await chart(page);
      return c && c.lastKw >= 22 && c.points > before && c.lastSessions === 1;
    }, { timeoutMs: 30_000, intervalMs: 400, what: 'chart shows 22 kW and 1 session' });
    await waitFor(async () => /battery \d+%/.test(await page.locator('[data-cp-id="CP-601"]').textContent() ?? ''), { timeoutMs: 10_000, what: 'battery on the tile' });
    expect(await page.locator('[data-cp-id="CP-601"] .battery').count()).toBe(1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-live-chart.png'), fullPage: true });
    expect(navigations).toBe(1);
  }, 90_000);

  it('stop all and resume all, with the admin token', async () => {
    const r = rig!;
    await page.fill('#token', r.token);
    await page.locator('#token').dispatchEvent('change');
    await page.locator('#stop-all').click();
    await waitFor(async () => (await Promise.all(SMALL.map((id) => tileState(page, id)))).every((s) => s === 'STOPPED'), { timeoutMs: 20_000, what: 'every tile STOPPED' });
    expect(await page.locator('#msg').textContent()).toMatch(/stop all: 3 CPs/);
    for (const id of SMALL) expect((await r.cp(id))!.admin_stopped).toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-stopped-all.png'), fullPage: true });
    await page.locator('#resume-all').click();
    await waitFor(async () => (await Promise.all(SMALL.map((id) => r.cp(id)))).every((c) => c?.admin_stopped === false), { timeoutMs: 20_000, what: 'every CP resumed at central' });
    await waitFor(async () => (await Promise.all(SMALL.map((id) => tileState(page, id)))).every((s) => s !== 'STOPPED'), { timeoutMs: 20_000, what: 'no tile STOPPED' });
    // Without the token: refused, and nothing stops.
    await page.fill('#token', '');
    await page.locator('#token').dispatchEvent('change');
    await page.locator('#stop-all').click();
    await waitFor(async () => /token/.test(await page.locator('#msg').textContent() ?? ''), { timeoutMs: 10_000, what: 'refusal shown' });
    for (const id of SMALL) expect((await r.cp(id))!.admin_stopped).toBe(false);
    expect(navigations).toBe(1);
  }, 60_000);

  it("the weather's reason on the tile: out of service at −3 °C, back at 4 °C", async () => {
    const r = rig!;
    const report = (temp: number) => r.post('/weather/report', { body: { cp_id: 'CP-602', location: 'Oslo,NO', temp_c: temp } });
    expect((await report(-3)).body).toMatchObject({ out_of_service: true, action: 'take_out' });
    const tile = page.locator('[data-cp-id="CP-602"]');
    await waitFor(async () => (await tileState(page, 'CP-602')) === 'STOPPED' && (await tile.locator('.why').textContent().catch(() => '')) === 'out of service: -3.0 °C in Oslo,NO',
      { timeoutMs: 20_000, what: 'weather reason on the tile' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-weather.png'), fullPage: true });
    expect((await report(4)).body).toMatchObject({ out_of_service: false, action: 'bring_back' });
    await waitFor(async () => (await tileState(page, 'CP-602')) === 'ACTIVATED', { timeoutMs: 20_000, what: 'CP-602 back' });
    expect((await r.post('/weather/report', { token: null, body: { cp_id: 'CP-602', location: 'Oslo,NO', temp_c: -9 } })).status).toBe(401);
    expect((await r.post('/weather/report', { body: { cp_id: 'CP-602', temp_c: 'cold' } })).status).toBe(400);
  }, 60_000);

  it('1,000 CPs: counts, map and one page of tiles keep up; prints the time to render an update', async () => {
    const r = rig!;
    const ids = Array.from({ length: 997 }, (_, i) => `CP-${String(1001 + i)}`);
    for (let i = 0; i < ids.length; i += 100) {
      await Promise.all(ids.slice(i, i + 100).map(async (id) => { await r.announce(id, 'boot-1', 0.35); await r.status(id, 'ACTIVATED', 1); }));
    }
    await waitFor(async () => ((await r.get('/cp')).body.charging_points as unknown[]).length === 1000, { timeoutMs: 60_000, intervalMs: 500, what: '1,000 CPs at central' });
    await waitFor(async () => (await count(page, 'ALL')) === 1000 && (await dash(page)).cps === 1000, { timeoutMs: 30_000, what: 'page shows 1,000 CPs' });
    // One page of tiles, not a wall of 1,000.
    expect(await page.locator('#tiles .tile').count()).toBeLessThanOrEqual(48);
    expect(await page.locator('#range').textContent()).toMatch(/of 1000/);

    // One CP faults: from the bus message to the page's counts.
    const d0 = await dash(page);
    const sent = Date.now();
    await r.status('CP-1500', 'FAULTY', 2, { faults: ['ground_fault'] });
    await waitFor(async () => (await count(page, 'FAULTY')) === 1, { timeoutMs: 20_000, intervalMs: 20, what: 'faulty count 1' });
    const toPage = Date.now() - sent;
    // Responsive: the filter answers a click at once with the one faulty CP and its reason.
    const clicked = Date.now();
    await page.locator('#filters button[data-filter="FAULTY"]').click();
    await waitFor(async () => (await page.locator('#tiles .tile').count()) === 1, { timeoutMs: 5_000, intervalMs: 10, what: 'filter shows one tile' });
    const filterMs = Date.now() - clicked;
    expect(await page.locator('[data-cp-id="CP-1500"] .why').textContent()).toBe('fault: ground fault');
    const d1 = await dash(page);
    const renders = d1.renders - d0.renders;
    console.log(`dashboard at 1,000 CPs: bus message → page ${toPage} ms; filter click → tiles ${filterMs} ms; `
      + `render of one update ${d1.lastMs.toFixed(1)} ms (max ${d1.maxMs.toFixed(1)} ms, mean ${(d1.totalMs / d1.renders).toFixed(1)} ms over ${d1.renders} renders, ${renders} since the fault)`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-1000-faulty.png'), fullPage: true });
    await page.locator('#filters button[data-filter="ALL"]').click();
    await waitFor(async () => (await page.locator('#tiles .tile').count()) === 48, { timeoutMs: 5_000, what: 'all again' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-1000.png') });
    expect(navigations).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  }, 150_000);
});
