import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type TestBrowser } from '../helpers/browser.js';
import { REPO_ROOT } from '../helpers/processes.js';
import { TestNetwork, timeUntil } from '../helpers/network.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Central's live dashboard in real headless Chromium: a CP tile turns from available to down
 * when its engine is killed with SIGKILL, and back when it restarts, with no page reload (live
 * updates over SSE). A screenshot of each moment is saved to test-artifacts/.
 */
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const UP = ['ACTIVATED', 'SUPPLYING'];
const DOWN = ['FAULTY', 'DISCONNECTED'];

let net: TestNetwork | undefined;
let browser: TestBrowser | undefined;
beforeAll(async () => {
  [net, browser] = await Promise.all([TestNetwork.start({ speed: 60 }), launchChromium()]);
  await Promise.all([net.addCp({ id: 'CP-001', profile: 'ac-22kw' }), net.addCp({ id: 'CP-002', profile: 'dc-50kw' })]);
  for (const id of ['CP-001', 'CP-002']) await net.waitCp(id, ['ACTIVATED'], { monitor: 'OK', timeoutMs: 60_000 });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await net?.stop();
}, 60_000);

const tileState = (page: Page, id: string) => page.locator(`[data-cp-id="${id}"]`).first().getAttribute('data-state', { timeout: 2000 }).catch(() => null);
const tileLook = (page: Page, id: string) => page.locator(`[data-cp-id="${id}"]`).first().evaluate((el) => {
  const s = getComputedStyle(el);
  return `${s.backgroundColor} ${s.borderColor} ${s.color}`;
});

/** The tile's look once two reads a quarter second apart agree (any colour transition has ended). */
async function settledLook(page: Page, id: string): Promise<string> {
  let previous: string | undefined;
  return waitFor(async () => {
    const now = await tileLook(page, id);
    const settled = now === previous ? now : undefined;
    previous = now;
    return settled;
  }, { timeoutMs: 15_000, intervalMs: 250, what: `tile ${id} to settle` });
}

describe('dashboard in headless Chromium', () => {
  it('shows a CP tile go down on engine SIGKILL and come back on restart, live, without a reload', async () => {
    const n = net!;
    const page = await browser!.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });

    const res = await page.goto(`${n.centralUrl}/`, { waitUntil: 'domcontentloaded', timeout: 30_000 });
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type']).toMatch(/text\/html/);
    await waitFor(async () => UP.includes(String(await tileState(page, 'CP-001'))), { timeoutMs: 30_000, what: 'tile CP-001 available' });
    await waitFor(async () => UP.includes(String(await tileState(page, 'CP-002'))), { timeoutMs: 30_000, what: 'tile CP-002 available' });
    const lookUp = await settledLook(page, 'CP-001');
    // A marker on this document: a reload or navigation would lose it.
    const marker = `e2e-${Math.random().toString(36).slice(2)}`;
    await page.evaluate((m) => { (window as unknown as { __e2eMarker: string }).__e2eMarker = m; }, marker);
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-e2e-up.png'), fullPage: true });

    const killedAt = Date.now();
    await n.kill('CP-001');
    const down = await timeUntil(killedAt, async () => {
      const s = await tileState(page, 'CP-001');
      return s && DOWN.includes(s) ? s : undefined;
    }, { timeoutMs: 30_000, what: 'tile CP-001 down' });
    console.log(`engine SIGKILL → dashboard tile ${down.value} in ${down.seconds.toFixed(2)} s`);
    // It changes colour (waited for until it settles: a CSS transition may be running).
    const lookDown = await settledLook(page, 'CP-001');
    expect(lookDown).not.toBe(lookUp);
    const shot = path.join(ARTIFACTS, 'dashboard-e2e-down.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect((await fs.stat(shot)).size).toBeGreaterThan(1000);

    // The other tile did not move, and the page was never reloaded.
    expect(UP).toContain(await tileState(page, 'CP-002'));
    expect(await page.evaluate(() => (window as unknown as { __e2eMarker?: string }).__e2eMarker)).toBe(marker);
    expect(navigations).toBe(1);

    await n.restart('CP-001');
    await waitFor(async () => UP.includes(String(await tileState(page, 'CP-001'))), { timeoutMs: 45_000, what: 'tile CP-001 available again' });
    expect(await settledLook(page, 'CP-001')).toBe(lookUp);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-e2e-back.png'), fullPage: true });
    expect(await page.evaluate(() => (window as unknown as { __e2eMarker?: string }).__e2eMarker)).toBe(marker);
    expect(navigations).toBe(1);
    expect(problems).toEqual([]);
  }, 150_000);
});
