import type net from 'node:net';
import { Counter, Gauge } from 'prom-client';
import type { Aedes, AedesOptions, Client } from 'aedes';
import type { Logger } from '../lib/log.js';
import { parseCpTopic } from '../protocol/index.js';
import { VerifiedSecrets, verifySecretAsync, type CredentialEntry } from '../registry/credentials.js';
import { clientIdProblem, mayPublish, maySubscribe, retainAllowed, type Identity } from './acl.js';
import type { GatewayMetrics } from './metrics.js';
import { coalesceWrites } from './write-coalescer.js';
import { ConnectionGate, DEFAULT_EDGE_LIMITS, LogLimiter, PacketGuard, effectiveMaxConnections, fdLimit, guardReads, type EdgeLimits } from './limits.js';

export interface EdgeOptions {
  /** null = dev mode: anyone is admitted, ACLs are off. */
  credentials: Map<string, CredentialEntry> | null;
  log: Logger;
  metrics: Pick<GatewayMetrics, 'registry' | 'authFailed' | 'aclDenied'>;
  limits?: Partial<EdgeLimits>;
}

type AedesHooks = Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'connectTimeout'>;

/**
 * The gateway's edge: who a connection is, what it may do, and how much of the gateway it
 * may hold. server.ts passes `hooks` to aedes, hands every accepted socket to `handle`, and
 * learns from `onCpGone` when a CP's authoritative connection is gone.
 *
 * Identity rule (docs/security-gateway.md): a client id is bound to its username (acl.ts).
 * A CP has one authoritative connection, the newest: a new CONNECT with the CP's id replaces
 * the older one (MQTT's own take-over, so a rebooted CP is back at once), and only the close
 * of the authoritative connection yields its DISCONNECTED. The replaced one, or any other
 * connection closing, says nothing about the CP. In dev mode the CP's connection is the one
 * whose client id is the CP id it publishes under.
 */
export function createEdge(o: EdgeOptions) {
  const limits: EdgeLimits = { ...DEFAULT_EDGE_LIMITS, ...o.limits };
  const fds = fdLimit();
  const cap = effectiveMaxConnections(limits.maxConnections, fds);
  if (cap < limits.maxConnections) o.log.warn({ configured: limits.maxConnections, fd_limit: fds, max_connections: cap }, 'connection cap lowered to fit the file-descriptor limit');
  limits.maxConnections = cap;

  const registers = [o.metrics.registry];
  const refused = new Counter({ name: 'gateway_refused_connections_total', help: 'connections refused at the edge, by reason (limits, identity rules, bad credentials, mqtt5)', labelNames: ['reason'], registers });
  const pendingGauge = new Gauge({ name: 'gateway_pending_connections', help: 'connections that have not finished CONNECT', registers });
  const openGauge = new Gauge({ name: 'gateway_open_connections', help: 'TCP/TLS connections held', registers });
  const suppressed = new Gauge({ name: 'gateway_log_suppressed_total', help: 'log lines suppressed by the per-source rate limit', registers });
  const staleWills = new Counter({ name: 'gateway_stale_wills_total', help: 'last wills of replaced CP connections, not forwarded', registers });

  const limited = new LogLimiter(o.log);
  const gate = new ConnectionGate(limits);
  const verified = new VerifiedSecrets();
  const identities = new WeakMap<Client, Identity>();
  /** Live connections per identity, oldest first; for a CP the last is the authoritative one. */
  const live = new Map<string, Client[]>();
  /** Dev mode: CP ids whose authoritative connection is known (client id = CP id). */
  const devCps = new Map<string, Client[]>();
  const goneListeners: Array<(cpId: string) => void> = [];
  const addrOf = new WeakMap<Client, string>();
  const pruneTimer = setInterval(() => { gate.prune(); suppressed.set(limited.suppressed); }, 10_000);
  pruneTimer.unref();

  const source = (c: Client) => addrOf.get(c) ?? 'unknown';
  const refuse = (reason: string, addr: string, extra: Record<string, unknown> = {}) => {
    refused.inc({ reason });
    limited.warn(`addr:${addr}`, { reason, addr, ...extra }, 'connection refused at the edge');
  };

  const addLive = (map: Map<string, Client[]>, id: string, c: Client) => {
    const list = map.get(id) ?? [];
    list.push(c);
    map.set(id, list);
  };
  /** Removes `c`; true if it was the authoritative (newest) connection and nothing replaced it. */
  const removeLive = (map: Map<string, Client[]>, id: string, c: Client): boolean => {
    const list = map.get(id);
    if (!list) return false;
    const i = list.indexOf(c);
    if (i < 0) return false;
    const wasLast = i === list.length - 1;
    list.splice(i, 1);
    if (!list.length) map.delete(id);
    return wasLast && !list.length;
  };

  function closed(c: Client) {
    const who = identities.get(c);
    if (who) {
      const gone = removeLive(live, who.id, c);
      if (who.role === 'cp' && gone) for (const l of goneListeners) l(who.id);
    } else if (!o.credentials && c.id) {
      if (removeLive(devCps, c.id, c)) for (const l of goneListeners) l(c.id);
    }
  }

  /**
   * A will is published after its connection closed. That of a replaced connection (a CP that
   * reconnected before the gateway saw the old link go) comes after the take-over, and may
   * reach central after the new connection's first statuses: a connected CP would be shown
   * DISCONNECTED until its state next changes. Only the authoritative connection speaks for the CP.
   */
  const staleWill = (c: Client, cpId: string): boolean => {
    if (!c.closed) return false;
    const list = identities.has(c) ? live.get(identities.get(c)!.id) : devCps.get(cpId);
    return !!list && list[list.length - 1] !== c;
  };

  const authError = (code: 2 | 3 | 4 | 5, msg: string) => Object.assign(new Error(msg), { returnCode: code });

  const hooks: AedesHooks = {
    connectTimeout: limits.connectTimeoutMs,
    preConnect(client, packet, cb) {
      if (packet.protocolVersion === 5) {
        // aedes speaks MQTT 3.1.1 and 3.1 only: say so once per source instead of a bare CONNACK.
        refused.inc({ reason: 'mqtt5' });
        limited.warn(`addr:${source(client)}`, { addr: source(client), client: packet.clientId, protocol_version: 5 }, 'MQTT 5 client refused: this gateway speaks MQTT 3.1.1 (and 3.1); connect with protocol version 4');
      }
      cb(null, true);
    },
    authenticate(client, username, password, done) {
      const addr = source(client);
      if (!o.credentials) {
        // Dev mode: a reconnect of a known CP (same client id) takes its authority at once.
        if (devCps.has(client.id)) addLive(devCps, client.id, client);
        return done(null, true);
      }
      const entry = username ? o.credentials.get(username) : undefined;
      const secret = password?.toString();
      const fail = (reason: string, code: 2 | 3 | 4 | 5, msg: string) => {
        o.metrics.authFailed.inc();
        refused.inc({ reason });
        limited.warn(`id:${username ?? addr}`, { client: client.id, username, addr, reason }, 'connection refused');
        done(authError(code, msg) as never, false);
      };
      const admit = (e: CredentialEntry) => {
        const who: Identity = { id: e.id, role: e.role };
        const problem = clientIdProblem(who, client.id);
        if (problem) return fail('client_id', 2, problem);
        const n = live.get(who.id)?.length ?? 0;
        if (who.role !== 'cp' && n >= limits.maxConnectionsPerIdentity) return fail('identity_connections', 3, `at most ${limits.maxConnectionsPerIdentity} connections per identity`);
        if (client.closed) return; // went away while its secret was checked
        identities.set(client, who);
        addLive(live, who.id, client);
        done(null, true);
      };
      if (!entry || !secret) return fail('bad_credentials', 4, 'bad credentials');
      if (entry.revoked_at !== undefined) return fail('revoked', 4, 'bad credentials');
      if (verified.has(entry, secret)) return admit(entry);
      void verifySecretAsync(entry, secret).then((ok) => {
        if (!ok) return fail('bad_credentials', 4, 'bad credentials');
        verified.add(entry, secret);
        admit(entry);
      });
    },
    authorizePublish(client, packet, cb) {
      if (!client) return cb(null);
      authorizePublish(client, packet, parseCpTopic(packet.topic), cb);
    },
    authorizeSubscribe(client, sub, cb) {
      if (!o.credentials) return cb(null, sub);
      const who = identities.get(client);
      if (who && maySubscribe(who, sub.topic)) return cb(null, sub);
      // Refused with SUBACK 0x80 (MQTT 3.1.1 §3.9.3), the connection stays: a client learns which filter was refused.
      deny(client, who, 'subscribe', sub.topic, () => cb(null, null));
    },
  };

  /** The publish ACL, for a topic its caller already parsed (the server's hot path parses it once). */
  function authorizePublish(client: Client, packet: { topic: string; retain: boolean; payload: unknown }, cp: ReturnType<typeof parseCpTopic>, cb: (err: Error | null) => void): void {
    if (cp && staleWill(client, cp.cpId)) { staleWills.inc(); return cb(new Error('will of a replaced connection')); }
    if (!o.credentials) {
      // Dev mode: ACLs off, but nothing is retained on the bus, and the CP's connection is the one named like it.
      if (packet.retain && packet.topic.startsWith('bus/') && !retainAllowed(packet.topic)) return deny(client, undefined, 'publish', packet.topic, cb);
      if (cp && cp.channel !== 'cmd' && cp.cpId === client.id && !devCps.get(cp.cpId)?.includes(client)) addLive(devCps, cp.cpId, client);
      return cb(null);
    }
    const who = identities.get(client);
    if (!who || !mayPublish(who, packet.topic, { retain: packet.retain, payload: packet.payload as Buffer })) return deny(client, who, 'publish', packet.topic, cb);
    cb(null);
  }

  function deny(client: Client, who: Identity | undefined, action: 'publish' | 'subscribe', topic: string, cb: (e: Error) => void) {
    o.metrics.aclDenied.inc({ action });
    limited.warn(`id:${who?.id ?? source(client)}`, { client: client.id, id: who?.id, role: who?.role, action, topic: topic.slice(0, 200) }, `${action} refused by ACL`);
    cb(new Error('not authorized'));
  }

  return {
    hooks,
    authorizePublish,
    limits,
    /** Admits an accepted socket (or closes it) and hands it to aedes behind the packet-size guard. */
    handle(broker: Aedes, sock: net.Socket): void {
      const addr = sock.remoteAddress ?? 'unknown';
      const why = gate.admit(addr);
      if (why) { refuse(why, addr); sock.destroy(); return; }
      openGauge.set(gate.open); pendingGauge.set(gate.pending);
      let pending = true;
      const settle = () => { if (pending) { pending = false; gate.settled(addr); pendingGauge.set(gate.pending); } };
      guardReads(sock, new PacketGuard(limits.maxConnectBytes, limits.maxPacketBytes), (reason) => refuse(reason, addr, { max_connect_bytes: limits.maxConnectBytes, max_packet_bytes: limits.maxPacketBytes }));
      sock.on('error', () => undefined);
      coalesceWrites(sock);
      const client = broker.handle(sock) as Client;
      addrOf.set(client, addr);
      client.once('connected', settle);
      sock.once('close', () => {
        settle();
        gate.closed();
        openGauge.set(gate.open);
        closed(client);
      });
    },
    /** The authenticated identity of a client (undefined in dev mode or before CONNECT). */
    identityOf: (c: Client) => identities.get(c),
    /** Called with a CP id when its authoritative connection is gone (not when a replaced or stray one closes). */
    onCpGone(listener: (cpId: string) => void) { goneListeners.push(listener); },
    /** The per-source log limiter, for other edge warnings (e.g. rejected CP messages). */
    log: limited,
    stats: () => ({ open: gate.open, pending: gate.pending, addresses: gate.addresses, log_suppressed: limited.suppressed }),
    close() { clearInterval(pruneTimer); },
  };
}
export type Edge = ReturnType<typeof createEdge>;
