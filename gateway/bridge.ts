import { isUtf8 } from 'node:buffer';
import {
  CP_CHANNEL_TABLE, CentralCommandMsg, PROTOCOL_VERSION, channelOf, cpStatus, decode, encode, firstIssue, mqttTopics, parseCpTopic,
  parseEmbeddedBusTopic, BUS_TOPICS, MAX_PAYLOAD_BYTES,
  type BusTopic, type CpChannel, type CpOutMsg, type CpStatusMsg, type GatewayBeatMsg,
} from '../protocol/index.js';

/**
 * The gateway's bridge as pure functions: no sockets, no clock of its own, no state beyond
 * what is passed in. The server feeds it what aedes receives and carries out what it returns.
 *
 *   CP → bus:  MQTT publish (topic, payload, who sent it) → a validated bus entry, stamped `gw`
 *   bus → CP:  a central command → the MQTT publish to the CP, or a drop with a reason
 */

/** What goes to the bus for one CP message. `critical` = acknowledged to the CP only once the bus (or the spool) has it. */
export interface BusEntry {
  topic: BusTopic;
  key: string;
  value: Buffer;
  critical: boolean;
  /** Telemetry: may be shed under pressure. */
  droppable: boolean;
  /** Ahead of anything queued (the gateway's beat). */
  urgent?: boolean;
  /** When the gateway took it (ms): how long a reading has waited decides whether the CP's next one is superseded. */
  at?: number;
}

export type RejectReason = 'oversize' | 'not_json' | 'schema' | 'spoofed' | 'unknown_topic';
export type Rejected = { ok: false; reason: RejectReason; detail: string };
export type Routed = { ok: true; channel: CpChannel; cpId: string; msg: CpOutMsg; entry: BusEntry };

/**
 * A CP message as an object, from a CP whose id the caller authenticated (MQTT: the topic's id
 * checked against the login; an OCPP adapter: its own session). Validates it against its
 * channel's schema, checks that it speaks for that CP, and stamps the gateway id.
 */
export function routeCpMessage(cpId: string, raw: unknown, gatewayId: string, expectChannel?: CpChannel,
  /** The bytes `raw` was parsed from: forwarded as they are (stamped) when validation changed nothing. */
  bytes?: Buffer): Routed | Rejected {
  const type = raw && typeof raw === 'object' ? (raw as { type?: unknown }).type : undefined;
  let channel: CpChannel;
  try { channel = channelOf({ type: String(type) }); } catch { return { ok: false, reason: 'schema', detail: `no CP channel for type ${String(type).slice(0, 40)}` }; }
  if (expectChannel && channel !== expectChannel) return { ok: false, reason: 'schema', detail: `a ${String(type)} message on the ${expectChannel} channel` };
  const spec = CP_CHANNEL_TABLE[channel];
  const parsed = spec.schema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: 'schema', detail: firstIssue(parsed.error) };
  // zod's output is a fresh object: stamped in place rather than copied (one allocation less per message).
  const msg = parsed.data as CpOutMsg;
  if (msg.cp_id !== cpId) return { ok: false, reason: 'spoofed', detail: `payload cp_id ${msg.cp_id} from CP ${cpId}` };
  // Not bytes that were not UTF-8: parsing replaced them, and the replacement is what was validated.
  const value = bytes && unchangedBy(raw as Record<string, unknown>, msg) && isUtf8(bytes) ? stamped(bytes, gatewayId) : undefined;
  msg.gw = gatewayId;
  return {
    ok: true, channel, cpId, msg,
    entry: { topic: spec.busTopic, key: cpId, value: value ?? encode(msg), critical: spec.critical, droppable: !spec.critical },
  };
}

/**
 * True when the schema's output is the input: the same keys, each the same primitive (a nested
 * object is rebuilt by zod, so it never counts as unchanged), no `gw` of the sender's own. The
 * input's bytes then encode exactly the validated message, and re-encoding it (the largest cost
 * of a reading on the gateway after the parse) can be skipped. Any stripped, defaulted or
 * transformed field sends it through `encode` instead.
 */
function unchangedBy(raw: Record<string, unknown>, out: object): boolean {
  if ('gw' in raw) return false;
  let n = 0;
  for (const k in out) {
    const v = (out as Record<string, unknown>)[k];
    if (v !== raw[k] || (typeof v === 'object' && v !== null)) return false;
    n++;
  }
  for (const _ in raw) n--;
  return n === 0;
}

let stampOf: { gatewayId: string; tail: Buffer } | undefined;
/** The CP's JSON object with the gateway's `gw` added before its closing brace. */
function stamped(bytes: Buffer, gatewayId: string): Buffer {
  if (stampOf?.gatewayId !== gatewayId) stampOf = { gatewayId, tail: Buffer.from(`,"gw":${JSON.stringify(gatewayId)}}`) };
  let end = bytes.length - 1;
  while (end > 0 && bytes[end] !== 0x7d) end--; // a parsed object: the last non-blank byte is its '}'
  return Buffer.concat([bytes.subarray(0, end), stampOf.tail]);
}

/**
 * An MQTT publish from a CP: `cp/<id>/<channel>`. `sender` is the authenticated CP id (undefined
 * in dev mode, where the topic's id is taken at its word): a CP speaks only for itself.
 */
export function routeCpPublish(topic: string, payload: Buffer, sender: string | undefined, gatewayId: string,
  /** The topic parsed, when the caller already did. */
  t: ReturnType<typeof parseCpTopic> = parseCpTopic(topic)): Routed | Rejected {
  if (!t || t.channel === 'cmd') return { ok: false, reason: 'unknown_topic', detail: topic.slice(0, 80) };
  if (sender !== undefined && sender !== t.cpId) return { ok: false, reason: 'spoofed', detail: `${sender} published under ${t.cpId}` };
  if (payload.length > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'oversize', detail: `${payload.length} bytes > ${MAX_PAYLOAD_BYTES}` };
  let raw: unknown;
  try { raw = JSON.parse(payload.toString('utf8')); } catch { return { ok: false, reason: 'not_json', detail: 'payload is not valid JSON' }; }
  return routeCpMessage(t.cpId, raw, gatewayId, t.channel, payload);
}

/** The MQTT publish that carries a command to its CP. */
export interface CpDelivery { cpId: string; topic: string; payload: Buffer; qos: 1; expiresAt?: number }
export type CommandDrop = { ok: false; reason: 'expired' | 'stale' | 'spoofed' | 'oversize' | 'not_json' | 'schema'; detail: string };

/**
 * A command from the bus (already validated by the bus adapter on Kafka) to the CP it names.
 * Dropped, with a reason, when its deadline (`expires_at`) passed or, without one, when it is
 * older than `maxAgeMs` (a long-stopped gateway must not replay old commands).
 */
export function routeCommand(key: string, cmd: CentralCommandMsg, now: number, maxAgeMs: number): ({ ok: true } & CpDelivery) | CommandDrop {
  if (cmd.cp_id !== key) return { ok: false, reason: 'spoofed', detail: `command for ${cmd.cp_id} keyed ${key}` };
  if (cmd.expires_at !== undefined && now > cmd.expires_at) return { ok: false, reason: 'expired', detail: `expired ${now - cmd.expires_at} ms ago` };
  if (cmd.expires_at === undefined && now - cmd.ts > maxAgeMs) return { ok: false, reason: 'stale', detail: `${now - cmd.ts} ms old > ${maxAgeMs}` };
  return { ok: true, cpId: cmd.cp_id, topic: mqttTopics.command(cmd.cp_id), payload: encode(cmd), qos: 1, ...(cmd.expires_at !== undefined ? { expiresAt: cmd.expires_at } : {}) };
}

/** A command published on the embedded bus (`bus/central.commands/<cp>`): decoded once, then routed. */
export function routeEmbeddedCommand(topic: string, payload: Buffer, now: number, maxAgeMs: number): ({ ok: true } & CpDelivery) | CommandDrop | null {
  const t = parseEmbeddedBusTopic(topic);
  if (!t || t.topic !== BUS_TOPICS.centralCommands) return null;
  const r = decode(CentralCommandMsg, payload);
  if (!r.ok) return { ok: false, reason: r.error, detail: r.detail };
  return routeCommand(t.key, r.value, now, maxAgeMs);
}

/** The status the gateway publishes for a CP whose connection went away (crash, network, clean disconnect). */
export function connectionLost(cpId: string, seq: number, now: number, gatewayId: string): BusEntry {
  const msg: CpStatusMsg = { ...cpStatus({ cpId, state: 'DISCONNECTED', source: 'gateway', reason: 'connection lost', seq, ts: now }), gw: gatewayId };
  return { topic: BUS_TOPICS.cpStatus, key: cpId, value: encode(msg), critical: true, droppable: false };
}

/**
 * The gateway's heartbeat on cp.status, keyed by its id. Never shed: central takes a missing
 * beat for a dead gateway and holds every session behind it, so under pressure (telemetry
 * shed) the beat must still get through, ahead of the backlog (urgent). The server keeps at
 * most one waiting (server.ts).
 */
export function gatewayBeat(f: { gatewayId: string; bootId: string; intervalMs: number; cps: number; seq: number; now: number }): BusEntry {
  const msg: GatewayBeatMsg = { v: PROTOCOL_VERSION, type: 'gateway', gateway_id: f.gatewayId, boot_id: f.bootId, interval_ms: f.intervalMs, cps: f.cps, seq: f.seq, ts: f.now };
  return { topic: BUS_TOPICS.cpStatus, key: f.gatewayId, value: encode(msg), critical: false, droppable: false, urgent: true };
}
