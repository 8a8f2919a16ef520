import type { Logger } from '../lib/log.js';
import type { Bus, BusConfig } from './types.js';
import { EmbeddedBus } from './embedded.js';
import { KafkaBus } from './kafka.js';

/** Kafka when a bootstrap list is configured, else the gateway's embedded MQTT bus. */
export function createBus(config: BusConfig, log: Logger): Bus {
  return config.kafkaBootstrap?.length ? new KafkaBus(config, log) : new EmbeddedBus(config, log);
}
