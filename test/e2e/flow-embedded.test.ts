import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestNetwork } from '../helpers/network.js';
import { runFlow, startFlowNetwork } from './flow-scenario.js';

/**
 * End to end on the embedded bus (the gateway's own MQTT broker carries the bus topics):
 * gateway, central, three engines with monitors and two drivers, all real processes.
 */
let net: TestNetwork | undefined;
beforeAll(async () => { net = await startFlowNetwork(); }, 120_000);
afterAll(async () => { await net?.stop(); }, 60_000);

describe('charging flow over the embedded bus', () => {
  it('two drivers complete sessions at three CPs, each ticket billing what the CP metered at its profile price', async () => {
    await runFlow(net!);
  }, 120_000);
});
