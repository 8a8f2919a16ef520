/**
 * Dashboard benchmark: a real gateway and central (test/helpers/central-rig), N CPs announced
 * on the bus, the dashboard open in headless Chromium. For each N it prints the snapshot size,
 * the page's cost to draw one update (window.__dash), and the time from a CP's status on the
 * bus to the page's counts showing it (p50/max over a few faults).
 *   npx tsx bench/dashboard.ts [1000,10000]
 */
import { launchChromium } from '../test/helpers/browser.js';
import { CentralRig } from '../test/helpers/central-rig.js';

const sizes = (process.argv[2] ?? '1000,10000').split(',').map(Number).filter((n) => n > 0);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
const wait = async (what: string, probe: () => Promise<boolean>, ms = 300_000) => {
  const end = Date.now() + ms;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

for (const n of sizes) {
  const [rig, browser] = await Promise.all([CentralRig.start(), launchChromium()]);
  try {
    const ids = Array.from({ length: n }, (_, i) => `CP-${String(i + 1).padStart(5, '0')}`);
    const t0 = Date.now();
    for (let i = 0; i < ids.length; i += 200) {
      await Promise.all(ids.slice(i, i + 200).map(async (id) => { await rig.announce(id, 'boot-1', 0.35); await rig.status(id, 'ACTIVATED', 1); }));
    }
    await wait(`${n} CPs at central`, async () => ((await rig.get('/cp')).body.charging_points as unknown[]).length === n);
    const registered = Date.now() - t0;
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    const opened = Date.now();
    await page.goto(`${rig.centralUrl}/`, { waitUntil: 'domcontentloaded' });
    const dash = () => page.evaluate(() => (window as unknown as { __dash: { renders: number; lastMs: number; maxMs: number; totalMs: number; cps: number } }).__dash);
    await wait('page shows every CP', async () => (await dash()).cps === n);
    const firstPaint = Date.now() - opened;
    const snapshotBytes = Buffer.byteLength(JSON.stringify((await rig.get('/cp')).body));
    const toPage: number[] = [];
    for (let k = 0; k < 5; k++) {
      const id = ids[Math.floor((k + 0.5) * n / 5)]!;
      const sent = Date.now();
      await rig.status(id, 'FAULTY', 2 + k, { faults: ['ground_fault'] });
      await wait('faulty count', async () => Number(await page.locator('#filters button[data-filter="FAULTY"]').getAttribute('data-count')) === k + 1);
      toPage.push(Date.now() - sent);
    }
    const d = await dash();
    console.log(`${n} CPs: registered in ${(registered / 1000).toFixed(1)} s; page first shows all ${firstPaint} ms; CP list ~${(snapshotBytes / 1024).toFixed(0)} KiB; `
      + `draw one update: last ${d.lastMs.toFixed(1)} ms, mean ${(d.totalMs / d.renders).toFixed(1)} ms, max ${d.maxMs.toFixed(1)} ms (${d.renders} renders); `
      + `bus status → page counts: p50 ${pct(toPage, 50)} ms, max ${Math.max(...toPage)} ms`);
    await page.close();
  } finally {
    await browser.close();
    await rig.stop();
  }
}
