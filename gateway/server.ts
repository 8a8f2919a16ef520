import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { Aedes, type Client } from 'aedes';
import type { Logger } from '../lib/log.js';
import {
  BUS_TOPICS, CP_CHANNEL_TABLE, ID_PATTERN, decode, CentralCommandMsg, parseCpTopic, parseEmbeddedBusTopic, mqttTopics, type CpChannel,
} from '../protocol/index.js';
import type { CredentialEntry } from '../registry/credentials.js';
import { createEdge } from './edge.js';
import type { EdgeLimits } from './limits.js';
import { reachableUrls } from '../lib/addresses.js';
import { connectionLost, gatewayBeat, routeCpMessage, routeCpPublish, type Rejected, type Routed } from './bridge.js';
import { CommandRouter } from './commands.js';
import { DurableSessions } from './sessions.js';
import { childrenOf, createGatewayMetrics } from './metrics.js';
import type { BusSink, SinkCounters } from './sink.js';
import { EmbeddedSink } from './sink-embedded.js';
import { KafkaSink } from './sink-kafka.js';
import type { BusConfig } from '../bus/types.js';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS, fastifyLimitOptions, type HttpLimits } from '../lib/http-limits.js';
import { followCredentials } from '../registry/credentials-watch.js';
import type { CpPort } from './ocpp/port.js';
import { attachOcpp, type OcppGatewayOptions } from './ocpp/server.js';
import { persistenceWithRetainedIndex } from './retained-index.js';

export interface GatewayOptions {
  host: string;
  mqttPort: number;
  httpPort: number;
  tls?: { port: number; cert: string; key: string };
  /** null = dev mode: anyone is admitted, ACLs are off, payloads are still validated. */
  credentials: Map<string, CredentialEntry> | null;
  /** Messages held on their way to the bus (Kafka away, or more offered than the bus takes); telemetry is shed beyond. */
  bufferMax: number;
  /** Set: bridge to Kafka. Unset: the embedded bus on this broker. */
  kafka?: BusConfig;
  /** A Kafka send unanswered this long counts as an outage (default 3000 ms). */
  kafkaStallMs?: number;
  /** On close, how long to wait for the bus to take what is buffered (default 2000 ms; the shutdown deadline is 5 s). */
  drainMs?: number;
  /** Commands without a deadline older than this (by their ts) are dropped, not sent to a CP (default 120000 ms). */
  commandMaxAgeMs?: number;
  /** This gateway's id on the bus (heartbeat key, `gw` stamp, its own command consumer group). Default `gw-<hostname>`. */
  gatewayId?: string;
  /** Heartbeat period (default 1000 ms). */
  beatMs?: number;
  /** Kafka: the spool file for critical messages acknowledged but not yet on Kafka (unset: no spool, acks wait for Kafka). */
  spoolFile?: string;
  spoolMax?: number;
  /** Embedded bus: where the persistent sessions' subscriptions are kept across restarts (unset: in memory only). */
  sessionsFile?: string;
  /** Edge limits (packet size, connections, rates, CONNECT timeout); defaults in gateway/limits.ts. */
  limits?: Partial<EdgeLimits>;
  /** Limits of the /health + /metrics HTTP server (lib/http-limits.ts). */
  httpLimits?: HttpLimits;
  /** The file `credentials` came from: followed, so a registered identity is admitted and a revoked one disconnected at once. */
  credentialsFile?: string;
  /** A CP's reading that arrives while its previous one has waited in the forward buffer longer than this is dropped, counted as superseded (default 250 ms). */
  supersedeAfterMs?: number;
  /** Set: also accept OCPP-J charge points (gateway/ocpp/), bridged through the same seam (`ingestCpMessage`, `attachCommands`). */
  ocpp?: OcppGatewayOptions;
}

export interface RunningGateway {
  mqttPort: number; httpPort: number; tlsPort?: number; ocppPort?: number; ocppTlsPort?: number;
  gatewayId: string;
  /**
   * The seam for other CP protocols (an OCPP adapter): a CP message as an object, from a CP the
   * adapter authenticated as `cpId`. Validated, checked and stamped exactly like an MQTT
   * publish; resolves once the bus (or the spool) holds it, or with the reason it was refused.
   */
  ingestCpMessage(cpId: string, msg: unknown): Promise<{ ok: true } | Rejected>;
  /** The other half of the seam: take the commands for `cpId` instead of MQTT. Returns the detach. */
  attachCommands(cpId: string, deliver: (cmd: CentralCommandMsg) => void): () => void;
  close(): Promise<void>;
}

/** What the gateway uses of aedes beyond its typings: its emitter, its persistence and its client table. */
interface AedesInternals {
  mq: { on(topic: string, listener: (packet: unknown, done: () => void) => void): void };
  persistence: { addSubscriptions(client: { id: string }, subs: Array<{ topic: string; qos: number }>): Promise<void> };
  clients: Record<string, Client>;
}

const defaultGatewayId = () => {
  const id = `gw-${os.hostname()}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64);
  return ID_PATTERN.test(id) ? id : 'gw-1';
};

/** The edge gateway: MQTT broker for CPs, per-CP auth and ACLs, and the bridge (gateway/bridge.ts) to a bus sink. */
export async function startGateway(o: GatewayOptions, log: Logger): Promise<RunningGateway> {
  const metrics = createGatewayMetrics();
  const gatewayId = o.gatewayId ?? defaultGatewayId();
  const bootId = randomUUID();
  /** In dev mode a CP is recognised by the id it published under (counted in the heartbeat). */
  const devCps = new WeakSet<Client>();
  let devCpsConnected = 0;
  const lastSeq = new Map<string, number>();
  /** CP id → clients subscribed to exactly its command topic. */
  const cmdListeners = new Map<string, Set<Client>>();
  const listensFor = new Map<Client, Set<string>>();
  let closing = false;
  const supersedeAfterMs = o.supersedeAfterMs ?? 250;
  // Identity, ACLs and limits live at the edge (gateway/edge.ts, acl.ts, limits.ts).
  const edge = createEdge({ credentials: o.credentials, log, metrics, limits: o.limits });

  const broker = await Aedes.createBroker({
    // More messages in flight inside aedes before it queues (the queue is where its chain grows).
    concurrency: 1000,
    persistence: persistenceWithRetainedIndex() as never,
    ...edge.hooks,
    // The one hook for everything clients publish: the ACL, then the bridge. Its callback is
    // what lets aedes send the PUBACK, so a critical CP message is acknowledged only once safe.
    authorizePublish: (client, packet, cb) => {
      if (!client) return cb(null);
      const cp = parseCpTopic(packet.topic);
      edge.authorizePublish(client, packet, cp, (err) => {
        if (err) return cb(err);
        const who = edge.identityOf(client);
        if (cp && cp.channel !== 'cmd') {
          if (!who && !devCps.has(client)) { devCps.add(client); devCpsConnected++; }
          return onCpPublish(packet.topic, packet.payload as Buffer, who?.id, cp, cb);
        }
        if (sink.kind === 'embedded') onEmbeddedBusPublish(packet.topic, packet.payload as Buffer);
        cb(null);
      });
    },
  });
  const internals = broker as unknown as AedesInternals;
  // Registry (registry/credentials-watch.ts): the credentials map follows the file in place; a revoked identity is disconnected now.
  const creds = o.credentials && o.credentialsFile ? followCredentials(o.credentialsFile, o.credentials, {
    clients: () => Object.values(internals.clients),
    identityOf: (c) => edge.identityOf(c)?.id,
    onKick: (id, c) => { metrics.authFailed.inc(); log.warn({ id, client: c.id }, 'credentials revoked: client disconnected'); },
    onError: (err) => log.error({ err: err.message }, 'credentials file unreadable; keeping the last good one'),
  }) : undefined;
  // Every message completes asynchronously inside aedes' emitter: its queue is then drained from
  // a fresh stack each time, never as one synchronous chain as deep as the backlog.
  internals.mq.on('#', (_packet: unknown, done: () => void) => { queueMicrotask(done); });

  // --- the bus sink: embedded or Kafka, behind one interface ------------------------------------
  const bridgedTo = childrenOf(metrics.bridged);
  const counters: SinkCounters = {
    bridged: (topic, n) => bridgedTo(topic).inc(n),
    shed: (n) => metrics.shed.inc(n),
    buffered: (n) => metrics.buffered.set(n),
    busUp: (up) => metrics.kafkaUp.set(up ? 1 : 0),
    outage: () => metrics.kafkaOutages.inc(),
  };
  const sink: BusSink = o.kafka
    ? new KafkaSink({ bus: o.kafka, group: `evcharging-gateway-${gatewayId}`, bufferMax: o.bufferMax, stallMs: o.kafkaStallMs, spoolFile: o.spoolFile, spoolMax: o.spoolMax }, counters, log)
    : new EmbeddedSink(broker, counters, o.bufferMax);

  // --- CP → bus -----------------------------------------------------------------------------------
  function rejected(cpId: string, r: Rejected) {
    metrics.rejected.inc({ reason: r.reason });
    // Rate-limited per source: a CP flooding garbage must not flood the log (it is still counted).
    edge.log.warn(`cp:${cpId}`, { cp: cpId, reason: r.reason, detail: r.detail.slice(0, 200) }, r.reason === 'spoofed' ? 'spoofed CP id rejected' : 'CP message rejected');
  }

  const receivedBy = childrenOf(metrics.received);

  /** Hands a routed CP message to the sink; `safe` once it may be acknowledged. */
  function accept(r: Routed, safe: () => void) {
    receivedBy(r.channel).inc();
    seenCps.add(r.cpId);
    if (r.msg.type === 'status') lastSeq.set(r.cpId, Math.max(lastSeq.get(r.cpId) ?? 0, r.msg.seq));
    if (r.entry.critical) sink.push(r.entry, safe);
    else { r.entry.at = Date.now(); sink.push(r.entry); safe(); }
  }

  function onCpPublish(topic: string, payload: Buffer, sender: string | undefined, cp: { cpId: string; channel: CpChannel | 'cmd' }, cb: (err: Error | null) => void) {
    const { cpId } = cp;
    const channel = cp.channel as CpChannel; // never cmd: the caller routes only the CP's own channels here
    // Telemetry is dropped at the door, before it costs a parse, when it could not be forwarded soon:
    // over the bound (shed), or while this CP's previous reading has waited in the buffer longer
    // than `supersedeAfterMs` (superseded: the gateway is behind; that one goes, and the CP's
    // cumulative meter makes the next one complete). Under overload the gateway so spends its
    // time on what it forwards and answers. Parsing everything it then dropped kept it behind for
    // good at 10,000 CPs: its sockets' backlog read in loop turns of 5-9 s, beats missed.
    if (!CP_CHANNEL_TABLE[channel].critical) {
      if (sink.queued >= o.bufferMax) {
        receivedBy(channel).inc();
        metrics.shed.inc();
        return cb(null);
      }
      // Only for a CP speaking for itself: a spoofed reading is refused below, not dropped as superseded.
      const since = sender === undefined || sender === cpId ? sink.readingWaitingSince(cpId) : undefined;
      if (since !== undefined && Date.now() - since > supersedeAfterMs) {
        receivedBy(channel).inc();
        metrics.superseded.inc();
        return cb(null);
      }
    }
    const r = routeCpPublish(topic, payload, sender, gatewayId, cp);
    if (!r.ok) {
      receivedBy(channel).inc();
      rejected(sender ?? parseCpTopic(topic)?.cpId ?? '?', r);
      return cb(null); // consumed and counted; the connection stays
    }
    accept(r, () => cb(null));
  }

  // --- bus → CP: commands ---------------------------------------------------------------------------
  const commands = new CommandRouter({
    maxAgeMs: o.commandMaxAgeMs ?? 120_000,
    listening: (cpId) => (cmdListeners.get(cpId)?.size ?? 0) > 0,
    publish: (d) => {
      broker.publish({ cmd: 'publish', topic: d.topic, payload: d.payload, qos: 1, retain: false, dup: false }, () => undefined);
      metrics.commands.inc();
    },
    dropped: (reason, cpId, cmd, detail) => {
      metrics.commandsDropped.inc({ reason });
      if (reason === 'stale' || reason === 'spoofed' || reason === 'expired') metrics.rejected.inc({ reason });
      // Every gateway reads every command on Kafka; one for a CP never seen here is not worth a line.
      if (reason !== 'undeliverable' || seenCps.has(cpId)) log.warn({ cp: cpId, command_id: cmd.command_id, command: cmd.command, reason, detail }, `${reason} command dropped`);
    },
  });
  const seenCps = new Set<string>();
  sink.onCommand((key, cmd) => { commands.route(key, cmd, Date.now()); metrics.commandsHeld.set(commands.heldCount); });

  // --- embedded bus: commands, and sessions that survive a restart ------------------------------------
  function onEmbeddedBusPublish(topic: string, payload: Buffer) {
    const t = parseEmbeddedBusTopic(topic);
    if (!t || t.topic !== BUS_TOPICS.centralCommands) return;
    const r = decode(CentralCommandMsg, payload);
    if (!r.ok) { metrics.rejected.inc({ reason: r.error }); log.warn({ cp: t.key, reason: r.error, detail: r.detail }, 'command rejected'); return; }
    (sink as EmbeddedSink).command(t.key, r.value);
    metrics.commandsHeld.set(commands.heldCount);
  }
  const sessions = sink.kind === 'embedded' && o.sessionsFile ? new DurableSessions(o.sessionsFile) : undefined;
  if (sessions) {
    for (const [id, subs] of sessions.saved()) await internals.persistence.addSubscriptions({ id }, subs);
    if (sessions.size) log.info({ sessions: sessions.size }, 'embedded bus sessions restored: messages for their consumers are queued until they reconnect');
  }

  broker.on('subscribe', (subs, client) => {
    if (!client) return;
    for (const s of subs) {
      const cp = parseCpTopic(s.topic);
      if (cp?.channel === 'cmd') {
        let set = cmdListeners.get(cp.cpId);
        if (!set) cmdListeners.set(cp.cpId, set = new Set());
        set.add(client);
        let mine = listensFor.get(client);
        if (!mine) listensFor.set(client, mine = new Set());
        mine.add(cp.cpId);
        seenCps.add(cp.cpId);
        setImmediate(() => { commands.ready(cp.cpId, Date.now()); metrics.commandsHeld.set(commands.heldCount); });
      }
    }
    if (sessions && !client.clean) sessions.subscribed(client.id, subs.map((s) => ({ topic: s.topic, qos: s.qos as 0 | 1 | 2 })));
  });
  // Only the CPs this client listened for (a scan of every CP's listeners per disconnect was O(CPs)).
  const forgetListener = (client: Client, filters?: string[]) => {
    const mine = listensFor.get(client);
    if (!mine) return;
    for (const cpId of [...mine]) {
      if (filters && !filters.includes(mqttTopics.command(cpId))) continue;
      mine.delete(cpId);
      const set = cmdListeners.get(cpId);
      if (set?.delete(client) && !set.size) cmdListeners.delete(cpId);
    }
    if (!mine.size) listensFor.delete(client);
  };
  broker.on('unsubscribe', (filters, client) => {
    if (!client) return;
    forgetListener(client, filters);
    if (sessions && !client.clean) sessions.unsubscribed(client.id, filters);
  });

  let cpsConnected = 0;
  broker.on('client', (client) => {
    metrics.clients.inc();
    if (client.clean) sessions?.cleared(client.id);
    if (edge.identityOf(client)?.role === 'cp') cpsConnected++;
  });
  broker.on('clientDisconnect', (client) => {
    metrics.clients.dec();
    forgetListener(client);
    if (edge.identityOf(client)?.role === 'cp') cpsConnected--;
    if (devCps.has(client)) devCpsConnected--;
  });
  // A CP whose authoritative connection goes away (crash, network, clean disconnect) yields DISCONNECTED on cp.status;
  // a replaced or stray connection closing does not (edge.ts).
  edge.onCpGone((cpId) => {
    if (closing) return;
    const seq = (lastSeq.get(cpId) ?? 0) + 1;
    lastSeq.set(cpId, seq);
    edge.log.info(`cp:${cpId}`, { cp: cpId }, 'CP disconnected');
    sink.push(connectionLost(cpId, seq, Date.now(), gatewayId), () => undefined);
  });

  // --- heartbeat and housekeeping ---------------------------------------------------------------------
  const beatMs = o.beatMs ?? 1_000;
  let beatSeq = 0;
  let beatWaitingSince: number | undefined;
  const beat = () => {
    // Dev mode has no roles: count the clients that published as a CP.
    const now = Date.now();
    const cps = o.credentials ? cpsConnected : devCpsConnected;
    // Only while the bus takes messages: a beat queued behind an outage would arrive late and claim a liveness central could not see.
    // One beat waiting at most: behind a backlog the next would say nothing the waiting one does not
    // (after ten periods another goes anyway, should a sink never report the first on the bus).
    if (sink.up() && (beatWaitingSince === undefined || now - beatWaitingSince > 10 * beatMs)) {
      beatWaitingSince = now;
      sink.push(gatewayBeat({ gatewayId, bootId, intervalMs: beatMs, cps, seq: ++beatSeq, now }), () => { beatWaitingSince = undefined; });
      metrics.beats.inc();
    }
    commands.sweep(now);
    metrics.commandsHeld.set(commands.heldCount);
    if (sink instanceof KafkaSink) metrics.spooled.set(sink.spool?.size ?? 0);
  };
  const beatTimer = setInterval(beat, beatMs);
  beatTimer.unref();

  await sink.start();
  beat();

  // --- the seam for other CP front-ends (OCPP): a CP message from its authenticated id, and its commands -----
  const ingestCpMessage = (cpId: string, msg: unknown, channel?: CpChannel) => new Promise<{ ok: true } | Rejected>((resolve) => {
    const r = routeCpMessage(cpId, msg, gatewayId, channel);
    if (!r.ok) { rejected(cpId, r); return resolve(r); }
    accept(r, () => resolve({ ok: true }));
  });
  const attachCommands = (cpId: string, deliver: (cmd: CentralCommandMsg) => void) => {
    seenCps.add(cpId);
    const detach = commands.attach(cpId, deliver);
    setImmediate(() => { commands.ready(cpId, Date.now()); metrics.commandsHeld.set(commands.heldCount); });
    return detach;
  };
  const cpPort: CpPort = {
    fromCp: async (cpId, channel, msg) => (await ingestCpMessage(cpId, msg, channel)).ok,
    commandsFor: attachCommands,
  };

  // --- listeners -----------------------------------------------------------------------------------
  const mqttServer = net.createServer((s) => edge.handle(broker, s));
  await new Promise<void>((res, rej) => { mqttServer.once('error', rej); mqttServer.listen(o.mqttPort, o.host, () => res()); });
  let tlsServer: tls.Server | undefined;
  if (o.tls) {
    tlsServer = tls.createServer({ cert: fs.readFileSync(o.tls.cert), key: fs.readFileSync(o.tls.key), handshakeTimeout: edge.limits.connectTimeoutMs }, (s) => edge.handle(broker, s));
    tlsServer.maxConnections = edge.limits.maxConnections;
    await new Promise<void>((res, rej) => { tlsServer!.once('error', rej); tlsServer!.listen(o.tls!.port, o.host, () => res()); });
  }
  const httpLimits = o.httpLimits ?? DEFAULT_HTTP_LIMITS;
  const http = Fastify({ logger: false, ...fastifyLimitOptions(httpLimits) });
  applyHttpLimits(http.server, httpLimits);
  // 503 while Kafka is down or unreachable as advertised (same body): a compose healthcheck then means "forwarding".
  http.get('/health', async (_req, reply) => {
    const health = sink.health();
    if (health.kafka_up === false) void reply.code(503);
    return {
      status: 'ok', gateway_id: gatewayId, boot_id: bootId, ...health, clients: broker.connectedClients, edge: edge.stats(),
      commands_held: commands.heldCount, ...(ocpp ? { ocpp_clients: ocpp.clients() } : {}),
    };
  });
  http.get('/metrics', async (_req, reply) => {
    if (sink instanceof KafkaSink) { metrics.kafkaInvalid.set(sink.invalid()); metrics.spooled.set(sink.spool?.size ?? 0); }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  await http.listen({ port: o.httpPort, host: o.host });
  const ocpp = o.ocpp ? await attachOcpp(cpPort, { ...o.ocpp, host: o.host, credentials: o.credentials, registry: metrics.registry }, log.child({ part: 'ocpp' })) : undefined;

  const ports = {
    mqttPort: (mqttServer.address() as net.AddressInfo).port,
    httpPort: (http.server.address() as net.AddressInfo).port,
    tlsPort: tlsServer ? (tlsServer.address() as net.AddressInfo).port : undefined,
    ocppPort: ocpp?.port, ocppTlsPort: ocpp?.tlsPort,
  };
  log.info({
    ...ports, gateway_id: gatewayId, mode: o.credentials ? 'auth' : 'dev', bus: sink.kind, spool: o.kafka ? o.spoolFile ?? null : undefined,
    mqtt: reachableUrls('mqtt', o.host, ports.mqttPort), health: reachableUrls('http', o.host, ports.httpPort, '/health'),
  }, 'gateway listening');
  if (!o.credentials) log.warn('DEV MODE: every client is admitted without credentials and ACLs are off; never use this in production');

  return {
    ...ports,
    gatewayId,
    ingestCpMessage: (cpId, msg) => ingestCpMessage(cpId, msg),
    attachCommands,
    async close() {
      closing = true;
      creds?.close();
      clearInterval(beatTimer);
      edge.close();
      await http.close();
      await ocpp?.close();
      await new Promise<void>((r) => broker.close(() => r()));
      mqttServer.close(); tlsServer?.close();
      // Nothing new comes in now: give the bus a moment to take what is held, and say what could not be delivered.
      const held = sink.queued;
      const left = await sink.close(o.drainMs ?? 2_000);
      if (left) log.warn({ undelivered: left, spooled: sink instanceof KafkaSink ? sink.spool?.size ?? 0 : 0 }, `stopping with messages not delivered to ${sink.kind === 'kafka' ? 'Kafka' : 'the bus'}`);
      else if (sink.kind === 'kafka' && held) log.info({ delivered: held }, 'buffer flushed to Kafka'); // only when there was something to flush
    },
  };
}
