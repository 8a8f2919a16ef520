import { afterAll, beforeAll, describe, it } from 'vitest';
import { startKafkaMock, type KafkaMock } from '../helpers/kafka-mock.js';
import type { TestNetwork } from '../helpers/network.js';
import { runCentralCrash, startCentralCrashNetwork } from './faults-central-scenario.js';

/** Central SIGKILL and restart on the same data dir, over Kafka (the kcat mock cluster): no session lost, none billed twice. */
let kafka: KafkaMock | undefined;
let net: TestNetwork | undefined;
beforeAll(async () => {
  kafka = await startKafkaMock();
  net = await startCentralCrashNetwork(kafka.bootstrap);
}, 120_000);
afterAll(async () => {
  await net?.stop();
  await kafka?.stop();
}, 60_000);

describe('central SIGKILL and restart (Kafka)', () => {
  it('keeps every session and bills each exactly once', async () => {
    await runCentralCrash(net!, 2);
  }, 240_000);
});
