import type { Logger } from '../../lib/log.js';
import type { OcppLink } from './ocpp-link.js';

/**
 * On an OCPP charge point's terminal a driver is simulated by keys: p plugs a vehicle in and
 * presents the id tag (Authorize, then a locally started transaction), u stops it at the charge
 * point (OCPP reason Local). The fault keys (f, t, m, r) keep working beside these.
 */
export function attachDriverKeys(stdin: NodeJS.ReadStream, link: OcppLink, idTag: string, log: Logger): void {
  log.info({ id_tag: idTag }, 'keys: p = plug in and present the id tag, u = stop and unplug');
  stdin.on('data', (key: string) => {
    const k = key.toLowerCase();
    if (k === 'p') void link.localStart(idTag).then((ok) => log.info({ id_tag: idTag, ok }, ok ? 'local transaction started' : 'local start refused (not idle, offline or id tag not accepted)'));
    else if (k === 'u') void link.localStop().then((ok) => { if (!ok) log.info('no transaction to stop'); });
  });
}
