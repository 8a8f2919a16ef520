import { BUS_TOPICS, CP_CHANNEL_TABLE, CP_CHANNELS, EMBEDDED_BUS_PREFIX, parseCpTopic, type CpChannel } from '../protocol/index.js';
import type { Role } from '../registry/credentials.js';

/** Who a connected client is: its authenticated username (the registry id) and that entry's role. */
export interface Identity { id: string; role: Role }

/**
 * Least privilege per role, as topic patterns in which `%u` stands for the client's own id
 * (mosquitto's `%u`, EMQX's `${username}`); `+` and `#` as in MQTT filters. A publish must
 * match a pattern; a subscription filter must be covered by one (every topic it can match is
 * allowed). Anything else is refused. docs/security-gateway.md lists the same table.
 *
 * - cp: its own channels only, subscribe to its own commands; never `cmd`, never `bus/`.
 * - driver: its own requests (payload `driver_id` = own id), its own updates.
 * - central: alone commands CPs and answers drivers; reads the whole bus.
 * - gateway (a remote bridge): CP traffic in, commands out.
 * - monitor: nothing on MQTT (it reports to central over HTTP).
 * - admin: reads the bus (operations), publishes nothing.
 */
export const ROLE_ACL: Record<Role, { publish: readonly string[]; subscribe: readonly string[] }> = {
  cp: { publish: CP_CHANNELS.map((c) => `cp/%u/${c}`), subscribe: ['cp/%u/cmd'] },
  driver: { publish: [`bus/${BUS_TOPICS.driverRequests}/%u`], subscribe: [`bus/${BUS_TOPICS.driverUpdates}/%u`] },
  central: { publish: [`bus/${BUS_TOPICS.centralCommands}/+`, `bus/${BUS_TOPICS.driverUpdates}/+`], subscribe: ['bus/#'] },
  gateway: { publish: [`bus/${BUS_TOPICS.cpStatus}/+`, `bus/${BUS_TOPICS.cpTelemetry}/+`], subscribe: [`bus/${BUS_TOPICS.centralCommands}/+`] },
  monitor: { publish: [], subscribe: [] },
  admin: { publish: [], subscribe: ['bus/#'] },
};

/** The payload field that names a bus message's owner, which must equal the topic's key. */
const OWNER_FIELD: Record<string, string> = {
  [BUS_TOPICS.centralCommands]: 'cp_id',
  [BUS_TOPICS.driverRequests]: 'driver_id',
  [BUS_TOPICS.driverUpdates]: 'driver_id',
};

/** True if filter `f` is covered by pattern `p`: every topic `f` matches, `p` matches too. */
export function covers(p: string, f: string): boolean {
  const ps = p.split('/'); const fs = f.split('/');
  for (let i = 0; i < ps.length; i++) {
    if (ps[i] === '#') return true;
    if (i >= fs.length) return false;
    if (fs[i] === '#') return false;
    if (ps[i] === '+') { if (fs[i]!.startsWith('$') && i === 0) return false; continue; }
    if (fs[i] !== ps[i]) return false;
  }
  return ps.length === fs.length;
}

const patternsOf = (who: Identity, kind: 'publish' | 'subscribe') => ROLE_ACL[who.role][kind].map((p) => p.replaceAll('%u', who.id));

/**
 * Publish rules: the role's patterns; no retained message on a bus topic (a retained fake
 * would be served to every later subscriber), on a CP topic only where the channel table says
 * (its status); on `bus/<topic>/<key>` the payload's owner field (cp_id / driver_id) must be
 * the key. `payload` omitted = topic check only.
 */
export function mayPublish(who: Identity, topic: string, opts: { retain?: boolean; payload?: Buffer | string } = {}): boolean {
  if (!patternsOf(who, 'publish').some((p) => covers(p, topic))) return false;
  if (opts.retain && !retainAllowed(topic)) return false;
  if (opts.payload === undefined) return true;
  const parts = topic.split('/');
  const field = parts[0] === EMBEDDED_BUS_PREFIX ? OWNER_FIELD[parts[1]!] : undefined;
  if (!field) return true;
  try {
    const v = JSON.parse(opts.payload.toString()) as Record<string, unknown> | null;
    return !!v && typeof v === 'object' && v[field] === parts[2];
  } catch { return false; }
}

/** Retained only on a CP's own channels that the channel table publishes retained; never under `bus/`. */
export function retainAllowed(topic: string): boolean {
  const cp = parseCpTopic(topic);
  return !!cp && cp.channel !== 'cmd' && CP_CHANNEL_TABLE[cp.channel as CpChannel].retain;
}

/** Subscribe rules: the filter must be covered by one of the role's patterns. */
export function maySubscribe(who: Identity, filter: string): boolean {
  return patternsOf(who, 'subscribe').some((p) => covers(p, filter));
}

/**
 * Identity bound at the edge: the MQTT client id must be the username (a CP: exactly its id)
 * or, for other roles, `<username>:<suffix>` (`:` never occurs in an id, so no identity can
 * pick a client id that belongs to another and take its session over). Returns why not, or
 * undefined when the client id is acceptable.
 */
export function clientIdProblem(who: Identity, clientId: string): string | undefined {
  if (clientId === who.id) return undefined;
  if (who.role === 'cp') return `a CP's client id must be its id (${who.id})`;
  if (clientId.startsWith(`${who.id}:`) && clientId.length <= who.id.length + 65) return undefined;
  return `client id must be ${who.id} or ${who.id}:<suffix>`;
}
