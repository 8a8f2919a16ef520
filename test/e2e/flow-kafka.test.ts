import { afterAll, beforeAll, describe, it } from 'vitest';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import type { TestNetwork } from '../helpers/network.js';
import { runFlow, startFlowNetwork } from './flow-scenario.js';

/**
 * End to end on Kafka: a real Kafka-protocol cluster (librdkafka's mock through kcat), the
 * gateway bridging CPs to it, central and drivers on kafkajs; all real processes.
 */
let kafka: KafkaMock | undefined;
let net: TestNetwork | undefined;
beforeAll(async () => {
  kafka = await startKafkaMock();
  net = await startFlowNetwork(kafka.bootstrap);
}, 120_000);
afterAll(async () => {
  await net?.stop();
  await kafka?.stop();
}, 60_000);

describe('charging flow over Kafka', () => {
  it('two drivers complete sessions at three CPs, each ticket billing what the CP metered at its profile price', async () => {
    await runFlow(net!, 2);
  }, 120_000);
});
