import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { launchChromium, type TestBrowser } from '../helpers/browser.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig } from '../helpers/central-rig.js';

/**
 * Central's dashboard in real headless Chromium against a real central process: tiles carry
 * data-cp-id/data-state and change colour live (SSE, no reload) as CP statuses arrive on the
 * bus; the admin stop/resume buttons work with the token and show the refusal without it.
 */
let rig: CentralRig | undefined;
let browser: TestBrowser | undefined;
beforeAll(async () => {
  [rig, browser] = await Promise.all([CentralRig.start(), launchChromium()]);
  for (const id of ['CP-501', 'CP-502']) {
    await rig.announce(id, 'boot-1', 0.3);
    await rig.status(id, 'ACTIVATED', 1);
  }
  await waitFor(async () => (await rig!.cp('CP-502'))?.state === 'ACTIVATED', { timeoutMs: 30_000, what: 'CPs ACTIVATED' });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await rig?.stop();
}, 60_000);

const tile = (page: Page, id: string) => page.locator(`[data-cp-id="${id}"]`).first();
const state = (page: Page, id: string) => tile(page, id).getAttribute('data-state', { timeout: 2000 }).catch(() => null);
const colour = (page: Page, id: string) => tile(page, id).evaluate((el) => getComputedStyle(el).backgroundColor);

describe('central dashboard in headless Chromium', () => {
  it('shows live state and colours, and stops/resumes a CP with the admin token', async () => {
    const r = rig!;
    const page = await browser!.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
    await page.goto(`${r.centralUrl}/`, { waitUntil: 'domcontentloaded', timeout: 30_000 });
    await waitFor(async () => (await state(page, 'CP-501')) === 'ACTIVATED', { timeoutMs: 20_000, what: 'tile CP-501 ACTIVATED' });
    const green = await colour(page, 'CP-501');

    // A fault from the engine: the tile turns FAULTY and changes colour, live.
    await r.status('CP-501', 'FAULTY', 2, { faults: ['ground_fault'] });
    await waitFor(async () => (await state(page, 'CP-501')) === 'FAULTY', { timeoutMs: 20_000, what: 'tile CP-501 FAULTY' });
    await waitFor(async () => (await colour(page, 'CP-501')) !== green, { timeoutMs: 5_000, what: 'FAULTY colour' });
    const red = await colour(page, 'CP-501');

    // Stop without a token: refused, shown, nothing changes.
    await tile(page, 'CP-502').locator('button[data-action="stop"]').click();
    await waitFor(async () => /token/.test(await page.locator('#msg').textContent() ?? ''), { timeoutMs: 10_000, what: 'refusal shown' });
    expect((await r.cp('CP-502'))!.admin_stopped).toBe(false);

    // With the token: STOPPED (orange), then resumed.
    await page.fill('#token', r.token);
    await page.locator('#token').dispatchEvent('change');
    await tile(page, 'CP-502').locator('button[data-action="stop"]').click();
    await waitFor(async () => (await state(page, 'CP-502')) === 'STOPPED', { timeoutMs: 20_000, what: 'tile CP-502 STOPPED' });
    const orange = await colour(page, 'CP-502');
    expect(new Set([green, red, orange]).size).toBe(3);
    expect((await r.cp('CP-502'))!.admin_stopped).toBe(true);
    await tile(page, 'CP-502').locator('button[data-action="resume"]').click();
    await waitFor(async () => (await r.cp('CP-502'))?.admin_stopped === false, { timeoutMs: 20_000, what: 'CP-502 resumed at central' });
    // The hand-made CP has no engine to confirm; the engine status it last sent is ACTIVATED again.
    await waitFor(async () => (await state(page, 'CP-502')) === 'ACTIVATED', { timeoutMs: 20_000, what: 'tile CP-502 ACTIVATED' });

    // A lost link (the gateway's last-will status): grey DISCONNECTED.
    await r.status('CP-502', 'DISCONNECTED', 0, { source: 'last_will' });
    await waitFor(async () => (await state(page, 'CP-502')) === 'DISCONNECTED', { timeoutMs: 20_000, what: 'tile CP-502 DISCONNECTED' });
    const grey = await colour(page, 'CP-502');
    expect(new Set([green, red, orange, grey]).size).toBe(4);

    expect(navigations).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
