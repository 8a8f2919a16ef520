#!/usr/bin/env node
// Entry point of the `evcharging` command: runs the JavaScript built into dist/ (`npm run build`, run by `npm ci`).
try {
  await import('../dist/cli/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('evcharging: dist/ is missing; run `npm run build` (npm ci does it) first');
    process.exit(2);
  }
  throw err;
}
