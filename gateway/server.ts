import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import Fastify from 'fastify';
import { Aedes } from 'aedes';
import type { Logger } from '../lib/log.js';
import { errText } from '../lib/log.js';
import {
  BUS_SCHEMAS, CP_CHANNEL_TABLE, CpStatusTopicMsg, CpTelemetryMsg, CentralCommandMsg, EMBEDDED_BUS_PREFIX, BUS_TOPICS,
  decode, embeddedBusTopic, encode, mqttTopics, parseCpTopic, type CpChannel, type BusTopic,
} from '../protocol/index.js';
import type { CredentialEntry } from '../registry/credentials.js';
import { createEdge } from './edge.js';
import type { EdgeLimits } from './limits.js';
import { ForwardBuffer } from './forward-buffer.js';
import { startForwarder } from './kafka-forwarder.js';
import { createGatewayMetrics } from './metrics.js';
import { KafkaBus } from '../bus/kafka.js';
import { busUp, type BusConfig } from '../bus/types.js';
import { reachableUrls } from '../lib/addresses.js';
import type { CpPort } from './ocpp/port.js';
import { attachOcpp, type OcppGatewayOptions } from './ocpp/server.js';

export interface GatewayOptions {
  host: string;
  mqttPort: number;
  httpPort: number;
  tls?: { port: number; cert: string; key: string };
  /** null = dev mode: anyone is admitted, ACLs are off, payloads are still validated. */
  credentials: Map<string, CredentialEntry> | null;
  bufferMax: number;
  /** Set: bridge to Kafka. Unset: the embedded bus on this broker. */
  kafka?: BusConfig;
  /** A Kafka send unanswered this long counts as an outage (default 3000 ms). */
  kafkaStallMs?: number;
  /** On close, how long to wait for Kafka to take what is buffered (default 2000 ms; the shutdown deadline is 5 s). */
  drainMs?: number;
  /** Commands older than this (by their ts) are dropped, not sent to a CP (default 120000 ms). */
  commandMaxAgeMs?: number;
  /** Edge limits (packet size, connections, rates, CONNECT timeout); defaults in gateway/limits.ts. */
  limits?: Partial<EdgeLimits>;
  /** Set: also accept OCPP-J charge points (gateway/ocpp/), bridged through the same CP port. */
  ocpp?: OcppGatewayOptions;
}

export interface RunningGateway {
  mqttPort: number; httpPort: number; tlsPort?: number; ocppPort?: number; ocppTlsPort?: number;
  close(): Promise<void>;
}

const CHANNEL_SCHEMA: Record<CpChannel, typeof CpStatusTopicMsg | typeof CpTelemetryMsg> = {
  status: CpStatusTopicMsg, announce: CpStatusTopicMsg, ack: CpStatusTopicMsg, session: CpStatusTopicMsg, telemetry: CpTelemetryMsg,
};
const CHANNEL_TYPE: Record<CpChannel, string> = { status: 'status', announce: 'announce', ack: 'ack', session: 'session_end', telemetry: 'telemetry' };

/** The edge gateway: MQTT broker for CPs, per-CP auth and ACLs, validation, and the MQTT↔bus bridge. */
export async function startGateway(o: GatewayOptions, log: Logger): Promise<RunningGateway> {
  const metrics = createGatewayMetrics();
  const lastSeq = new Map<string, number>();
  const commandMaxAgeMs = o.commandMaxAgeMs ?? 120_000;
  // Identity, ACLs and limits live at the edge (gateway/edge.ts, acl.ts, limits.ts).
  const edge = createEdge({ credentials: o.credentials, log, metrics, limits: o.limits });
  const broker = await Aedes.createBroker({ ...edge.hooks });

  // --- bridge: CP → bus --------------------------------------------------------------------
  const buffer = new ForwardBuffer(o.bufferMax);
  const kafkaBus = o.kafka ? new KafkaBus(o.kafka, log.child({ part: 'kafka' })) : undefined;
  let closing = false;
  const forwarder = kafkaBus && startForwarder({
    buffer, ready: kafkaBus.ready, log,
    send: (batch) => kafkaBus.publishBatch(batch),
    onDelivered: (batch) => {
      for (const p of batch) { metrics.bridged.inc({ topic: p.topic }); p.done?.(); }
      metrics.buffered.set(buffer.size);
    },
    onOutage: (down) => { metrics.kafkaUp.set(down ? 0 : 1); if (down) metrics.kafkaOutages.inc(); },
    stallMs: o.kafkaStallMs,
    where: () => ({ kafka: o.kafka!.kafkaBootstrap, ...(kafkaBus.health().problem ? { problem: kafkaBus.health().problem } : {}) }),
  });

  const toBus = (topic: BusTopic, key: string, value: Buffer, done?: () => void) => {
    if (!forwarder) {
      broker.publish({ cmd: 'publish', topic: embeddedBusTopic(topic, key), payload: value, qos: 1, retain: false, dup: false }, () => done?.());
      metrics.bridged.inc({ topic });
      return;
    }
    const before = buffer.shed;
    buffer.push({ topic, key, value, droppable: topic === BUS_TOPICS.cpTelemetry, ...(done ? { done } : {}) });
    if (buffer.shed > before) metrics.shed.inc(buffer.shed - before);
    metrics.buffered.set(buffer.size);
    forwarder.notify();
  };

  broker.on('publish', (packet, client) => {
    if (!client) {
      // Broker-side publish: only the embedded command topic matters here (services publish through a client).
      return;
    }
    const cp = parseCpTopic(packet.topic);
    if (cp && cp.channel !== 'cmd') return void onCpMessage(cp.cpId, cp.channel, packet.payload as Buffer);
    const parts = packet.topic.split('/');
    if (!kafkaBus && parts[0] === EMBEDDED_BUS_PREFIX && parts[1] === BUS_TOPICS.centralCommands && parts[2]) {
      onCommand(parts[2], packet.payload as Buffer);
    }
  });

  /** Validates and bridges one CP message; `done` hears when the bus has it (never, for a refused one: it returns false). */
  function onCpMessage(cpId: string, channel: CpChannel, payload: Buffer, done?: () => void): boolean {
    metrics.received.inc({ channel });
    const r = decode(CHANNEL_SCHEMA[channel], payload);
    if (!r.ok) {
      metrics.rejected.inc({ reason: r.error });
      edge.log.warn(`cp:${cpId}`, { cp: cpId, channel, error: r.error, detail: r.detail.slice(0, 200) }, 'CP message rejected');
      return false;
    }
    const msg = r.value as { cp_id: string; type: string; seq?: number };
    if (msg.cp_id !== cpId || msg.type !== CHANNEL_TYPE[channel]) {
      metrics.rejected.inc({ reason: msg.cp_id !== cpId ? 'spoofed' : 'schema' });
      edge.log.warn(`cp:${cpId}`, { cp: cpId, payload_cp: msg.cp_id, channel }, msg.cp_id !== cpId ? 'spoofed CP id rejected' : 'message type does not match topic');
      return false;
    }
    if (typeof msg.seq === 'number' && msg.type === 'status') lastSeq.set(cpId, Math.max(lastSeq.get(cpId) ?? 0, msg.seq));
    toBus(CP_CHANNEL_TABLE[channel].busTopic, cpId, encode(r.value), done);
    return true;
  }

  // --- the seam for other CP front-ends (OCPP): a CP message as if it came over MQTT from its authenticated id, and its commands.
  const commandSinks = new Map<string, (cmd: CentralCommandMsg) => void>();
  const cpPort: CpPort = {
    fromCp: (cpId, channel, msg) => new Promise<boolean>((resolve) => { if (!onCpMessage(cpId, channel, encode(msg), () => resolve(true))) resolve(false); }),
    commandsFor(cpId, sink) {
      commandSinks.set(cpId, sink);
      return () => { if (commandSinks.get(cpId) === sink) commandSinks.delete(cpId); };
    },
  };

  function onCommand(cpId: string, payload: Buffer) {
    const r = decode(CentralCommandMsg, payload);
    if (!r.ok || r.value.cp_id !== cpId) {
      metrics.rejected.inc({ reason: r.ok ? 'spoofed' : r.error });
      log.warn({ cp: cpId }, 'command rejected');
      return;
    }
    const sink = commandSinks.get(cpId);
    if (sink) { metrics.commands.inc(); return sink(r.value); }
    broker.publish({ cmd: 'publish', topic: mqttTopics.command(cpId), payload: encode(r.value), qos: 1, retain: false, dup: false }, () => undefined);
    metrics.commands.inc();
  }

  // A CP whose authoritative connection goes away (crash, network, clean disconnect) yields DISCONNECTED on cp.status;
  // a replaced or stray connection closing does not (edge.ts).
  broker.on('clientDisconnect', () => metrics.clients.dec());
  edge.onCpGone((cpId) => {
    if (closing) return;
    const seq = (lastSeq.get(cpId) ?? 0) + 1;
    lastSeq.set(cpId, seq);
    const status = BUS_SCHEMAS['cp.status'].parse({ v: 1, type: 'status', cp_id: cpId, state: 'DISCONNECTED', source: 'gateway', reason: 'connection lost', seq, ts: Date.now() });
    edge.log.info(`cp:${cpId}`, { cp: cpId }, 'CP disconnected');
    toBus(BUS_TOPICS.cpStatus, cpId, encode(status));
  });
  broker.on('client', () => metrics.clients.inc());

  if (kafkaBus) {
    // From the beginning on the group's first start, so a command central sends before the group has joined is not lost;
    // the age limit keeps that first read (and a long-stopped gateway) from replaying old commands to CPs.
    let staleLogged = false;
    kafkaBus.subscribe(BUS_TOPICS.centralCommands, (cmd, meta) => {
      const age = Date.now() - cmd.ts;
      if (age > commandMaxAgeMs) {
        metrics.rejected.inc({ reason: 'stale' });
        if (!staleLogged) log.warn({ cp: meta.key, command_id: cmd.command_id, age_ms: age, max_age_ms: commandMaxAgeMs }, 'stale command dropped (further ones are only counted)');
        staleLogged = true;
        return;
      }
      onCommand(meta.key, encode(cmd));
    }, { group: 'evcharging-gateway', fromBeginning: true });
    void kafkaBus.start().then(() => metrics.kafkaUp.set(forwarder?.down ? 0 : 1))
      .catch((err) => { if (!closing) log.error({ err: errText(err) }, 'kafka bus failed to start'); });
  }

  // --- listeners -----------------------------------------------------------------------------
  const mqttServer = net.createServer((s) => edge.handle(broker, s));
  await new Promise<void>((res, rej) => { mqttServer.once('error', rej); mqttServer.listen(o.mqttPort, o.host, () => res()); });
  let tlsServer: tls.Server | undefined;
  if (o.tls) {
    tlsServer = tls.createServer({ cert: fs.readFileSync(o.tls.cert), key: fs.readFileSync(o.tls.key), handshakeTimeout: edge.limits.connectTimeoutMs }, (s) => edge.handle(broker, s));
    tlsServer.maxConnections = edge.limits.maxConnections;
    await new Promise<void>((res, rej) => { tlsServer!.once('error', rej); tlsServer!.listen(o.tls!.port, o.host, () => res()); });
  }
  const http = Fastify({ logger: false });
  // 503 while Kafka is down or unreachable as advertised (same body): a compose healthcheck then means "forwarding".
  http.get('/health', async (_req, reply) => {
    const kafkaUp = forwarder ? !forwarder.down && busUp(kafkaBus!.health()) : undefined;
    if (kafkaUp === false) void reply.code(503);
    return {
      status: 'ok', bus: kafkaBus ? 'kafka' : 'embedded', kafka: kafkaBus?.health(), kafka_up: kafkaUp,
      buffered: buffer.size, shed: buffer.shed, clients: broker.connectedClients, edge: edge.stats(), ...(ocpp ? { ocpp_clients: ocpp.clients() } : {}),
    };
  });
  http.get('/metrics', async (_req, reply) => {
    metrics.kafkaInvalid.set(kafkaBus?.stats().invalid ?? 0);
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  const ocpp = o.ocpp ? await attachOcpp(cpPort, { ...o.ocpp, host: o.host, credentials: o.credentials, registry: metrics.registry }, log.child({ part: 'ocpp' })) : undefined;
  await http.listen({ port: o.httpPort, host: o.host });

  const ports = {
    mqttPort: (mqttServer.address() as net.AddressInfo).port,
    httpPort: (http.server.address() as net.AddressInfo).port,
    tlsPort: tlsServer ? (tlsServer.address() as net.AddressInfo).port : undefined,
    ocppPort: ocpp?.port, ocppTlsPort: ocpp?.tlsPort,
  };
  log.info({
    ...ports, mode: o.credentials ? 'auth' : 'dev', bus: kafkaBus ? 'kafka' : 'embedded',
    mqtt: reachableUrls('mqtt', o.host, ports.mqttPort), health: reachableUrls('http', o.host, ports.httpPort, '/health'),
  }, 'gateway listening');
  if (!o.credentials) log.warn('DEV MODE: every client is admitted without credentials and ACLs are off; never use this in production');

  return {
    ...ports,
    async close() {
      closing = true;
      edge.close();
      await ocpp?.close();
      await http.close();
      await new Promise<void>((r) => broker.close(() => r()));
      mqttServer.close(); tlsServer?.close();
      if (forwarder) {
        // Nothing new comes in now: give Kafka a moment to take what is held, and say what could not be delivered.
        const held = buffer.size;
        const left = await forwarder.drain(o.drainMs ?? 2_000);
        if (left) log.warn({ undelivered: left }, 'stopping with messages not delivered to Kafka');
        else if (held) log.info({ delivered: held }, 'buffer flushed to Kafka'); // only when there was something to flush
        forwarder.close();
      }
      await kafkaBus?.close();
    },
  };
}
