import { Counter, Gauge, Registry } from 'prom-client';

/** The gateway's Prometheus counters, on their own registry so tests can run several gateways. */
export function createGatewayMetrics() {
  const registry = new Registry();
  const m = {
    registry,
    received: new Counter({ name: 'gateway_mqtt_received_total', help: 'CP messages received, by channel', labelNames: ['channel'], registers: [registry] }),
    rejected: new Counter({ name: 'gateway_rejected_total', help: 'messages refused, by reason (oversize, not_json, schema, spoofed, unknown_topic)', labelNames: ['reason'], registers: [registry] }),
    aclDenied: new Counter({ name: 'gateway_acl_denied_total', help: 'publish/subscribe refused by ACL', labelNames: ['action'], registers: [registry] }),
    authFailed: new Counter({ name: 'gateway_auth_failed_total', help: 'connections refused for bad credentials', registers: [registry] }),
    bridged: new Counter({ name: 'gateway_bridged_total', help: 'messages delivered to the bus, by topic', labelNames: ['topic'], registers: [registry] }),
    commands: new Counter({ name: 'gateway_commands_total', help: 'commands forwarded to CPs', registers: [registry] }),
    shed: new Counter({ name: 'gateway_buffer_shed_total', help: 'telemetry shed because the forward buffer was over its bound (Kafka away, or more offered than the bus takes)', registers: [registry] }),
    superseded: new Counter({ name: 'gateway_telemetry_superseded_total', help: 'telemetry dropped at the door because the same CP\'s previous reading still waited to be forwarded (the gateway is behind)', registers: [registry] }),
    buffered: new Gauge({ name: 'gateway_buffer_size', help: 'messages waiting for Kafka', registers: [registry] }),
    kafkaUp: new Gauge({ name: 'gateway_kafka_up', help: '1 while Kafka takes the bridged messages, 0 during an outage or before it was first reached', registers: [registry] }),
    kafkaOutages: new Counter({ name: 'gateway_kafka_outages_total', help: 'Kafka outages seen by the bridge (failed or unanswered sends)', registers: [registry] }),
    kafkaInvalid: new Gauge({ name: 'gateway_kafka_invalid_total', help: 'messages read from Kafka (central.commands) that failed validation and were skipped', registers: [registry] }),
    commandsDropped: new Counter({ name: 'gateway_commands_dropped_total', help: 'commands not sent to a CP, by reason (expired, stale, spoofed, undeliverable, overflow)', labelNames: ['reason'], registers: [registry] }),
    commandsHeld: new Gauge({ name: 'gateway_commands_held', help: 'commands waiting for their CP to subscribe', registers: [registry] }),
    spooled: new Gauge({ name: 'gateway_spool_size', help: 'critical messages in the spool on disk, not yet on Kafka', registers: [registry] }),
    beats: new Counter({ name: 'gateway_beats_total', help: 'gateway heartbeats published on cp.status', registers: [registry] }),
    clients: new Gauge({ name: 'gateway_clients', help: 'connected MQTT clients', registers: [registry] }),
  };
  return m;
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

/** A labelled counter's children, bound once per label value: a label lookup costs more than the increment on the hot path. */
export function childrenOf(counter: Counter<string>): (value: string) => { inc(n?: number): void } {
  const children = new Map<string, { inc(n?: number): void }>();
  return (value) => {
    let c = children.get(value);
    if (!c) children.set(value, c = counter.labels(value));
    return c;
  };
}
