import type { CpOutMsg } from '../protocol/index.js';

/**
 * The engine's way out to the gateway: it hands over messages, not MQTT. The MQTT link
 * (firmware/mqtt-link.ts) maps each to its topic, QoS and retain flag through the channel
 * table; tests use an in-memory port.
 */
export interface LinkPort {
  send(msg: CpOutMsg): void;
}
