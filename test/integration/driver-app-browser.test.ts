import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type TestBrowser } from '../helpers/browser.js';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, spawnCli, type CliProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig } from '../helpers/central-rig.js';

/**
 * The driver app in real headless Chromium on a phone-sized screen: a real driver process
 * (`evcharging driver --http PORT`) beside a real gateway, central and CP engine. From the page:
 * the CP list with power, price and state, a request, live kW/kWh/€/battery/time pushed without
 * a reload, stop, the ticket and the history. Screenshots go to test-artifacts/.
 */
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
let rig: CentralRig | undefined;
let browser: TestBrowser | undefined;
let driver: CliProcess | undefined;
let appUrl = '';
const DRIVER = `driver-web-${process.pid}`;
const CP = 'CP-801';

beforeAll(async () => {
  await fs.mkdir(ARTIFACTS, { recursive: true });
  [rig, browser] = await Promise.all([CentralRig.start(), launchChromium()]);
  // Slow enough (speed 20) that a session runs for many seconds before the vehicle is full.
  await rig.addEngine(CP, 'ac-22kw', 20);
  const port = await freePort();
  driver = spawnCli(['driver', '--id', DRIVER, '--http', String(port), '--http-host', '127.0.0.1', '--central', rig.centralUrl, '--bus-mqtt', rig.mqttUrl, '--wait-s', '0']);
  appUrl = `http://127.0.0.1:${port}/`;
  await waitFor(async () => {
    if (driver!.child.exitCode !== null) throw new Error(`driver exited:\n${driver!.lines.join('\n')}`);
    try { return (await fetch(`${appUrl}health`)).ok; } catch { return false; }
  }, { timeoutMs: 30_000, what: 'driver app up' });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await driver?.kill('SIGTERM');
  await rig?.stop();
}, 60_000);

describe('driver app in headless Chromium', () => {
  it('request, live progress, stop, ticket and history, on a phone-sized page without reloads', async () => {
    const page = await browser!.context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
    await page.goto(appUrl, { waitUntil: 'domcontentloaded', timeout: 30_000 });

    // The CP list: power, price, state, and a button that is enabled while it is available.
    const row = page.locator(`#cps li[data-cp-id="${CP}"]`);
    await waitFor(async () => (await row.count()) === 1 && /available/i.test(await row.textContent() ?? ''), { timeoutMs: 20_000, what: 'CP row available' });
    expect(await row.textContent()).toMatch(/22 kW · 0\.\d\d €\/kWh/);
    expect(await page.locator('#who').textContent()).toBe(DRIVER);
    await page.screenshot({ path: path.join(ARTIFACTS, 'driver-app-1-cps.png'), fullPage: true });

    // Request: live figures pushed and growing.
    await row.locator('button[data-request]').click();
    await waitFor(async () => /charging at CP-801/.test(await page.locator('#status').textContent() ?? ''), { timeoutMs: 30_000, what: 'charging shown' });
    const kwh = async () => Number(await page.locator('#kwh').textContent());
    await waitFor(async () => (await kwh()) > 0, { timeoutMs: 20_000, what: 'kWh above 0' });
    const first = await kwh();
    await waitFor(async () => (await kwh()) > first, { timeoutMs: 20_000, what: 'kWh growing live' });
    expect(Number(await page.locator('#kw').textContent())).toBeGreaterThan(0);
    expect(await page.locator('#soc').textContent()).toMatch(/battery \d+%/);
    await waitFor(async () => /^\d+:\d\d$/.test(await page.locator('#time').textContent() ?? ''), { timeoutMs: 10_000, what: 'time shown' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'driver-app-2-charging.png'), fullPage: true });

    // Stop: the ticket (kWh, €, reason) and a history row.
    await page.locator('#stop').click();
    await waitFor(async () => page.locator('#ticket').isVisible(), { timeoutMs: 30_000, what: 'ticket shown' });
    const ticket = await page.locator('#ticket-body').textContent() ?? '';
    expect(ticket).toMatch(/\d+\.\d{3} kWh/);
    expect(ticket).toMatch(/\d+\.\d\d €/);
    expect(ticket).toMatch(/driver stop/);
    await waitFor(async () => (await page.locator('#history tr').first().textContent() ?? '').includes(CP), { timeoutMs: 20_000, what: 'history row' });
    expect(await page.locator('#status').textContent()).toMatch(/not charging/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'driver-app-3-ticket.png'), fullPage: true });

    // Central billed the same session the page shows.
    const sessions = await rig!.sessions();
    const mine = sessions.filter((s) => s.driver_id === DRIVER);
    expect(mine).toHaveLength(1);
    expect(ticket).toContain(String(mine[0]!.session_id));
    // Nothing wider than the phone's screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(navigations).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
