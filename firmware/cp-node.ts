import type { HwProfile } from '../hw-profiles/profile.js';
import type { Logger } from '../lib/log.js';
import { createEngine, type Engine } from './engine.js';
import { createHal } from './hal/create.js';
import { startHealthServer, type HealthControl, type HealthServer } from './health-server.js';
import { createMqttLink, type MqttLink } from './mqtt-link.js';
import type { OcppLink } from './ocpp/ocpp-link.js';
import { FW_VERSION } from './engine.js';
import type { OcppVersion } from '../lib/ocpp.js';

export interface CpNodeOptions {
  cpId: string;
  profile: HwProfile;
  mqttUrl: string;
  secret?: string;
  /** Set: speak OCPP-J to this central system instead of MQTT to the project's gateway. */
  ocpp?: { url: string; version: OcppVersion; meterIntervalS: number; caFile?: string; onCall?: (method: string, ms: number, ok: boolean) => void };
  /** 0 = any free port (read it back from `health.port`). */
  healthPort: number;
  /** Address to listen on. */
  healthHost?: string;
  /** Address announced to others (omitted when listening on a wildcard). */
  announceHost?: string;
  speed?: number;
  tickMs?: number;
  log: Logger;
  /** Who may send FAULT/REPAIR to the health port (default loopback only). */
  healthControl?: HealthControl;
}

export interface CpNode {
  engine: Engine;
  link: MqttLink | OcppLink;
  /** The OCPP link, when the CP speaks OCPP. */
  ocpp?: OcppLink;
  health: HealthServer;
  /** Clean stop: ends a running session, publishes DISCONNECTED, closes the link, port and HAL. */
  close(): Promise<void>;
}

/** One complete charging point: HAL + engine loop + MQTT link + health port. Safe to run many per process. */
export async function startCpNode(o: CpNodeOptions): Promise<CpNode> {
  // Loaded only for OCPP (before anything is opened): an MQTT charging point, and the firmware
  // package's start-up, skip ocpp-rpc and its JSON-schema validators.
  const ocppModule = o.ocpp ? await import('./ocpp/ocpp-link.js') : undefined;
  const hal = await createHal(o.profile, { speed: o.speed, log: o.log });
  const health = await startHealthServer({ host: o.healthHost, port: o.healthPort, log: o.log, cpId: o.cpId, control: o.healthControl }, {
    health: () => engine.health(),
    snapshot: () => ({ ...engine.snapshot(), health_requests: health.counters, bad_commands: link?.counters.badCommands ?? 0 }),
    injectFault: (k) => engine.injectFault(k),
    repair: (k) => engine.repair(k),
  });
  // The link is created after the engine; the engine only reaches it through this port.
  let link: MqttLink | OcppLink | undefined;
  const engine: Engine = createEngine({
    cpId: o.cpId, profile: o.profile, hal, log: o.log, tickMs: o.tickMs,
    healthPort: health.port, healthHost: o.announceHost,
    link: { send: (msg) => link?.send(msg) },
  });
  try {
    await engine.start();
  } catch (err) {
    await health.close();
    throw err;
  }
  let ocpp: OcppLink | undefined;
  if (o.ocpp && ocppModule) {
    ocpp = ocppModule.createOcppLink({
      url: o.ocpp.url, cpId: o.cpId, version: o.ocpp.version, secret: o.secret, caFile: o.ocpp.caFile, meterIntervalS: o.ocpp.meterIntervalS,
      vendor: 'evcharging', model: o.profile.name, fwVersion: FW_VERSION, phases: o.profile.phases, log: o.log, onCall: o.ocpp.onCall,
    });
    link = ocpp;
    ocpp.start(engine);
  } else {
    link = createMqttLink({
      url: o.mqttUrl, cpId: o.cpId, secret: o.secret, log: o.log,
      onUp: () => engine.linkUp(), onDown: () => engine.linkDown(), onCommand: (m) => engine.command(m), onBadCommand: () => engine.badCommand(),
    });
  }
  let closed: Promise<void> | undefined;
  return {
    engine, link, health, ...(ocpp ? { ocpp } : {}),
    close: () => (closed ??= (async () => {
      await engine.stop();
      await link!.close();
      await health.close();
    })()),
  };
}
