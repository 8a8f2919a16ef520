/** Bus topics (Kafka's, and the embedded bus's under `bus/`), named as in the original system. Every message is keyed by CP id or driver id. */
export const BUS_TOPICS = {
  cpStatus: 'cp.status',
  cpTelemetry: 'cp.telemetry',
  centralCommands: 'central.commands',
  driverRequests: 'driver.requests',
  driverUpdates: 'driver.updates',
} as const;
export type BusTopic = (typeof BUS_TOPICS)[keyof typeof BUS_TOPICS];
export const ALL_BUS_TOPICS: readonly BusTopic[] = Object.values(BUS_TOPICS);

/**
 * MQTT topics between a CP and the gateway. A CP authenticated as `id` may publish only
 * under `cp/<id>/` (never `cmd`) and subscribe only to `cp/<id>/cmd`.
 */
export const CP_CHANNELS = ['status', 'telemetry', 'announce', 'ack', 'session'] as const;
export type CpChannel = (typeof CP_CHANNELS)[number];

export const mqttTopics = {
  status: (cpId: string) => `cp/${cpId}/status`,
  telemetry: (cpId: string) => `cp/${cpId}/telemetry`,
  announce: (cpId: string) => `cp/${cpId}/announce`,
  ack: (cpId: string) => `cp/${cpId}/ack`,
  session: (cpId: string) => `cp/${cpId}/session`,
  command: (cpId: string) => `cp/${cpId}/cmd`,
};

/** Parses `cp/<id>/<channel>`; null for anything else. */
export function parseCpTopic(topic: string): { cpId: string; channel: CpChannel | 'cmd' } | null {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== 'cp' || !parts[1]) return null;
  const channel = parts[2] as CpChannel | 'cmd';
  if (channel !== 'cmd' && !(CP_CHANNELS as readonly string[]).includes(channel)) return null;
  return { cpId: parts[1], channel };
}

/** On the embedded bus the Kafka topics ride on the gateway's MQTT broker under this prefix: `bus/<topic>/<key>`. */
export const EMBEDDED_BUS_PREFIX = 'bus';
export const embeddedBusTopic = (topic: BusTopic, key: string) => `${EMBEDDED_BUS_PREFIX}/${topic}/${key}`;

/** Parses `bus/<topic>/<key>` (the embedded bus on MQTT); null for anything else. The one parser of these topics. */
export function parseEmbeddedBusTopic(topic: string): { topic: BusTopic; key: string } | null {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== EMBEDDED_BUS_PREFIX || !parts[2]) return null;
  if (!(ALL_BUS_TOPICS as readonly string[]).includes(parts[1]!)) return null;
  return { topic: parts[1] as BusTopic, key: parts[2] };
}
