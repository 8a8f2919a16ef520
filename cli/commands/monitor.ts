import type { Command } from 'commander';
import {
  addEnvAliases, CENTRAL_ALIASES, centralFromEnv, ConfigError, opt, parseHostPort, parseId, parseLogLevel, parsePort, parsePositiveInt,
  parsePositiveNumber, parseUrl, secretFrom,
} from '../options.js';

interface MonitorCliOptions {
  cp?: string; engine?: { host: string; port: number }; central: string;
  intervalMs: number; maxMisses: number; timeoutMs?: number; token?: string; tokenFile?: string;
}

/** `evcharging monitor`: watches one engine's health port and reports to central. */
export default function register(program: Command): void {
  const cmd = program.command('monitor')
    .description('watch one engine health port and report heartbeats, faults and recoveries to central')
    .addOption(opt('--cp <id>', 'CP id this monitor watches', 'CP_MONITOR_CP_ID', parseId))
    .addOption(opt('--engine <host:port>', "the engine's TCP health port", 'CP_MONITOR_ENGINE', parseHostPort))
    .addOption(opt('--central <url>', "central's HTTP URL", 'CENTRAL_HTTP_URL', parseUrl(['http', 'https']), 'http://localhost:8000'))
    .addOption(opt('--interval-ms <ms>', 'poll (and heartbeat) interval, ms', 'CP_MONITOR_INTERVAL_MS', parsePositiveInt, 1000))
    .addOption(opt('--max-misses <n>', 'consecutive bad polls (no answer, garbage or KO) before a fault is reported', 'CP_MONITOR_MAX_MISSES', parsePositiveInt, 2))
    .addOption(opt('--timeout-ms <ms>', 'poll timeout, ms (below the interval; default 80% of it)', 'CP_MONITOR_TIMEOUT_MS', parsePositiveInt))
    .addOption(opt('--token <id:secret>', "this monitor's credentials for central, <monitor id>:<secret> from the registry (needed when central runs with --credentials); prefer CP_MONITOR_TOKEN or --token-file (a flag shows in ps)", 'CP_MONITOR_TOKEN'))
    .addOption(opt('--token-file <file>', 'read --token from this file', 'CP_MONITOR_TOKEN_FILE'));
  // The original's monitor variables: CP_MONITOR_CP_E_HOST/PORT (the engine), CP_MONITOR_CENTRAL_HOST/PORT
  // or CENTRAL_HOST/PORT (central), CP_MONITOR_HEALTH_INTERVAL (seconds), CP_MONITOR_LOG_LEVEL (INFO …).
  addEnvAliases(cmd, [
    ...CENTRAL_ALIASES,
    { env: 'CP_MONITOR_CENTRAL_HOST' }, { env: 'CP_MONITOR_CENTRAL_PORT', parser: parsePort },
    { env: 'CP_MONITOR_CP_E_HOST' }, { env: 'CP_MONITOR_CP_E_PORT', parser: parsePort },
    { env: 'CP_MONITOR_HEALTH_INTERVAL', parser: parsePositiveNumber }, { env: 'CP_MONITOR_LOG_LEVEL', parser: parseLogLevel },
  ], (a) => {
    if (a.CP_MONITOR_LOG_LEVEL && process.env.LOG_LEVEL === undefined) process.env.LOG_LEVEL = a.CP_MONITOR_LOG_LEVEL as string;
    if (a.CP_MONITOR_CP_E_HOST !== undefined && a.CP_MONITOR_CP_E_PORT === undefined) throw new ConfigError('CP_MONITOR_CP_E_HOST needs CP_MONITOR_CP_E_PORT (the engine\'s health port)');
    return {
      ...centralFromEnv(a, 'CP_MONITOR_'),
      engine: a.CP_MONITOR_CP_E_PORT === undefined ? undefined : { host: (a.CP_MONITOR_CP_E_HOST as string | undefined) ?? 'localhost', port: a.CP_MONITOR_CP_E_PORT },
      intervalMs: a.CP_MONITOR_HEALTH_INTERVAL === undefined ? undefined : Math.max(1, Math.round((a.CP_MONITOR_HEALTH_INTERVAL as number) * 1000)),
    };
  });
  cmd.action(async (o: MonitorCliOptions) => {
      if (!o.cp) throw new ConfigError('--cp (CP_MONITOR_CP_ID) is required');
      if (!o.engine) throw new ConfigError('--engine (CP_MONITOR_ENGINE, or CP_MONITOR_CP_E_HOST + CP_MONITOR_CP_E_PORT) is required, as HOST:PORT');
      const warnings: string[] = [];
      const token = secretFrom({ value: o.token, file: o.tokenFile, flag: '--token', fileFlag: '--token-file', env: 'CP_MONITOR_TOKEN' }, (m) => warnings.push(m));
      if (token !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}:\S{1,256}$/.test(token)) throw new ConfigError('--token (CP_MONITOR_TOKEN) must be <monitor id>:<secret>, as the registry issued it');
      const monitorId = token?.slice(0, token.indexOf(':'));
      const { defaultTimeoutMs, startMonitor } = await import('../../monitor/monitor.js');
      const timeoutMs = o.timeoutMs ?? defaultTimeoutMs(o.intervalMs);
      if (timeoutMs >= o.intervalMs) throw new ConfigError(`--timeout-ms ${timeoutMs} must be below --interval-ms ${o.intervalMs}`);
      const { serve } = await import('../../lib/serve.js');
      await serve('monitor', async (log) => { for (const w of warnings) log.warn(w); return startMonitor({
        cpId: o.cp!, engine: o.engine!, centralUrl: o.central, intervalMs: o.intervalMs,
        maxMisses: o.maxMisses, timeoutMs, token, monitorId, log,
      }); }, { closing: (m, log) => log.info(m.status(), 'monitor totals') });
    });
}
