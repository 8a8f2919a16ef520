import { EMBEDDED_BUS_PREFIX, mqttTopics, parseCpTopic } from '../protocol/index.js';
import type { Role } from '../registry/credentials.js';

/** Who a connected client is. In dev mode a client's id is its MQTT client id / username and role is guessed. */
export interface Identity { id: string; role: Role }

/**
 * Publish rules. A CP publishes only `cp/<own id>/<channel>` (never cmd). A service publishes only
 * under `bus/` except `bus/cp.*` (those come from the bridge) — commands to CPs go through
 * `bus/central.commands/<cp>` so they are validated by the bridge; services never write `cp/<id>/cmd`.
 */
export function mayPublish(who: Identity, topic: string): boolean {
  if (who.role === 'cp') {
    const t = parseCpTopic(topic);
    return !!t && t.cpId === who.id && t.channel !== 'cmd';
  }
  const parts = topic.split('/');
  return parts[0] === EMBEDDED_BUS_PREFIX && parts.length === 3 && !parts[1]!.startsWith('cp.');
}

/** Subscribe rules. A CP subscribes only to its own command topic; a service to anything under `bus/`. */
export function maySubscribe(who: Identity, filter: string): boolean {
  if (who.role === 'cp') return filter === mqttTopics.command(who.id);
  return filter === `${EMBEDDED_BUS_PREFIX}/#` || filter.startsWith(`${EMBEDDED_BUS_PREFIX}/`);
}
