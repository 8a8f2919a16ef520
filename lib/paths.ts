import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package's root folder, found from here in the sources and in dist/ (the first folder up with package.json); undefined inside the firmware bundle. */
function findRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

export const PACKAGE_ROOT = findRoot() ?? process.cwd();

/** The product's version: package.json's, the one place it is written (the firmware bundle is given it at build time). */
export const VERSION: string = process.env.EVCHARGING_VERSION ?? (() => {
  try { return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version; } catch { return '0.0.0'; }
})();

/** The `evcharging` command's entry, which child processes are started with. */
export const CLI_ENTRY = path.join(PACKAGE_ROOT, 'bin', 'evcharging.js');
