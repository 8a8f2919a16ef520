import readline from 'node:readline';
import { ID_PATTERN } from '../protocol/index.js';
import type { Driver } from './driver.js';

/**
 * Terminal mode: type a CP id to request a charge, `stop` to stop the session in progress,
 * `quit` (or Ctrl-D) to end. Resolves when the user quits and queued sessions are over.
 */
export function runInteractive(driver: Driver, out: (line: string) => void, input: NodeJS.ReadableStream = process.stdin): Promise<void> {
  const rl = readline.createInterface({ input, terminal: false });
  out('type a CP id to request a charge, "stop" to stop it, "quit" to end');
  const pending: Array<Promise<unknown>> = [];
  return new Promise((resolve) => {
    rl.on('line', (raw) => {
      const t = raw.trim();
      if (!t) return;
      if (/^stop$/i.test(t)) { void driver.stopCurrent().then((ok) => { if (!ok) out('no session in progress'); }); return; }
      if (/^(quit|exit)$/i.test(t)) { rl.close(); return; }
      if (!ID_PATTERN.test(t)) { out(`not a CP id: ${JSON.stringify(t.slice(0, 64))}`); return; }
      pending.push(driver.submit(t).done);
    });
    rl.on('close', () => { void Promise.all(pending).then(() => resolve()); });
  });
}
