import type { HwProfile } from '../hw-profiles/profile.js';
import type { Logger } from '../lib/log.js';
import { createEngine, type Engine } from './engine.js';
import { createHal } from './hal/create.js';
import { startHealthServer, type HealthServer } from './health-server.js';
import { createMqttLink, type MqttLink } from './mqtt-link.js';

export interface CpNodeOptions {
  cpId: string;
  profile: HwProfile;
  mqttUrl: string;
  secret?: string;
  /** 0 = any free port (read it back from `health.port`). */
  healthPort: number;
  /** Address to listen on. */
  healthHost?: string;
  /** Address announced to others (omitted when listening on a wildcard). */
  announceHost?: string;
  speed?: number;
  tickMs?: number;
  log: Logger;
}

export interface CpNode {
  engine: Engine;
  link: MqttLink;
  health: HealthServer;
  /** Clean stop: ends a running session, publishes DISCONNECTED, closes the link, port and HAL. */
  close(): Promise<void>;
}

/** One complete charging point: HAL + engine loop + MQTT link + health port. Safe to run many per process. */
export async function startCpNode(o: CpNodeOptions): Promise<CpNode> {
  const hal = await createHal(o.profile, { speed: o.speed, log: o.log });
  const health = await startHealthServer({ host: o.healthHost, port: o.healthPort, log: o.log, cpId: o.cpId }, {
    health: () => engine.health(),
    snapshot: () => ({ ...engine.snapshot(), health_requests: health.counters, bad_commands: link?.counters.badCommands ?? 0 }),
    injectFault: (k) => engine.injectFault(k),
    repair: (k) => engine.repair(k),
  });
  // The link is created after the engine; the engine only reaches it through this port.
  let link: MqttLink | undefined;
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
  link = createMqttLink({
    url: o.mqttUrl, cpId: o.cpId, secret: o.secret, log: o.log,
    onUp: () => engine.linkUp(), onDown: () => engine.linkDown(), onCommand: (m) => engine.command(m), onBadCommand: () => engine.badCommand(),
  });
  let closed: Promise<void> | undefined;
  return {
    engine, link, health,
    close: () => (closed ??= (async () => {
      await engine.stop();
      await link!.close();
      await health.close();
    })()),
  };
}
