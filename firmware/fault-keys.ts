import type { FaultKind } from '../protocol/index.js';
import type { Logger } from '../lib/log.js';
import type { Engine } from './engine.js';

export const FAULT_KEYS: Record<string, FaultKind> = { f: 'ground_fault', t: 'over_temperature', m: 'meter_failure' };

/** Single key presses on a terminal simulate hardware: f, t, m inject a fault, r repairs everything. */
export function attachFaultKeys(stdin: NodeJS.ReadStream, engine: Pick<Engine, 'injectFault' | 'repair'>, log: Logger): void {
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  log.info('keys: f = ground fault, t = over-temperature, m = meter failure, r = repair, Ctrl-C = stop');
  stdin.on('data', (key: string) => {
    if (key === '\u0003') { process.kill(process.pid, 'SIGINT'); return; }
    const kind = FAULT_KEYS[key.toLowerCase()];
    try {
      if (kind) engine.injectFault(kind);
      else if (key.toLowerCase() === 'r') engine.repair();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot simulate that on this hardware');
    }
  });
}
