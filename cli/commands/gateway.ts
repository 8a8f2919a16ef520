import { ROLES, type Role } from '../../protocol/index.js';
import type { Command } from 'commander';
import { DEFAULT_EDGE_LIMITS } from '../../gateway/limits.js';
import { addBusOptions, busConfigFrom, ConfigError, opt, parseBool, parseId, parseNonNegNumber, parsePort, parsePositiveInt, parsePositiveNumber, secretFrom, type BusOptionValues } from '../options.js';
import { addHttpLimitOptions, httpLimitsFrom } from '../../lib/http-limits.js';

interface GatewayCliOptions extends BusOptionValues {
  mqttPort: number; host: string; httpPort: number;
  tlsPort?: number; tlsCert?: string; tlsKey?: string;
  credentials?: string; dev?: boolean; bufferMax: number; commandMaxAgeMs: number;
  maxPacketBytes: number; maxConnections: number; maxPending: number; maxPendingPerAddress: number; connectRatePerAddress: number; connectTimeoutMs: number;
  gatewayId?: string; beatMs: number; stateDir: string;
  ocppPort?: number; ocppTlsPort?: number; ocppKw: number; ocppPrice: number; ocppHeartbeatS: number;
}

/** `evcharging gateway`: the edge gateway. `evcharging gateway add-client`: write a credentials entry. */
export default function register(program: Command): void {
  const cmd = program.command('gateway').description('run the edge gateway (MQTT broker, per-CP auth and ACLs, MQTT-bus bridge)');
  cmd
    .addOption(opt('--mqtt-port <port>', 'MQTT TCP port', 'GATEWAY_MQTT_PORT', parsePort, 1883))
    .addOption(opt('--host <host>', 'address to listen on (GATEWAY_HOST is where others find the gateway, not this)', 'GATEWAY_BIND', undefined, '0.0.0.0'))
    .addOption(opt('--http-port <port>', 'HTTP port for /health and /metrics', 'GATEWAY_HTTP_PORT', parsePort, 8090))
    .addOption(opt('--tls-port <port>', 'MQTT over TLS port (needs --tls-cert and --tls-key)', 'GATEWAY_TLS_PORT', parsePort))
    .addOption(opt('--tls-cert <file>', 'TLS certificate (PEM)', 'GATEWAY_TLS_CERT'))
    .addOption(opt('--tls-key <file>', 'TLS private key (PEM)', 'GATEWAY_TLS_KEY'))
    .addOption(opt('--credentials <file>', 'credentials file (JSON, scrypt-hashed secrets)', 'GATEWAY_CREDENTIALS_FILE'))
    .addOption(opt('--dev [bool]', 'dev mode: admit every client, no ACLs (loud warning)', 'GATEWAY_DEV_MODE', parseBool))
    .addOption(opt('--buffer-max <n>', 'messages held while Kafka is away (telemetry shed first)', 'GATEWAY_BUFFER_MAX', parsePositiveInt, 100_000))
    .addOption(opt('--max-packet-bytes <n>', 'largest MQTT packet after CONNECT; a bigger one closes the connection', 'GATEWAY_MAX_PACKET_BYTES', parsePositiveInt, DEFAULT_EDGE_LIMITS.maxPacketBytes))
    .addOption(opt('--max-connections <n>', 'MQTT connections held at once (lowered to fit the fd limit)', 'GATEWAY_MAX_CONNECTIONS', parsePositiveInt, DEFAULT_EDGE_LIMITS.maxConnections))
    .addOption(opt('--max-pending <n>', 'connections that have not finished CONNECT, in all', 'GATEWAY_MAX_PENDING', parsePositiveInt, DEFAULT_EDGE_LIMITS.maxPending))
    .addOption(opt('--max-pending-per-address <n>', 'connections from one address that have not finished CONNECT', 'GATEWAY_MAX_PENDING_PER_ADDRESS', parsePositiveInt, DEFAULT_EDGE_LIMITS.maxPendingPerAddress))
    .addOption(opt('--connect-rate-per-address <n>', 'new connections per second from one address (burst 4x)', 'GATEWAY_CONNECT_RATE_PER_ADDRESS', parsePositiveInt, DEFAULT_EDGE_LIMITS.connectRatePerAddress))
    .addOption(opt('--connect-timeout-ms <ms>', 'a connection without a whole CONNECT by then is closed', 'GATEWAY_CONNECT_TIMEOUT_MS', parsePositiveInt, DEFAULT_EDGE_LIMITS.connectTimeoutMs))
    .addOption(opt('--command-max-age-ms <ms>', 'commands without a deadline older than this are dropped, not sent to the CP', 'GATEWAY_COMMAND_MAX_AGE_MS', parsePositiveInt, 120_000))
    .addOption(opt('--gateway-id <id>', 'this gateway\'s id on the bus (heartbeat, gw stamp; default gw-<hostname>)', 'GATEWAY_ID', parseId))
    .addOption(opt('--beat-ms <ms>', 'heartbeat period on cp.status', 'GATEWAY_BEAT_MS', parsePositiveInt, 1_000))
    .addOption(opt('--state-dir <dir>', 'what must survive a restart: Kafka spool of critical messages, embedded-bus sessions (files <gateway-id>-<mqtt-port>.*)', 'GATEWAY_STATE_DIR', undefined, './data/gateway'))
    .addOption(opt('--ocpp-port <port>', 'OCPP-J WebSocket port, ws://host:PORT/ocpp/<CP id> (1.6J and 2.0.1; off unless set)', 'GATEWAY_OCPP_PORT', parsePort))
    .addOption(opt('--ocpp-tls-port <port>', 'OCPP-J over TLS, security profile 2 (needs --tls-cert and --tls-key)', 'GATEWAY_OCPP_TLS_PORT', parsePort))
    .addOption(opt('--ocpp-kw <kw>', 'rated power announced for OCPP charge points (OCPP does not say)', 'GATEWAY_OCPP_KW', parsePositiveNumber, 22))
    .addOption(opt('--ocpp-price <eur>', 'price per kWh announced for OCPP charge points', 'GATEWAY_OCPP_PRICE', parseNonNegNumber, 0.35))
    .addOption(opt('--ocpp-heartbeat-s <s>', 'heartbeat interval given to OCPP charge points at boot', 'GATEWAY_OCPP_HEARTBEAT_S', parsePositiveInt, 60));
  addHttpLimitOptions(cmd, 'GATEWAY_');
  addBusOptions(cmd);
  cmd.action(async (o: GatewayCliOptions) => {
    let httpLimits;
    try { httpLimits = httpLimitsFrom(o as unknown as Record<string, unknown>); } catch (err) { throw new ConfigError((err as Error).message); }
    const dev = o.dev === true || (o.dev as unknown) === '' ;
    if (!o.credentials && !dev) throw new ConfigError('gateway needs --credentials <file> (GATEWAY_CREDENTIALS_FILE) or --dev (GATEWAY_DEV_MODE=true)');
    if (o.tlsPort !== undefined && (!o.tlsCert || !o.tlsKey)) throw new ConfigError('--tls-port needs --tls-cert and --tls-key');
    if (o.ocppTlsPort !== undefined && (!o.tlsCert || !o.tlsKey)) throw new ConfigError('--ocpp-tls-port needs --tls-cert and --tls-key');
    const path = await import('node:path');
    const { serve } = await import('../../lib/serve.js');
    const { loadCredentials } = await import('../../registry/credentials.js');
    const { startGateway } = await import('../../gateway/server.js');
    let credentials = null;
    if (o.credentials) {
      try { credentials = loadCredentials(o.credentials); } catch (err) { throw new ConfigError(`--credentials: ${(err as Error).message}`); }
    }
    const bus = busConfigFrom(o, 'evcharging-gateway');
    // The spool / sessions file lives here: an unwritable dir is a configuration error, said once, not a stack trace.
    const fsm = await import('node:fs');
    try {
      fsm.mkdirSync(o.stateDir, { recursive: true });
      fsm.accessSync(o.stateDir, fsm.constants.W_OK);
    } catch (err) {
      throw new ConfigError(`--state-dir ${o.stateDir} (GATEWAY_STATE_DIR) is not writable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    await serve('gateway', (log) => startGateway({
      host: o.host, mqttPort: o.mqttPort, httpPort: o.httpPort,
      tls: o.tlsPort !== undefined ? { port: o.tlsPort, cert: o.tlsCert!, key: o.tlsKey! } : undefined,
      credentials, credentialsFile: o.credentials, httpLimits, bufferMax: o.bufferMax, commandMaxAgeMs: o.commandMaxAgeMs, kafka: bus.kafkaBootstrap ? bus : undefined,
      limits: {
        maxPacketBytes: o.maxPacketBytes, maxConnections: o.maxConnections, maxPending: o.maxPending, maxPendingPerAddress: o.maxPendingPerAddress,
        connectRatePerAddress: o.connectRatePerAddress, connectBurstPerAddress: o.connectRatePerAddress * 4, connectTimeoutMs: o.connectTimeoutMs,
      },
      gatewayId: o.gatewayId, beatMs: o.beatMs,
      ...(bus.kafkaBootstrap ? { spoolFile: path.join(o.stateDir, `${o.gatewayId ?? 'gateway'}-${o.mqttPort}.spool`) }
        : { sessionsFile: path.join(o.stateDir, `${o.gatewayId ?? 'gateway'}-${o.mqttPort}.sessions.json`) }),
      ocpp: o.ocppPort !== undefined || o.ocppTlsPort !== undefined ? {
        port: o.ocppPort, tls: o.ocppTlsPort !== undefined ? { port: o.ocppTlsPort, cert: o.tlsCert!, key: o.tlsKey! } : undefined,
        kw: o.ocppKw, price: o.ocppPrice, heartbeatS: o.ocppHeartbeatS,
      } : undefined,
    }, log));
  });

  cmd.command('add-client')
    .description('add or replace a client in a credentials file (secret hashed with scrypt)')
    .requiredOption('--file <file>', 'credentials file to write')
    .requiredOption('--id <id>', 'CP id or service name (the MQTT username)', parseId)
    .option('--role <role>', `one of ${ROLES.join(', ')} (service = central)`, 'cp')
    .addOption(opt('--secret <secret>', 'the client password; prefer GATEWAY_CLIENT_SECRET or --secret-file (a flag shows in ps)', 'GATEWAY_CLIENT_SECRET'))
    .option('--secret-file <file>', 'read the client password from this file')
    .option('--cp-id <id>', 'for a monitor: the CP it may report for (default: the id after monitor-)', parseId)
    .action(async (a: { file: string; id: string; role: string; secret?: string; secretFile?: string; cpId?: string }) => {
      const secret = secretFrom({ value: a.secret, file: a.secretFile, flag: '--secret', fileFlag: '--secret-file', env: 'GATEWAY_CLIENT_SECRET' });
      if (!secret) throw new ConfigError('add-client needs the secret: GATEWAY_CLIENT_SECRET, --secret-file or --secret');
      const role = (a.role === 'service' ? 'central' : a.role) as Role;
      if (!(ROLES as readonly string[]).includes(role)) throw new ConfigError(`--role must be one of ${ROLES.join(', ')}`);
      const { hashSecret, upsertCredential } = await import('../../registry/credentials.js');
      upsertCredential(a.file, { ...hashSecret(a.id, role, secret), ...(a.cpId ? { cp_id: a.cpId } : {}), created_at: Date.now() });
      process.stdout.write(`added ${a.role} ${a.id} to ${a.file}\n`);
    });
}
