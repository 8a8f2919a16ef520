import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findChromium, launchChromium } from '../helpers/browser.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The browser helper the dashboard test relies on: it finds the system's Chromium (never a
 * downloaded one), runs it headless, and a page served from a local HTTP server receives
 * server-sent events and updates itself without a reload.
 */
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => { for (const c of cleanup.reverse()) await c(); });

describe('findChromium', () => {
  it('takes CHROMIUM_PATH, else chromium on PATH, and names what is missing', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'find-chromium-'));
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    const fake = path.join(dir, 'chromium-browser');
    await fs.writeFile(fake, '#!/bin/sh\n', { mode: 0o755 });
    const notExec = path.join(dir, 'chromium');
    await fs.writeFile(notExec, '', { mode: 0o644 });

    expect(findChromium({ PATH: dir })).toBe(fake); // `chromium` there is not executable, `chromium-browser` is
    expect(findChromium({ CHROMIUM_PATH: fake, PATH: '' })).toBe(fake);
    expect(() => findChromium({ CHROMIUM_PATH: notExec })).toThrow(/CHROMIUM_PATH is not an executable/);
    expect(() => findChromium({ PATH: path.join(dir, 'nowhere') })).toThrow(/no Chromium found/);
  });
});

describe('launchChromium', () => {
  it('runs the system Chromium headless: a local page gets live events over SSE without reloading', async () => {
    let push: ((data: string) => void) | undefined;
    const server = http.createServer((req, res) => {
      if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(': hello\n\n');
        push = (data) => res.write(`data: ${data}\n\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><div id="tile" data-state="ACTIVATED">tile</div><script>
        new EventSource('/events').onmessage = (e) => { document.getElementById('tile').dataset.state = e.data; };
      </script>`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));

    const b = await launchChromium();
    cleanup.push(() => b.close());
    expect(b.executablePath).toBe(findChromium());
    expect(b.context.browser()?.version() ?? '').toMatch(/^\d+\./);
    const page = await b.context.newPage();
    let navigations = 0;
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(await page.getAttribute('#tile', 'data-state')).toBe('ACTIVATED');
    expect(await page.evaluate(() => navigator.userAgent)).toMatch(/HeadlessChrome/);

    await waitFor(() => push, { timeoutMs: 15_000, what: 'the page opened its event stream' });
    push!('FAULTY');
    await waitFor(async () => (await page.getAttribute('#tile', 'data-state')) === 'FAULTY', { timeoutMs: 15_000, what: 'the tile updated live' });
    expect(navigations).toBe(1);
  }, 90_000);
});
