import os from 'node:os';
import type { Command } from 'commander';
import { addEnvAliases, GATEWAY_ALIASES, gatewayFromEnv, opt, parseList, parsePort, parsePositiveInt, parsePositiveNumber, parseNonNegNumber, parseUrl, ConfigError } from '../options.js';

/** `evcharging fleet`: many simulated CPs in one process, each with its own MQTT connection and health port. */
export default function register(program: Command): void {
  const cmd = program.command('fleet').description('run many simulated CPs in one process, each with its own MQTT connection and health port')
    .addOption(opt('--count <n>', 'how many CPs', 'FLEET_COUNT', parsePositiveInt, 100))
    .addOption(opt('--mqtt <url>', 'gateway MQTT URL (the gateway must admit the fleet: dev mode)', 'FLEET_MQTT', parseUrl(['mqtt', 'mqtts']), 'mqtt://localhost:1883'))
    .addOption(opt('--id-prefix <prefix>', 'CP ids are <prefix>0001, <prefix>0002 …', 'FLEET_ID_PREFIX', undefined, 'FLEET-'))
    .addOption(opt('--first <n>', 'number of the first CP', 'FLEET_FIRST', parsePositiveInt, 1))
    .addOption(opt('--profile <name>', 'hardware profile of every CP (a sim profile)', 'FLEET_PROFILE', undefined, 'ac-22kw'))
    .addOption(opt('--kw <kw>', 'rated power override', 'FLEET_KW', parsePositiveNumber))
    .addOption(opt('--price <eur>', 'price override, €/kWh', 'FLEET_PRICE', parseNonNegNumber))
    .addOption(opt('--speed <x>', 'simulation speed (1 = real time)', 'FLEET_SPEED', parsePositiveNumber, 60))
    .addOption(opt('--health-host <host>', 'address the health ports listen on (and are announced at)', 'FLEET_HEALTH_HOST', undefined, '127.0.0.1'))
    .addOption(opt('--health-base-port <port>', 'CP i gets health port base+i (0: any free ports; see --ports-file)', 'FLEET_HEALTH_BASE_PORT', parsePort, 0))
    .addOption(opt('--http-port <port>', 'serve GET /health and GET /cps (CP ids and health ports) here', 'FLEET_HTTP_PORT', parsePort))
    .addOption(opt('--ports-file <file>', 'write {cp id: health port} here once every CP started (for monitors)', 'FLEET_PORTS_FILE'))
    .addOption(opt('--ramp-per-s <n>', 'CPs started per second (no connect storm at the gateway)', 'FLEET_RAMP_PER_S', parsePositiveInt, 200))
    .addOption(opt('--tick-ms <ms>', 'engine loop period, shared by the whole fleet', 'FLEET_TICK_MS', parsePositiveInt, 500))
    .addOption(opt('--stats-s <s>', 'log a summary (connected, states, CPU, memory) this often', 'FLEET_STATS_S', parsePositiveInt, 10))
    .addOption(opt('--cp-log-level <level>', 'log level of the CPs themselves (the fleet logs its summaries at LOG_LEVEL)', 'FLEET_CP_LOG_LEVEL', undefined, 'warn')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
    .addOption(opt('--ocpp <url>', 'every CP speaks OCPP-J to this central system instead of MQTT (e.g. ws://host:9220/ocpp; the CP id is appended)', 'FLEET_OCPP_URL', parseUrl(['ws', 'wss'])))
    .addOption(opt('--ocpp-version <v>', 'OCPP version the fleet speaks', 'FLEET_OCPP_VERSION', undefined, '1.6').choices(['1.6', '2.0.1']))
    .addOption(opt('--meter-interval-s <s>', 'OCPP MeterValues period during a transaction', 'FLEET_METER_INTERVAL_S', parsePositiveInt, 60))
    .addOption(opt('--session-probability <p>', 'OCPP: chance that a CP starts a session after each pause (0 = no automatic sessions)', 'FLEET_SESSION_PROBABILITY', parseNonNegNumber, 0.5))
    .addOption(opt('--session-min-s <s>', 'OCPP: shortest automatic session, wall seconds', 'FLEET_SESSION_MIN_S', parsePositiveNumber, 60))
    .addOption(opt('--session-max-s <s>', 'OCPP: longest automatic session, wall seconds', 'FLEET_SESSION_MAX_S', parsePositiveNumber, 300))
    .addOption(opt('--pause-min-s <s>', 'OCPP: shortest pause between sessions', 'FLEET_PAUSE_MIN_S', parsePositiveNumber, 15))
    .addOption(opt('--pause-max-s <s>', 'OCPP: longest pause between sessions', 'FLEET_PAUSE_MAX_S', parsePositiveNumber, 120))
    .addOption(opt('--id-tags <list>', 'OCPP: id tags the automatic drivers present, comma-separated', 'FLEET_ID_TAGS', parseList, ['FLEET-TAG-1', 'FLEET-TAG-2', 'FLEET-TAG-3']))
    .addOption(opt('--workers <n>', 'processes the fleet runs in (CPs split evenly; default: one per core)', 'FLEET_WORKERS', parsePositiveInt, os.availableParallelism()));
  addEnvAliases(cmd, GATEWAY_ALIASES, (a) => gatewayFromEnv(a, 'mqtt'));
  cmd.action(async (o) => {
      if (o.healthBasePort && o.healthBasePort + o.count - 1 > 65535) throw new ConfigError(`--health-base-port ${o.healthBasePort} + --count ${o.count} goes past port 65535`);
      if (o.workers > 256) throw new ConfigError('--workers: at most 256');
      if (o.sessionProbability > 1) throw new ConfigError('--session-probability: at most 1');
      if (o.sessionMinS > o.sessionMaxS) throw new ConfigError('--session-min-s is above --session-max-s');
      if (o.pauseMinS > o.pauseMaxS) throw new ConfigError('--pause-min-s is above --pause-max-s');
      const { createLogger } = await import('../../lib/log.js');
      if (o.workers > 1 && o.count > 1) {
        const { runFleetWorkers } = await import('../../fleet/workers.js');
        const workers = Math.min(o.workers, o.count);
        // What every worker shares; each gets its own slice, HTTP port and ports file.
        const args = ['--mqtt', o.mqtt, '--id-prefix', o.idPrefix, '--profile', o.profile, '--speed', String(o.speed), '--health-host', o.healthHost,
          '--ramp-per-s', String(Math.max(1, Math.round(o.rampPerS / workers))), '--tick-ms', String(o.tickMs), '--stats-s', String(o.statsS), '--cp-log-level', o.cpLogLevel,
          ...(o.kw !== undefined ? ['--kw', String(o.kw)] : []), ...(o.price !== undefined ? ['--price', String(o.price)] : []),
          ...(o.ocpp ? ['--ocpp', o.ocpp, '--ocpp-version', o.ocppVersion, '--meter-interval-s', String(o.meterIntervalS), '--session-probability', String(o.sessionProbability),
            '--session-min-s', String(o.sessionMinS), '--session-max-s', String(o.sessionMaxS), '--pause-min-s', String(o.pauseMinS), '--pause-max-s', String(o.pauseMaxS), '--id-tags', o.idTags.join(',')] : [])];
        return runFleetWorkers({ args, first: o.first, count: o.count, workers, healthBasePort: o.healthBasePort, httpPort: o.httpPort, portsFile: o.portsFile, host: o.healthHost, ...(o.ocpp ? { summaryS: o.statsS } : {}) }, createLogger('fleet'));
      }
      const { runFleet } = await import('../../fleet/run-fleet.js');
      const log = createLogger('fleet');
      const cpLog = createLogger('fleet-cp');
      cpLog.level = o.cpLogLevel;
      await runFleet({ ...o, ...(o.ocpp ? { behaviour: { probability: o.sessionProbability, durationS: [o.sessionMinS, o.sessionMaxS], pauseS: [o.pauseMinS, o.pauseMaxS], idTags: o.idTags } } : {}) }, log, cpLog);
    });
}
