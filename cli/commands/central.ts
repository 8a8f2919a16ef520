import type { Command } from 'commander';
import {
  addBusOptions, busConfigFrom, ConfigError, isLoopbackHost, opt, parseBool, parsePort, parsePositiveInt, secretFrom, type BusOptionValues,
} from '../options.js';
import { addHttpLimitOptions, httpLimitsFrom } from '../../lib/http-limits.js';

interface CentralCliOptions extends BusOptionValues {
  host?: string; port: number; dataDir: string; adminToken?: string; adminTokenFile?: string; cpFile?: string;
  monitorTimeoutMs: number; endGraceMs: number; startConfirmMs: number; maxCps: number;
  credentials?: string; auditFile?: string; devPublic: boolean;
  registryPort?: number; registryHost?: string; registryTlsCert?: string; registryTlsKey?: string;
  sseMaxClients: number; sseMaxBufferBytes: number; sseMaxStallMs: number;
  unreachableGraceMs: number; engineSilenceMs: number; driverBurst: number; driverRate: number;
}

/** `evcharging central`: the controller (registry, sessions, billing), its HTTP API and dashboard. */
export default function register(program: Command): void {
  const cmd = program.command('central')
    .description('run the central controller: registry, authorization, sessions and tickets, HTTP API and live dashboard')
    .addOption(opt('--host <host>', 'HTTP listen address (default 0.0.0.0 with --credentials or --dev-public true; dev mode: 127.0.0.1 only; CENTRAL_HOST is where others find central, not this)', 'CENTRAL_BIND'))
    .addOption(opt('--port <port>', 'HTTP port (API and dashboard)', 'CENTRAL_PORT', parsePort, 8000))
    .addOption(opt('--data-dir <dir>', 'where the journal, snapshot and audit log live', 'CENTRAL_DATA_DIR', undefined, './data/central'))
    .addOption(opt('--admin-token <token>', 'bearer token for admin actions; prefer CENTRAL_ADMIN_TOKEN or --admin-token-file (a flag shows in ps). None: a dev token is generated and printed', 'CENTRAL_ADMIN_TOKEN'))
    .addOption(opt('--admin-token-file <file>', 'read the admin token from this file', 'CENTRAL_ADMIN_TOKEN_FILE'))
    .addOption(opt('--credentials <file>', 'credentials file (the gateway\'s; written by the registry): monitors must authenticate. None: dev mode (unauthenticated monitor reports, loopback only)', 'CENTRAL_CREDENTIALS_FILE'))
    .addOption(opt('--dev-public <bool>', 'dev mode on a non-loopback --host (unauthenticated monitor reports from the network: a lab only)', 'CENTRAL_DEV_PUBLIC', parseBool, false))
    .addOption(opt('--audit-file <file>', 'audit log (default <data-dir>/audit.jsonl)', 'CENTRAL_AUDIT_FILE'))
    .addOption(opt('--registry-port <port>', 'serve the registry REST API (HTTPS, admin token) on this port; needs --credentials and --registry-tls-cert/--registry-tls-key', 'CENTRAL_REGISTRY_PORT', parsePort))
    .addOption(opt('--registry-host <host>', 'registry listen address (default: --host)', 'CENTRAL_REGISTRY_HOST'))
    .addOption(opt('--registry-tls-cert <file>', 'registry TLS certificate (PEM)', 'CENTRAL_REGISTRY_TLS_CERT'))
    .addOption(opt('--registry-tls-key <file>', 'registry TLS private key (PEM)', 'CENTRAL_REGISTRY_TLS_KEY'))
    .addOption(opt('--cp-file <file>', 'JSON list of CPs to preload (ids or {cp_id, profile, kw, price})', 'CENTRAL_CP_FILE'))
    .addOption(opt('--monitor-timeout-ms <ms>', "a CP whose monitor is silent this long is monitor DOWN", 'CENTRAL_MONITOR_TIMEOUT_MS', parsePositiveInt, 3000))
    .addOption(opt('--end-grace-ms <ms>', "after a fault, stop or lost link, wait this long for the CP's own session_end before billing from telemetry", 'CENTRAL_END_GRACE_MS', parsePositiveInt, 5000))
    .addOption(opt('--start-confirm-ms <ms>', 'a START_SUPPLY the CP never confirms is closed after this long', 'CENTRAL_START_CONFIRM_MS', parsePositiveInt, 30_000))
    .addOption(opt('--max-cps <n>', 'registry size above which new CPs are refused', 'CENTRAL_MAX_CPS', parsePositiveInt, 10_000))
    .addOption(opt('--sse-max-clients <n>', 'live-feed (GET /events) clients at most', 'CENTRAL_SSE_MAX_CLIENTS', parsePositiveInt, 200))
    .addOption(opt('--sse-max-buffer-bytes <n>', 'a live-feed client with more unsent bytes than this is dropped', 'CENTRAL_SSE_MAX_BUFFER_BYTES', parsePositiveInt, 1 << 20))
    .addOption(opt('--sse-max-stall-ms <ms>', 'a live-feed client that reads nothing for this long is dropped', 'CENTRAL_SSE_MAX_STALL_MS', parsePositiveInt, 30_000))
    .addOption(opt('--unreachable-grace-ms <ms>', 'a session whose CP became unreachable (silent gateway or engine) is held this long before it is closed from telemetry', 'CENTRAL_UNREACHABLE_GRACE_MS', parsePositiveInt, 30_000))
    .addOption(opt('--engine-silence-ms <ms>', 'a CP supplying a session that sends nothing this long is unreachable', 'CENTRAL_ENGINE_SILENCE_MS', parsePositiveInt, 10_000))
    .addOption(opt('--driver-burst <n>', 'requests a driver may send at once before the rate limit', 'CENTRAL_DRIVER_BURST', parsePositiveInt, 30))
    .addOption(opt('--driver-rate <n>', 'requests per second a driver may send in the long run', 'CENTRAL_DRIVER_RATE', parsePositiveInt, 10));
  addHttpLimitOptions(cmd, 'CENTRAL_');
  addBusOptions(cmd).action(async (o: CentralCliOptions) => {
    const warnings: string[] = [];
    const adminToken = secretFrom({ value: o.adminToken, file: o.adminTokenFile, flag: '--admin-token', fileFlag: '--admin-token-file', env: 'CENTRAL_ADMIN_TOKEN' }, (m) => warnings.push(m));
    if (adminToken !== undefined && !/^\S{8,256}$/.test(adminToken)) throw new ConfigError('--admin-token (CENTRAL_ADMIN_TOKEN) must be 8-256 characters without spaces');
    const dev = !o.credentials;
    // Dev mode stays on loopback unless the lab asked for the network (--dev-public): then every address, like credentials mode.
    const host = o.host ?? (dev && !o.devPublic ? '127.0.0.1' : '0.0.0.0');
    if (!host.trim()) throw new ConfigError('--host (CENTRAL_BIND) must not be empty');
    if (dev && !isLoopbackHost(host) && !o.devPublic) {
      throw new ConfigError(`--host ${host}: dev mode (no --credentials) listens on loopback only; give --credentials <file> (CENTRAL_CREDENTIALS_FILE), or --dev-public true for a lab`);
    }
    if (!o.dataDir.trim()) throw new ConfigError('--data-dir (CENTRAL_DATA_DIR) must not be empty');
    if (o.registryPort !== undefined && (!o.credentials || !o.registryTlsCert || !o.registryTlsKey)) {
      throw new ConfigError('--registry-port needs --credentials, --registry-tls-cert and --registry-tls-key (the registry speaks HTTPS only)');
    }
    let limits;
    try { limits = httpLimitsFrom(o as unknown as Record<string, unknown>); } catch (err) { throw new ConfigError((err as Error).message); }
    const bus = busConfigFrom(o, 'evcharging-central');
    const { readCpFile, CpFileError } = await import('../../central/cp-file.js');
    let preload: import('../../central/cp-file.js').PreloadedCp[] = [];
    if (o.cpFile) {
      try { preload = readCpFile(o.cpFile); } catch (err) { if (err instanceof CpFileError) throw new ConfigError(err.message); throw err; }
    }
    if (o.credentials) {
      const { loadCredentials, writeCredentials } = await import('../../registry/credentials.js');
      const fs = await import('node:fs');
      // The registry creates the file on its first registration; otherwise it must be readable now.
      if (o.registryPort === undefined || fs.existsSync(o.credentials)) {
        try { loadCredentials(o.credentials); } catch (err) { throw new ConfigError(`--credentials: ${(err as Error).message}`); }
      } else writeCredentials(o.credentials, []);
    }
    const { serve } = await import('../../lib/serve.js');
    const { startCentral, ListenError } = await import('../../central/central.js');
    const { StoreError } = await import('../../central/store.js');
    await serve('central', async (log) => {
      for (const w of warnings) log.warn(w);
      let central;
      try {
        central = await startCentral({
          host, port: o.port, dataDir: o.dataDir, adminToken, preload,
          monitorTimeoutMs: o.monitorTimeoutMs, endGraceMs: o.endGraceMs, startConfirmMs: o.startConfirmMs, maxCps: o.maxCps, bus, log,
          credentialsFile: o.credentials, auditFile: o.auditFile, limits,
          maxSseClients: o.sseMaxClients, sseMaxBufferedBytes: o.sseMaxBufferBytes, sseMaxStallMs: o.sseMaxStallMs,
          registry: o.registryPort !== undefined ? { host: o.registryHost ?? host, port: o.registryPort, tlsCert: o.registryTlsCert!, tlsKey: o.registryTlsKey! } : undefined,
          rules: { unreachableGraceMs: o.unreachableGraceMs, engineSilenceMs: o.engineSilenceMs, driverRate: { burst: o.driverBurst, perSecond: o.driverRate } },
        });
      } catch (err) {
        if (err instanceof ListenError) throw new ConfigError(`--port ${o.port} / --host ${host}: ${err.message}`);
        if (err instanceof StoreError) throw new ConfigError(`--data-dir (CENTRAL_DATA_DIR) ${err.message}`);
        throw err;
      }
      if (dev) log.warn({ host }, `DEV MODE: no --credentials, monitor reports are not authenticated; listening on ${isLoopbackHost(host) ? 'loopback only' : `${host} (--dev-public: reachable from the network)`}`);
      return central;
    });
  });

  const journal = cmd.command('journal').description("check or repair central's journal (central must not be running on that data dir)");
  for (const action of ['check', 'repair'] as const) {
    journal.command(action)
      .description(action === 'check'
        ? 'list every line replay would refuse (exit 1 if any), change nothing'
        : 'keep every valid event; move every dropped line, with its number and why, to journal.rejected-<time>.jsonl; keep the original as journal.jsonl.bak-<time>')
      .addOption(opt('--data-dir <dir>', 'central data dir (default ./data/central)', 'CENTRAL_DATA_DIR'))
      .action(async (_a: unknown, sub: Command) => {
        // `central`'s own --data-dir (and its default) is the same option: take whichever was given.
        const dataDir = String(sub.optsWithGlobals().dataDir ?? './data/central');
        const { checkJournal, repairJournal } = await import('../../central/store.js');
        const r = action === 'check' ? await checkJournal(dataDir) : await repairJournal(dataDir);
        const out = (l: string) => process.stdout.write(`${l}\n`);
        out(`${r.file}: ${r.lines} lines, ${r.valid} valid events; snapshot ${r.snapshot}`);
        for (const b of r.bad) out(`  line ${b.line}: ${b.problem}${action === 'repair' ? ' (dropped)' : ''}`);
        if (r.torn !== undefined) out(`  line ${r.lines}: torn last line (crash mid-write)${action === 'repair' ? ' (dropped)' : ''}`);
        const dropped = r.bad.length + (r.torn !== undefined ? 1 : 0);
        if (action === 'repair') {
          const rr = r as Awaited<ReturnType<typeof repairJournal>>;
          out(dropped ? `repaired: kept ${r.valid} events, dropped ${dropped} line(s), saved in ${rr.rejected}; original kept as ${rr.backup}` : 'nothing to repair');
        } else {
          out(r.bad.length ? `${r.bad.length} bad line(s): central will not start on this journal; \`evcharging central journal repair\` keeps every valid event` : 'journal ok');
          if (r.bad.length) process.exitCode = 1;
        }
      });
  }
}
