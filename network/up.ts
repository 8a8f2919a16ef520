import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../lib/log.js';
import { errText } from '../lib/log.js';
import { logFormatFor } from '../lib/log-format.js';
import { ConfigError } from '../cli/options.js';
import { startControlServer } from './control-server.js';
import { Network, StartError } from './network.js';
import { centralUrl, cpIdForIndex, driverIdForIndex, type NetworkSettings } from './plan.js';
import { allocatePort, assertPortFree } from './ports.js';
import { Supervisor } from './supervisor.js';

export interface UpOptions {
  cps: number;
  drivers: number;
  host: string;
  gatewayMqttPort: number;
  gatewayHttpPort: number;
  centralPort: number;
  healthBasePort: number;
  controlPort: number;
  kafkaBootstrap?: string[];
  dataDir?: string;
  adminToken?: string;
  speed: number;
  driverWaitS: number;
  maxChargeS: number;
  stopTimeoutS: number;
  startTimeoutS: number;
  childLogs: string;
  /** Run the weather service with this source (off: not at all). */
  weather?: 'off' | 'sim' | 'openweather';
}

const PINO_LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** `evcharging up`: gateway, central, N CPs (engine + monitor each), M drivers, and the control endpoint. */
export async function runUp(o: UpOptions, log: Logger): Promise<void> {
  const port = async (p: number, what: string) => {
    if (p === 0) return allocatePort(o.host);
    try { await assertPortFree(o.host, p, what); } catch (err) { throw new ConfigError(errText(err)); }
    return p;
  };
  // A data directory we made for this run only is removed when the network stops.
  const tempDir = o.dataDir ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'evcharging-up-'));
  const settings: NetworkSettings = {
    host: o.host,
    gatewayMqttPort: await port(o.gatewayMqttPort, '--gateway-mqtt-port (GATEWAY_MQTT_PORT)'),
    gatewayHttpPort: await port(o.gatewayHttpPort, '--gateway-http-port (GATEWAY_HTTP_PORT)'),
    centralPort: await port(o.centralPort, '--central-port (CENTRAL_PORT)'),
    kafkaBootstrap: o.kafkaBootstrap?.length ? o.kafkaBootstrap : undefined,
    dataDir: path.resolve(o.dataDir ?? tempDir!),
    adminToken: o.adminToken ?? crypto.randomBytes(18).toString('base64url'),
    speed: o.speed, driverWaitS: o.driverWaitS, maxChargeS: o.maxChargeS,
  };
  fs.mkdirSync(settings.dataDir, { recursive: true });

  const sup = new Supervisor({
    cwd: process.cwd(), logDir: path.join(settings.dataDir, 'logs'), log,
    echoLevel: PINO_LEVELS[o.childLogs] ?? 40, stopTimeoutMs: o.stopTimeoutS * 1000, format: logFormatFor(process.stdout),
    // Component logs are files, read by machines (and by us, to echo them readably): JSON always.
    env: { LOG_FORMAT: 'json' },
  });
  const network = new Network(settings, sup, { healthBasePort: o.healthBasePort, log, startTimeoutMs: o.startTimeoutS * 1000, reservedPorts: [o.controlPort] });
  const dashboard = `${centralUrl(settings)}/`;
  const summary = () => ({
    dashboard, bus: settings.kafkaBootstrap ? `kafka ${settings.kafkaBootstrap.join(',')}` : 'embedded',
    gateway_mqtt: `mqtt://${settings.host}:${settings.gatewayMqttPort}`, central: centralUrl(settings), data_dir: settings.dataDir, cps: network.cpIds(),
  });

  const control = await startControlServer(network, summary, '127.0.0.1', o.controlPort, log).catch((err: unknown) => {
    throw new ConfigError(`--control-port (EVCHARGING_CONTROL_PORT) ${o.controlPort}: ${errText(err)}; is another \`evcharging up\` running?`);
  });
  const starting = new AbortController();
  onStopSignals(log, async () => {
    starting.abort();
    await control.close();
    await sup.stopAll(); // drivers first, the gateway last
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  }, (o.stopTimeoutS * 6 + 5) * 1000);
  process.once('exit', () => sup.killAllNow()); // whatever way we exit, the children go with us

  log.info({ bus: summary().bus, data_dir: settings.dataDir, control_port: control.port, control_token_file: control.tokenFile }, 'starting the network');
  const loopback = o.host === 'localhost' || o.host === '::1' || /^127\./.test(o.host);
  if (loopback) log.info({ host: o.host }, `dev mode: every component listens on loopback (${o.host}) only; the control port needs the token in ${control.tokenFile}`);
  else log.warn({ host: o.host }, `dev mode on ${o.host}: the gateway admits anyone and monitor reports are unauthenticated, reachable from the network`);
  try {
    await network.startCore(starting.signal);
    for (let i = 0; i < o.cps && !starting.signal.aborted; i++) await network.addCp({ id: cpIdForIndex(i) }, { waitKnown: false });
    // Drivers start once central lists every CP as available: no request is refused for a CP that is starting.
    if (o.drivers > 0 && !starting.signal.aborted) await network.waitKnown(network.cpIds(), starting.signal);
    // After that wait: a CP the weather takes out of service is not one that is still starting.
    if (o.weather && o.weather !== 'off' && !starting.signal.aborted) network.addWeather(o.weather);
    for (let i = 0; i < o.drivers && !starting.signal.aborted; i++) network.addDriver(driverIdForIndex(i), { newestFirst: false });
    if (starting.signal.aborted) return;
  } catch (err) {
    if (starting.signal.aborted) return; // Ctrl-C during start-up: shutdown is under way
    log.error({ err: errText(err) }, 'the network did not start; stopping what did');
    await sup.stopAll();
    await control.close();
    process.exit(1);
  }
  log.info({ dashboard, admin_token: settings.adminToken, control_port: control.port, cps: o.cps, drivers: o.drivers }, `network up: dashboard at ${dashboard}`);
  if (!(process.stdout.isTTY)) return;
  process.stdout.write(`\n  dashboard   ${dashboard}\n  admin token ${settings.adminToken}\n  logs        ${path.join(settings.dataDir, 'logs')}${tempDir ? ' (removed at exit; keep them with --data-dir)' : ''}\n`
    + `  try         npx evcharging status | add-cp 12 75 0.38 | add-driver frank 8105 | crash CP-002 | restart CP-002\n  stop        Ctrl-C\n\n`);
}

/**
 * Ctrl-C, SIGTERM, a closed terminal: stop gracefully, once. Under `npm start` one Ctrl-C
 * arrives twice (from the terminal, and forwarded by npm), so a repeat within 2 s is the same
 * request; a later one means "now": exit at once, and the exit hook SIGKILLs the components.
 */
function onStopSignals(log: Logger, stop: () => Promise<void>, deadlineMs: number): void {
  let firstAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt) {
      if (Date.now() - firstAt < 2_000) return;
      log.warn({ signal }, 'second signal: killing every component now');
      process.exit(130);
    }
    firstAt = Date.now();
    log.info({ signal }, 'shutting down');
    setTimeout(() => { log.warn('shutdown deadline passed, killing what is left'); process.exit(1); }, deadlineMs).unref();
    stop().then(() => { log.info('stopped'); process.exit(0); }, (err: unknown) => { log.warn({ err: errText(err) }, 'error while stopping'); process.exit(1); });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
}

export { StartError };
