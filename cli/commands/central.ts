import type { Command } from 'commander';
import { addBusOptions, busConfigFrom, ConfigError, opt, parsePort, parsePositiveInt, type BusOptionValues } from '../options.js';

interface CentralCliOptions extends BusOptionValues {
  host: string; port: number; dataDir: string; adminToken?: string; cpFile?: string;
  monitorTimeoutMs: number; endGraceMs: number; startConfirmMs: number; maxCps: number;
  unreachableGraceMs: number; engineSilenceMs: number; driverBurst: number; driverRate: number;
}

/** `evcharging central`: the controller (registry, sessions, billing), its HTTP API and dashboard. */
export default function register(program: Command): void {
  const cmd = program.command('central')
    .description('run the central controller: registry, authorization, sessions and tickets, HTTP API and live dashboard')
    .addOption(opt('--host <host>', 'HTTP listen address', 'CENTRAL_HOST', undefined, '0.0.0.0'))
    .addOption(opt('--port <port>', 'HTTP port (API and dashboard)', 'CENTRAL_PORT', parsePort, 8000))
    .addOption(opt('--data-dir <dir>', 'where the journal and snapshot live', 'CENTRAL_DATA_DIR', undefined, './data/central'))
    .addOption(opt('--admin-token <token>', 'bearer token for admin actions (none: a dev token is generated and printed)', 'CENTRAL_ADMIN_TOKEN'))
    .addOption(opt('--cp-file <file>', 'JSON list of CPs to preload (ids or {cp_id, profile, kw, price})', 'CENTRAL_CP_FILE'))
    .addOption(opt('--monitor-timeout-ms <ms>', "a CP whose monitor is silent this long is monitor DOWN", 'CENTRAL_MONITOR_TIMEOUT_MS', parsePositiveInt, 3000))
    .addOption(opt('--end-grace-ms <ms>', "after a fault, stop or lost link, wait this long for the CP's own session_end before billing from telemetry", 'CENTRAL_END_GRACE_MS', parsePositiveInt, 5000))
    .addOption(opt('--start-confirm-ms <ms>', 'a START_SUPPLY the CP never confirms is closed after this long', 'CENTRAL_START_CONFIRM_MS', parsePositiveInt, 30_000))
    .addOption(opt('--max-cps <n>', 'registry size above which monitor reports for unknown CPs are refused (429)', 'CENTRAL_MAX_CPS', parsePositiveInt, 10_000))
    .addOption(opt('--unreachable-grace-ms <ms>', 'a session whose CP became unreachable (silent gateway or engine) is held this long before it is closed from telemetry', 'CENTRAL_UNREACHABLE_GRACE_MS', parsePositiveInt, 30_000))
    .addOption(opt('--engine-silence-ms <ms>', 'a CP supplying a session that sends nothing this long is unreachable', 'CENTRAL_ENGINE_SILENCE_MS', parsePositiveInt, 10_000))
    .addOption(opt('--driver-burst <n>', 'requests a driver may send at once before the rate limit', 'CENTRAL_DRIVER_BURST', parsePositiveInt, 30))
    .addOption(opt('--driver-rate <n>', 'requests per second a driver may send in the long run', 'CENTRAL_DRIVER_RATE', parsePositiveInt, 10));
  addBusOptions(cmd).action(async (o: CentralCliOptions) => {
    if (o.adminToken !== undefined && !/^\S{8,256}$/.test(o.adminToken)) throw new ConfigError('--admin-token (CENTRAL_ADMIN_TOKEN) must be 8-256 characters without spaces');
    if (!o.host.trim()) throw new ConfigError('--host (CENTRAL_HOST) must not be empty');
    if (!o.dataDir.trim()) throw new ConfigError('--data-dir (CENTRAL_DATA_DIR) must not be empty');
    const bus = busConfigFrom(o, 'evcharging-central');
    const { readCpFile, CpFileError } = await import('../../central/cp-file.js');
    let preload: import('../../central/cp-file.js').PreloadedCp[] = [];
    if (o.cpFile) {
      try { preload = readCpFile(o.cpFile); } catch (err) { if (err instanceof CpFileError) throw new ConfigError(err.message); throw err; }
    }
    const { serve } = await import('../../lib/serve.js');
    const { startCentral, ListenError } = await import('../../central/central.js');
    const { StoreError } = await import('../../central/store.js');
    await serve('central', async (log) => {
      try {
        return await startCentral({
          host: o.host, port: o.port, dataDir: o.dataDir, adminToken: o.adminToken, preload,
          monitorTimeoutMs: o.monitorTimeoutMs, endGraceMs: o.endGraceMs, startConfirmMs: o.startConfirmMs, maxCps: o.maxCps, bus, log,
          rules: { unreachableGraceMs: o.unreachableGraceMs, engineSilenceMs: o.engineSilenceMs, driverRate: { burst: o.driverBurst, perSecond: o.driverRate } },
        });
      } catch (err) {
        if (err instanceof ListenError) throw new ConfigError(`--port ${o.port} / --host ${o.host}: ${err.message}`);
        if (err instanceof StoreError) throw new ConfigError(`--data-dir (CENTRAL_DATA_DIR) ${err.message}`);
        throw err;
      }
    });
  });
}
