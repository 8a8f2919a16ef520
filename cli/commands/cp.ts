import type { Command } from 'commander';
import { ConfigError, opt, parseId, parseNonNegNumber, parsePort, parsePositiveInt, parsePositiveNumber, parseUrl } from '../options.js';

interface CpCliOptions {
  id?: string; healthPort?: number; healthHost: string; mqtt: string; profile: string;
  kw?: number; price?: number; speed: number; secret?: string; tickMs: number;
}

/** `evcharging cp`: one charging-point engine (firmware loop, HAL, health port, MQTT link). */
export default function register(program: Command): void {
  program.command('cp')
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
    .action(async (o: CpCliOptions) => {
      if (!o.id) throw new ConfigError('--id (CP_ENGINE_ID) is required');
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
            cpId: o.id!, profile, mqttUrl: o.mqtt, secret: o.secret, healthPort: o.healthPort!, healthHost: o.healthHost,
            announceHost: wildcard ? undefined : o.healthHost, speed: o.speed, tickMs: o.tickMs, log: l,
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
      log.info({ cp_id: o.id, health_port: n.health.port, profile: profile.name, max_kw: profile.max_kw, price_eur_kwh: profile.price_eur_kwh, speed: o.speed, mqtt: o.mqtt }, 'engine ready');
      if (process.stdin.isTTY) {
        const { attachFaultKeys } = await import('../../firmware/fault-keys.js');
        attachFaultKeys(process.stdin, n.engine, log);
      }
    });
}
