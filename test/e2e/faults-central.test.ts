import { afterAll, beforeAll, describe, it } from 'vitest';
import type { TestNetwork } from '../helpers/network.js';
import { runCentralCrash, startCentralCrashNetwork } from './faults-central-scenario.js';

/** Central SIGKILL and restart on the same data dir, embedded bus: no session lost, none billed twice. */
let net: TestNetwork | undefined;
beforeAll(async () => { net = await startCentralCrashNetwork(); }, 120_000);
afterAll(async () => { await net?.stop(); }, 60_000);

describe('central SIGKILL and restart (embedded bus)', () => {
  it('keeps every session and bills each exactly once', async () => {
    await runCentralCrash(net!);
  }, 180_000);
});
