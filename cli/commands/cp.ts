import type { Command } from 'commander';
import { addEnvAliases, ConfigError, GATEWAY_ALIASES, gatewayFromEnv, opt, parseId, parseNonNegNumber, parsePort, parsePositiveInt, parsePositiveNumber, parseUrl } from '../options.js';

interface CpCliOptions {
  id?: string; healthPort?: number; healthHost: string; mqtt: string; profile: string;
  kw?: number; price?: number; speed: number; secret?: string; tickMs: number;
  ocpp?: string; ocppVersion: '1.6' | '2.0.1'; meterIntervalS: number; ocppCa?: string; idTag: string; healthControl: string;
}

/** `evcharging cp`: one charging-point engine (firmware loop, HAL, health port, MQTT link). */
export default function register(program: Command): void {
  const cmd = program.command('cp')
    .description('run one charging-point engine (firmware loop, HAL, health port, MQTT)')
    .addOption(opt('--id <id>', 'CP id (also its MQTT username and client id)', 'CP_ENGINE_ID', parseId))
    .addOption(opt('--health-port <port>', 'TCP health port (PING/STATUS/FAULT/REPAIR)', 'CP_ENGINE_HEALTH_PORT', parsePort))
    .addOption(opt('--health-host <host>', 'address the health port listens on (and is announced, unless a wildcard)', 'CP_ENGINE_HEALTH_HOST', undefined, '0.0.0.0'))
    .addOption(opt('--mqtt <url>', 'gateway MQTT URL', 'CP_ENGINE_MQTT_URL', parseUrl(['mqtt', 'mqtts']), 'mqtt://localhost:1883'))
    .addOption(opt('--profile <name|file>', 'hardware profile: a bundled name or a JSON file', 'CP_ENGINE_PROFILE', undefined, 'ac-22kw'))
    .addOption(opt('--kw <kw>', 'rated power override, kW', 'CP_ENGINE_KW', parsePositiveNumber))
    .addOption(opt('--price <eur>', 'price override, EUR per kWh', 'CP_ENGINE_PRICE', parseNonNegNumber))
    .addOption(opt('--speed <factor>', 'simulated time = wall time x factor (sim HAL)', 'CP_ENGINE_SIM_SPEED', parsePositiveNumber, 1))
    .addOption(opt('--secret <secret>', 'password at the gateway (username = CP id)', 'CP_ENGINE_SECRET'))
    .addOption(opt('--tick-ms <ms>', 'firmware loop period, ms', 'CP_ENGINE_TICK_MS', parsePositiveInt, 100))
    .addOption(opt('--health-control <who>', 'who may send FAULT/REPAIR to the health port: loopback or any', 'CP_ENGINE_HEALTH_CONTROL', undefined, 'loopback'))
    .addOption(opt('--ocpp <url>', 'speak OCPP-J to this central system instead of MQTT (the CP id is appended: ws://csms/ocpp -> ws://csms/ocpp/CP-001)', 'CP_ENGINE_OCPP_URL', parseUrl(['ws', 'wss'])))
    .addOption(opt('--ocpp-version <v>', 'OCPP version to speak', 'CP_ENGINE_OCPP_VERSION', undefined, '1.6').choices(['1.6', '2.0.1']))
    .addOption(opt('--meter-interval-s <s>', 'OCPP MeterValues period during a transaction', 'CP_ENGINE_METER_INTERVAL_S', parsePositiveInt, 10))
    .addOption(opt('--id-tag <tag>', 'OCPP: the id tag the p key presents for a locally started transaction', 'CP_ENGINE_ID_TAG', undefined, 'LOCAL-TAG'))
    .addOption(opt('--ocpp-ca <file>', 'CA certificate (PEM) that signed a wss:// central system', 'CP_ENGINE_OCPP_CA'));
  // The original's names: CP_ENGINE_CP_ID for the id; GATEWAY_HOST (+ GATEWAY_MQTT_PORT) say where the gateway is.
  addEnvAliases(cmd, [{ env: 'CP_ENGINE_CP_ID', parser: parseId }, ...GATEWAY_ALIASES],
    (a) => ({ id: a.CP_ENGINE_CP_ID, ...gatewayFromEnv(a, 'mqtt') }));
  cmd.action(async (o: CpCliOptions) => {
      if (o.healthControl !== 'loopback' && o.healthControl !== 'any') throw new ConfigError('--health-control (CP_ENGINE_HEALTH_CONTROL) must be loopback or any');
      if (!o.id) throw new ConfigError('--id (CP_ENGINE_ID or CP_ENGINE_CP_ID) is required');
      if (o.healthPort === undefined) throw new ConfigError('--health-port (CP_ENGINE_HEALTH_PORT) is required');
      const { loadProfile, withOverrides } = await import('../../hw-profiles/profile.js');
      const profile = withOverrides(loadProfile(o.profile), { kw: o.kw, price: o.price });
      const { serve } = await import('../../lib/serve.js');
      const { startCpNode } = await import('../../firmware/cp-node.js');
      const { HalUnavailableError } = await import('../../firmware/hal/create.js');
      const wildcard = o.healthHost === '0.0.0.0' || o.healthHost === '::';
      let log!: import('../../lib/log.js').Logger;
      const n = await serve('cp', async (l) => {
        log = l;
        try {
          return await startCpNode({
            cpId: o.id!, profile, mqttUrl: o.mqtt, secret: o.secret,
            ...(o.ocpp ? { ocpp: { url: o.ocpp, version: o.ocppVersion === '2.0.1' ? 'ocpp2.0.1' as const : 'ocpp1.6' as const, meterIntervalS: o.meterIntervalS, caFile: o.ocppCa } } : {}), healthPort: o.healthPort!, healthHost: o.healthHost,
            announceHost: wildcard ? undefined : o.healthHost, speed: o.speed, tickMs: o.tickMs, log: l, healthControl: o.healthControl as 'loopback' | 'any',
          });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE') throw new ConfigError(`--health-port ${o.healthPort}: already in use`);
          if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ConfigError(`--health-host ${o.healthHost}: cannot listen there`);
          if (code === 'EACCES') throw new ConfigError(`--health-port ${o.healthPort}: permission denied`);
          if (err instanceof HalUnavailableError) throw new ConfigError(`--profile: ${err.message}`);
          throw err;
        }
      });
      log.info({ cp_id: o.id, health_port: n.health.port, profile: profile.name, max_kw: profile.max_kw, price_eur_kwh: profile.price_eur_kwh, speed: o.speed, ...(o.ocpp ? { ocpp: o.ocpp, ocpp_version: o.ocppVersion } : { mqtt: o.mqtt }) }, 'engine ready');
      if (process.stdin.isTTY) {
        const { attachFaultKeys } = await import('../../firmware/fault-keys.js');
        attachFaultKeys(process.stdin, n.engine, log);
        if (n.ocpp) {
          const { attachDriverKeys } = await import('../../firmware/ocpp/keys.js');
          attachDriverKeys(process.stdin, n.ocpp, o.idTag, log);
        }
      }
    });
}
