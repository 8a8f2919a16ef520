import { InvalidArgumentError, Option, type Command } from 'commander';
import fs from 'node:fs';
import { ID_PATTERN } from '../protocol/index.js';
import type { BusConfig } from '../bus/types.js';
import { ConfigError } from '../lib/errors.js';

/**
 * Option parsers shared by every subcommand. Each option has a flag and an environment
 * variable (commander applies the parser to both); a bad value ends the process with one
 * line naming the option and exit code 2 (see cli/main.ts).
 */
export const parsePort = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError('expected a TCP port 0-65535');
  return n;
};
export const parsePositiveInt = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a positive integer');
  return n;
};
export const parseNonNegInt = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
};
export const parsePositiveNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};
export const parseNonNegNumber = (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
};
export const parseId = (v: string) => {
  if (!ID_PATTERN.test(v)) throw new InvalidArgumentError('expected an id of letters, digits, dot, dash or underscore (e.g. CP-001)');
  return v;
};
export const parseUrl = (protocols: string[]) => (v: string) => {
  let u: URL;
  try { u = new URL(v); } catch { throw new InvalidArgumentError(`expected a URL (${protocols.join(', ')})`); }
  if (!protocols.includes(u.protocol.replace(/:$/, ''))) throw new InvalidArgumentError(`expected a ${protocols.join(' or ')} URL`);
  return v.replace(/\/$/, '');
};
export const parseHostPort = (v: string) => {
  const m = /^(.+):(\d+)$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new InvalidArgumentError('expected HOST:PORT');
  return { host: m[1]!, port: Number(m[2]) };
};
export const parseBool = (v: string) => {
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off|)$/i.test(v)) return false;
  throw new InvalidArgumentError('expected true or false');
};
export const parseList = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

/** Shorthand: an option with its environment variable. */
export function opt(flags: string, description: string, env: string, parser?: (v: string, prev: unknown) => unknown, def?: unknown): Option {
  const o = new Option(flags, description).env(env);
  if (parser) o.argParser(parser as (v: string, prev: unknown) => unknown);
  if (def !== undefined) o.default(def);
  return o;
}

/** Bus options shared by central, drivers and tools: Kafka when KAFKA_BOOTSTRAP is set, else the embedded bus. */
export function addBusOptions(cmd: Command): Command {
  return cmd
    .addOption(opt('--kafka-bootstrap <list>', 'Kafka bootstrap servers, comma-separated (selects the kafka bus)', 'KAFKA_BOOTSTRAP', parseList))
    .addOption(opt('--kafka-ssl <bool>', 'connect to Kafka over TLS', 'KAFKA_SSL', parseBool, false))
    .addOption(opt('--kafka-ssl-ca <file>', 'CA certificate for Kafka TLS', 'KAFKA_SSL_CA'))
    .addOption(opt('--kafka-sasl-mechanism <m>', 'Kafka SASL mechanism', 'KAFKA_SASL_MECHANISM').choices(['plain', 'scram-sha-256', 'scram-sha-512']))
    .addOption(opt('--kafka-sasl-username <user>', 'Kafka SASL username', 'KAFKA_SASL_USERNAME'))
    .addOption(opt('--kafka-sasl-password <password>', 'Kafka SASL password (prefer KAFKA_SASL_PASSWORD: a flag shows in ps)', 'KAFKA_SASL_PASSWORD'))
    .addOption(opt('--bus-mqtt <url>', 'embedded bus: the gateway MQTT URL', 'GATEWAY_MQTT_URL', parseUrl(['mqtt', 'mqtts']), 'mqtt://localhost:1883'))
    .addOption(opt('--bus-username <user>', 'embedded bus: service username at the gateway', 'GATEWAY_BUS_USERNAME'))
    .addOption(opt('--bus-password <password>', 'embedded bus: service password at the gateway (prefer GATEWAY_BUS_PASSWORD: a flag shows in ps)', 'GATEWAY_BUS_PASSWORD'));
}

export interface BusOptionValues {
  kafkaBootstrap?: string[]; kafkaSsl: boolean; kafkaSslCa?: string;
  kafkaSaslMechanism?: 'plain' | 'scram-sha-256' | 'scram-sha-512'; kafkaSaslUsername?: string; kafkaSaslPassword?: string;
  busMqtt: string; busUsername?: string; busPassword?: string;
}

export function busConfigFrom(o: BusOptionValues, clientId: string): BusConfig {
  if (o.kafkaSaslMechanism && (!o.kafkaSaslUsername || !o.kafkaSaslPassword)) {
    throw new ConfigError('--kafka-sasl-mechanism needs --kafka-sasl-username and --kafka-sasl-password');
  }
  return {
    kafkaBootstrap: o.kafkaBootstrap?.length ? o.kafkaBootstrap : undefined,
    kafka: {
      clientId,
      ssl: o.kafkaSsl,
      sslCaFile: o.kafkaSslCa,
      sasl: o.kafkaSaslMechanism ? { mechanism: o.kafkaSaslMechanism, username: o.kafkaSaslUsername!, password: o.kafkaSaslPassword! } : undefined,
    },
    mqttUrl: o.busMqtt,
    username: o.busUsername,
    password: o.busPassword,
    clientId,
  };
}

/** Thrown for configuration that parses but does not make sense; cli/main.ts turns it into one line and exit 2. */
export { ConfigError };

/**
 * A secret from its environment variable, its file option or (discouraged) its flag. A secret
 * typed as a flag is visible to every user of the machine in `ps`: it still works, with a
 * warning on stderr; the env var or the file is the way. A file's trailing newline is dropped.
 */
export function secretFrom(o: { value?: string; file?: string; flag: string; fileFlag: string; env: string }, warn: (msg: string) => void = (m) => process.stderr.write(`warning: ${m}\n`)): string | undefined {
  if (o.value !== undefined && o.file !== undefined) throw new ConfigError(`give ${o.flag} (${o.env}) or ${o.fileFlag}, not both`);
  if (o.file !== undefined) {
    let text: string;
    try { text = fs.readFileSync(o.file, 'utf8'); } catch (err) { throw new ConfigError(`${o.fileFlag} ${o.file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`); }
    const v = text.replace(/\r?\n$/, '');
    if (!v) throw new ConfigError(`${o.fileFlag} ${o.file} is empty`);
    return v;
  }
  if (o.value !== undefined && process.argv.some((a) => a === o.flag || a.startsWith(`${o.flag}=`))) {
    warn(`${o.flag} on the command line is visible to every user (ps); use ${o.env} or ${o.fileFlag}`);
  }
  return o.value;
}

/** Loopback addresses: what dev mode may listen on. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Environment names the original deployment's users set (its compose files, its lab notes), kept
 * with their meaning: each is a hidden option (so a bad value is one line naming it) folded into
 * the documented option before the action runs, unless that option was given (flag or its own
 * variable). E.g. CENTRAL_HOST + CENTRAL_PORT on a CP machine say where central is.
 */
export interface EnvAlias { env: string; parser?: (v: string) => unknown }
export function addEnvAliases(
  cmd: Command, aliases: EnvAlias[],
  fold: (a: Record<string, unknown>) => Record<string, unknown>,
): Command {
  const keys = new Map<string, string>();
  for (const a of aliases) {
    const o = new Option(`--env-${a.env.toLowerCase().replace(/_/g, '-')} <value>`, `(original environment name ${a.env})`).env(a.env).hideHelp();
    if (a.parser) o.argParser(a.parser as (v: string, prev: unknown) => unknown);
    cmd.addOption(o);
    keys.set(a.env, o.attributeName());
  }
  return cmd.hook('preAction', (c) => {
    const vals = c.opts();
    const given = Object.fromEntries(aliases.map((a) => [a.env, vals[keys.get(a.env)!]]));
    for (const [key, v] of Object.entries(fold(given))) {
      const src = c.getOptionValueSource(key);
      if (v !== undefined && (src === undefined || src === 'default')) c.setOptionValueWithSource(key, v, 'env');
    }
  });
}

const hostOf = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
const bracket = (h: string) => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h);

/** Where central is, from CENTRAL_HOST/CENTRAL_PORT (or the monitor's CP_MONITOR_CENTRAL_*): `{ central: URL }`. */
export const CENTRAL_ALIASES: EnvAlias[] = [{ env: 'CENTRAL_HOST' }, { env: 'CENTRAL_PORT', parser: parsePort }];
export function centralFromEnv(a: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const host = hostOf(a[`${prefix}CENTRAL_HOST`]) ?? hostOf(a.CENTRAL_HOST);
  const port = (a[`${prefix}CENTRAL_PORT`] ?? a.CENTRAL_PORT ?? 8000) as number;
  return host ? { central: `http://${bracket(host)}:${port}` } : {};
}

/** Where the gateway is, from GATEWAY_HOST/GATEWAY_MQTT_PORT: an MQTT URL for the option `key`. */
export const GATEWAY_ALIASES: EnvAlias[] = [{ env: 'GATEWAY_HOST' }, { env: 'GATEWAY_MQTT_PORT', parser: parsePort }];
export function gatewayFromEnv(a: Record<string, unknown>, key: string): Record<string, unknown> {
  const host = hostOf(a.GATEWAY_HOST);
  return host ? { [key]: `mqtt://${bracket(host)}:${(a.GATEWAY_MQTT_PORT ?? 1883) as number}` } : {};
}

/** Python logging level names (INFO, WARNING …) as pino's. */
export const parseLogLevel = (v: string) => {
  const l = ({ warning: 'warn', critical: 'fatal' } as Record<string, string>)[v.toLowerCase()] ?? v.toLowerCase();
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(l)) throw new InvalidArgumentError('expected a log level (DEBUG, INFO, WARNING, ERROR)');
  return l;
};
