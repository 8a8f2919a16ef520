import { randomBytes } from 'node:crypto';
import type { Logger } from '../lib/log.js';
import { retryWithBackoff } from '../lib/backoff.js';
import { errText } from '../lib/log.js';
import { createBus } from '../bus/create.js';
import { busUp, type Bus, type BusConfig } from '../bus/types.js';
import { reachableUrls } from '../lib/addresses.js';
import { Controller } from './controller.js';
import { sweepEveryMs, type RulesOptions } from './rules/index.js';
import type { PreloadedCp } from './cp-file.js';
import { buildHttp } from './http.js';
import { Store } from './store.js';
import { ListenError } from '../lib/errors.js';
import path from 'node:path';
import { AuditLog } from '../lib/audit.js';
import type { HttpLimits } from '../lib/http-limits.js';
import { createMonitorAuth } from './monitor-auth.js';
import { watchCredentials, type CredentialsWatch } from '../registry/credentials-watch.js';
import { buildRegistry } from '../registry/server.js';

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
  /** The credentials file (as the gateway's): set, monitors must authenticate; unset is dev mode. */
  credentialsFile?: string;
  /** Audit log file (default <data-dir>/audit.jsonl). */
  auditFile?: string;
  limits?: HttpLimits;
  maxSseClients?: number;
  sseMaxBufferedBytes?: number;
  sseMaxStallMs?: number;
  /** Serve the registry (HTTPS) on this port, writing credentialsFile. */
  registry?: { host: string; port: number; tlsCert: string; tlsKey: string };
}

export interface RunningCentral { url: string; adminToken: string; controller: Controller; bus: Bus; registryUrl?: string; close(): Promise<void> }

export const CENTRAL_GROUP = 'evcharging-central';

export async function startCentral(o: CentralOptions): Promise<RunningCentral> {
  const { log } = o;
  const { store, report } = await Store.open(o.dataDir);
  log.info({ data_dir: o.dataDir, ...report, charging_points: store.state.cps.size, sessions: store.state.sessions.size }, 'state loaded');
  if (report.tornSavedTo) log.warn({ data_dir: o.dataDir, kept_in: report.tornSavedTo }, `journal ended in a torn line (crash mid-write): not replayed, its bytes kept in ${report.tornSavedTo}`);

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
  const controller = new Controller(store, (topic, key, value, opts) => bus.publish(topic, key, value, opts), log, {
    monitorTimeoutMs: o.monitorTimeoutMs, endGraceMs: o.endGraceMs, startConfirmMs: o.startConfirmMs, maxCps: o.maxCps, ...o.rules,
    busUp: () => bus.health().consumer === 'connected',
  });
  // perInstance: a restarted central on Kafka serves at once instead of waiting for its killed predecessor's session to time out.
  const group = { group: CENTRAL_GROUP, perInstance: true };
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

  store.onFailure((err) => log.error({ err: err.message, data_dir: o.dataDir }, 'journal write failed: central is unhealthy and refuses new work until the disk is fixed and it is restarted'));
  const audit = new AuditLog({ file: o.auditFile ?? path.join(o.dataDir, 'audit.jsonl') });
  // Every refused forged bus input is audited (rate-limited per source inside the log).
  controller.onRefused((r) => {
    try { audit.record({ identity: r.source, source: 'bus', action: `bus.${r.counter}`, outcome: 'refused', params: { what: r.what, ...r.fields } }); } catch (err) { log.error({ err: errText(err) }, 'audit write failed'); }
  });
  let creds: CredentialsWatch | undefined;
  if (o.credentialsFile) {
    creds = watchCredentials(o.credentialsFile, { onError: (err) => log.error({ err: err.message }, 'credentials file unreadable; keeping the last good one') });
  }
  const app = buildHttp(controller, bus, log, {
    adminToken, busKind: bus.kind, limits: o.limits, audit, journalFailure: () => store.failure, durable: () => store.durable(),
    maxSseClients: o.maxSseClients, sseMaxBufferedBytes: o.sseMaxBufferedBytes, sseMaxStallMs: o.sseMaxStallMs,
    monitorAuth: creds ? createMonitorAuth((id) => creds!.get(id)) : undefined,
  });
  let registry: ReturnType<typeof buildRegistry> | undefined;
  if (o.registry) {
    if (!o.credentialsFile) throw new ListenError('the registry needs a credentials file to write');
    registry = buildRegistry({
      credentialsFile: o.credentialsFile, adminToken, audit, log: log.child({ part: 'registry' }), limits: o.limits,
      tls: { cert: o.registry.tlsCert, key: o.registry.tlsKey },
      // A revoked CP is out of service at once: stopped as an admin would, so no request is accepted for it.
      onRevoke: async (e) => {
        creds?.reload();
        if (e.role === 'cp' && controller.state.cps.has(e.id)) await controller.adminSet(e.id, true);
      },
      onRegister: () => creds?.reload(),
    });
  }
  try {
    await app.listen({ host: o.host, port: o.port });
    if (registry) await registry.listen({ host: o.registry!.host, port: o.registry!.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    creds?.close();
    audit.close();
    await store.close();
    throw new ListenError(`cannot listen on ${o.host}:${o.port}${o.registry ? ` / registry ${o.registry.host}:${o.registry.port}` : ''}: ${errText(err)}`);
  }
  const regAddr = registry?.server.address();
  const registryUrl = registry && typeof regAddr === 'object' && regAddr ? `https://${o.registry!.host === '0.0.0.0' ? 'localhost' : o.registry!.host}:${regAddr.port}` : undefined;
  if (registryUrl) log.info({ registry: registryUrl }, `registry ready at ${registryUrl}`);
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  // Every address it answers at (bound to all: each interface's), the first one a non-loopback address.
  const urls = reachableUrls('http', o.host, port);
  const url = urls[0]!;
  log.info({ url, urls, dashboard: `${url}/`, bus: bus.kind }, `central ready at ${urls.join(', ')}`);

  const abort = new AbortController();
  void retryWithBackoff(() => bus.start(), {
    signal: abort.signal,
    onWaiting: (err) => log.warn({ err: errText(err) }, 'bus not reachable yet, retrying with backoff'),
  }).then(async () => {
    controller.resendPending();
    // start() returns before the consumer has joined its group: say "connected" once it has.
    while (!abort.signal.aborted && !busUp(bus.health())) await new Promise((r) => setTimeout(r, 200));
    if (!abort.signal.aborted) log.info({ bus: bus.kind }, 'bus connected');
  }, () => undefined);

  // A sweep judges every CP: four a second up to 1,000 CPs, then fewer, down to one a second
  // from 4,000 (at 10,000 CPs four a second were a fifth of central's time). Silences are
  // seconds long, so they are seen at most that much later.
  let sweep: NodeJS.Timeout | undefined;
  const nextSweep = () => {
    sweep = setTimeout(() => {
      void controller.sweep().catch((err: Error) => log.error({ err: err.message }, 'sweep failed')).finally(() => { if (sweep) nextSweep(); });
    }, sweepEveryMs(controller.state.cps.size));
  };
  nextSweep();

  return {
    url, adminToken, controller, bus, registryUrl,
    async close() {
      clearTimeout(sweep);
      sweep = undefined;
      abort.abort();
      await registry?.close();
      await app.close();
      creds?.close();
      await bus.close().catch(() => undefined);
      await controller.idle();
      await store.close();
      audit.close();
    },
  };
}

export { ListenError };
