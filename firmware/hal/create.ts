import type { HwProfile } from '../../hw-profiles/profile.js';
import type { Logger } from '../../lib/log.js';
import type { Hal } from './types.js';
import { createSimHal } from './sim.js';
import { HalUnavailableError } from '../../lib/errors.js';


/**
 * Picks the HAL driver named by the profile. The serial driver lives in ./serial.ts and is
 * loaded only when a profile asks for it; it must export
 * `createSerialHal(settings, { profile, log }): Hal`.
 */
export async function createHal(profile: HwProfile, o: { speed?: number; log: Logger }): Promise<Hal> {
  const hal = profile.hal;
  if (hal.driver === 'sim') return createSimHal({ maxKw: profile.max_kw, battery: hal, speed: o.speed });
  const specifier = './serial.js'; // not a literal: the module is optional at type-check time
  let mod: { createSerialHal?: (settings: typeof hal, ctx: { profile: HwProfile; log: Logger }) => Hal };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch (err) {
    throw new HalUnavailableError(`profile ${profile.name}: serial HAL driver cannot be loaded (${(err as Error).message.split('\n')[0]})`);
  }
  if (typeof mod.createSerialHal !== 'function') throw new HalUnavailableError(`profile ${profile.name}: serial HAL driver has no createSerialHal()`);
  return mod.createSerialHal(hal, { profile, log: o.log });
}
export { HalUnavailableError };
