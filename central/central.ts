import { randomBytes } from 'node:crypto';
import type { Logger } from '../lib/log.js';
import { retryWithBackoff } from '../lib/backoff.js';
import { errText } from '../lib/log.js';
import { createBus } from '../bus/create.js';
import type { Bus, BusConfig } from '../bus/types.js';
import { Controller } from './controller.js';
import type { RulesOptions } from './rules/index.js';
import type { PreloadedCp } from './cp-file.js';
import { buildHttp } from './http.js';
import { Store } from './store.js';
import { ListenError } from '../lib/errors.js';

/**
 * Wires central together: the store (replayed), the controller, the bus subscriptions and
 * the HTTP server. HTTP serves at once; the bus is waited for with backoff in the background
 * (said once), so /health answers while the gateway or Kafka is still coming up.
 */

export interface CentralOptions {
  host: string;
  port: number;
  dataDir: string;
  adminToken?: string;
  preload: PreloadedCp[];
  monitorTimeoutMs: number;
  endGraceMs: number;
  startConfirmMs: number;
  /** CPs a monitor report may add to the registry (reports over HTTP are not authenticated like CPs are). */
  maxCps: number;
  /** The rest of central's rules' options (rules/types.ts DEFAULT_RULES when absent). */
  rules?: Partial<Omit<RulesOptions, 'newId'>>;
  bus: BusConfig;
  log: Logger;
}

export interface RunningCentral { url: string; adminToken: string; controller: Controller; bus: Bus; close(): Promise<void> }

export const CENTRAL_GROUP = 'evcharging-central';

export async function startCentral(o: CentralOptions): Promise<RunningCentral> {
  const { log } = o;
  const { store, report } = await Store.open(o.dataDir);
  log.info({ data_dir: o.dataDir, ...report, charging_points: store.state.cps.size, sessions: store.state.sessions.size }, 'state loaded');
  if (report.tornTail) log.warn({ data_dir: o.dataDir }, 'journal ended in a torn line (crash mid-write); it was dropped');
  if (report.badLines) log.warn({ data_dir: o.dataDir, bad_lines: report.badLines }, 'journal lines that are not events were skipped');

  // Preloaded CPs join the registry once; what the engines said later is kept.
  const now = Date.now();
  await store.append(o.preload.filter((p) => !store.state.cps.has(p.cp_id) || (p.profile && !store.state.cps.get(p.cp_id)!.profile))
    .map((p) => ({ t: 'cp_seen' as const, cp_id: p.cp_id, source: 'file' as const, profile: p.profile, at: now })));

  let adminToken = o.adminToken;
  if (!adminToken) {
    adminToken = randomBytes(12).toString('hex');
    log.warn({ admin_token: adminToken }, `no --admin-token (CENTRAL_ADMIN_TOKEN) given: generated dev admin token ${adminToken}`);
  }

  const bus = createBus(o.bus, log.child({ part: 'bus' }));
  const controller = new Controller(store, (topic, key, value) => bus.publish(topic, key, value), log, {
    monitorTimeoutMs: o.monitorTimeoutMs, endGraceMs: o.endGraceMs, startConfirmMs: o.startConfirmMs, maxCps: o.maxCps, ...o.rules,
    busUp: () => bus.health().consumer === 'connected',
  });
  const group = { group: CENTRAL_GROUP };
  // Kafka commits a message's offset when its handler resolves: resolve only once what it changed
  // is on disk, so a crash redelivers it. The embedded adapter acknowledges when the handler
  // resolves too, but waiting for the fsync there would read one message per fsync (the MQTT
  // client reads the next only after the ack); the window left is one group-commit interval.
  const settled = (p: Promise<void>) => (bus.kind === 'kafka' ? p.then(() => store.durable()) : p);
  // The registry rebuilds from the whole status history on a new Kafka group; requests and telemetry are live only.
  // The key is the sender as the gateway authenticated it (a CP id, a gateway id, a driver id): the rules check it.
  bus.subscribe('cp.status', (m, meta) => settled(controller.onCpStatusTopic(m, meta)), { ...group, fromBeginning: true });
  bus.subscribe('cp.telemetry', (m, meta) => settled(controller.onTelemetry(m, meta)), group);
  bus.subscribe('driver.requests', (m, meta) => settled(controller.onDriverRequest(m, meta)), group);

  const app = buildHttp(controller, bus, log, { adminToken, busKind: bus.kind });
  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (err) {
    await store.close();
    throw new ListenError(`cannot listen on ${o.host}:${o.port}: ${errText(err)}`);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const url = `http://${o.host === '0.0.0.0' || o.host === '::' ? 'localhost' : o.host}:${port}`;
  log.info({ url, dashboard: `${url}/`, bus: bus.kind }, `central ready at ${url}`);

  const abort = new AbortController();
  void retryWithBackoff(() => bus.start(), {
    signal: abort.signal,
    onWaiting: (err) => log.warn({ err: errText(err) }, 'bus not reachable yet, retrying with backoff'),
  }).then(() => {
    log.info({ bus: bus.kind }, 'bus connected');
    controller.resendPending();
  }, () => undefined);

  const sweep = setInterval(() => { void controller.sweep().catch((err: Error) => log.error({ err: err.message }, 'sweep failed')); }, 250);

  return {
    url, adminToken, controller, bus,
    async close() {
      clearInterval(sweep);
      abort.abort();
      await app.close();
      await bus.close().catch(() => undefined);
      await controller.idle();
      await store.close();
    },
  };
}

export { ListenError };
