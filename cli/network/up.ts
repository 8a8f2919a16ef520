import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../lib/log.js';
import { errText } from '../../lib/log.js';
import { onShutdown } from '../../lib/lifecycle.js';
import { ConfigError } from '../options.js';
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
}

const PINO_LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** `evcharging up`: gateway, central, N CPs (engine + monitor each), M drivers, and the control endpoint. */
export async function runUp(o: UpOptions, log: Logger): Promise<void> {
  const port = async (p: number, what: string) => {
    if (p === 0) return allocatePort(o.host);
    try { await assertPortFree(o.host, p, what); } catch (err) { throw new ConfigError(errText(err)); }
    return p;
  };
  const settings: NetworkSettings = {
    host: o.host,
    gatewayMqttPort: await port(o.gatewayMqttPort, '--gateway-mqtt-port (GATEWAY_MQTT_PORT)'),
    gatewayHttpPort: await port(o.gatewayHttpPort, '--gateway-http-port (GATEWAY_HTTP_PORT)'),
    centralPort: await port(o.centralPort, '--central-port (CENTRAL_PORT)'),
    kafkaBootstrap: o.kafkaBootstrap?.length ? o.kafkaBootstrap : undefined,
    dataDir: path.resolve(o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'evcharging-up-'))),
    adminToken: o.adminToken ?? crypto.randomBytes(18).toString('base64url'),
    speed: o.speed, driverWaitS: o.driverWaitS, maxChargeS: o.maxChargeS,
  };
  fs.mkdirSync(settings.dataDir, { recursive: true });

  const sup = new Supervisor({
    cwd: process.cwd(), logDir: path.join(settings.dataDir, 'logs'), log,
    echoLevel: PINO_LEVELS[o.childLogs] ?? 40, stopTimeoutMs: o.stopTimeoutS * 1000,
  });
  const network = new Network(settings, sup, { healthBasePort: o.healthBasePort, log, startTimeoutMs: o.startTimeoutS * 1000 });
  const dashboard = `${centralUrl(settings)}/`;
  const summary = () => ({
    dashboard, bus: settings.kafkaBootstrap ? `kafka ${settings.kafkaBootstrap.join(',')}` : 'embedded',
    gateway_mqtt: `mqtt://${settings.host}:${settings.gatewayMqttPort}`, central: centralUrl(settings), data_dir: settings.dataDir, cps: network.cpIds(),
  });

  const control = await startControlServer(network, summary, '127.0.0.1', o.controlPort, log).catch((err: unknown) => {
    throw new ConfigError(`--control-port (EVCHARGING_CONTROL_PORT) ${o.controlPort}: ${errText(err)}; is another \`evcharging up\` running?`);
  });
  const starting = new AbortController();
  // Closers run in reverse: the control endpoint goes first, then the components, drivers first.
  onShutdown(log, [() => sup.stopAll(), () => control.close(), () => starting.abort()], (o.stopTimeoutS * 6 + 5) * 1000);
  process.once('exit', () => sup.killAllNow()); // a second Ctrl-C exits at once: take the children along

  log.info({ bus: summary().bus, data_dir: settings.dataDir, control_port: control.port }, 'starting the network');
  try {
    await network.startCore(starting.signal);
    for (let i = 0; i < o.cps; i++) await network.addCp({ id: cpIdForIndex(i) });
    for (let i = 0; i < o.drivers; i++) network.addDriver(driverIdForIndex(i));
  } catch (err) {
    if (starting.signal.aborted) return; // Ctrl-C during start-up: shutdown is under way
    log.error({ err: errText(err) }, 'the network did not start; stopping what did');
    await sup.stopAll();
    await control.close();
    process.exit(1);
  }
  log.info({ dashboard, admin_token: settings.adminToken, control_port: control.port, cps: o.cps, drivers: o.drivers }, `network up: dashboard at ${dashboard}`);
  if (!(process.stdout.isTTY)) return;
  process.stdout.write(`\n  dashboard   ${dashboard}\n  admin token ${settings.adminToken}\n  logs        ${path.join(settings.dataDir, 'logs')}\n  try         evcharging status | add-cp 11 --kw 75 --price 0.38 | add-driver frank | crash | restart CP-002\n  stop        Ctrl-C\n\n`);
}

export { StartError };
