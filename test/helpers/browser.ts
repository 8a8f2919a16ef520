import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Headless Chromium for browser tests, driven by playwright-core. The browser is the one the
 * system provides (CHROMIUM_PATH, else `chromium` or `chromium-browser` on PATH); a browser is
 * never downloaded. Each launch gets a fresh profile directory (playwright takes it as the
 * persistent context's user data dir rather than a --user-data-dir flag), removed on close.
 */

const NAMES = ['chromium', 'chromium-browser'];

/** CHROMIUM_PATH when set, else the first `chromium`/`chromium-browser` executable on PATH. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CHROMIUM_PATH) {
    if (!isExecutable(env.CHROMIUM_PATH)) throw new Error(`CHROMIUM_PATH is not an executable file: ${env.CHROMIUM_PATH}`);
    return env.CHROMIUM_PATH;
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of NAMES) {
      const candidate = path.join(dir, name);
      if (isExecutable(candidate)) return candidate;
    }
  }
  throw new Error('no Chromium found: install the chromium package or set CHROMIUM_PATH');
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export interface TestBrowser {
  /** The browser's one context; open pages with `context.newPage()`. */
  context: BrowserContext;
  executablePath: string;
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh --user-data-dir; `close()` ends it and removes the profile. */
export async function launchChromium(): Promise<TestBrowser> {
  const executablePath = findChromium();
  const userDataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'chromium-profile-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      timeout: 60_000,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run',
      ],
    });
  } catch (err) {
    await fsp.rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    context,
    executablePath,
    close: async () => {
      await context.close().catch(() => undefined);
      await fsp.rm(userDataDir, { recursive: true, force: true });
    },
  };
}
