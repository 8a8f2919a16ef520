import type { FaultKind } from '../../protocol/index.js';
import type { SimHalSettings } from '../../hw-profiles/profile.js';
import type { Hal, HalInputs } from './types.js';

export interface SimHalOptions {
  /** Rated power of the charger, kW (the profile's max_kw after overrides). */
  maxKw: number;
  battery: Pick<SimHalSettings, 'battery_kwh' | 'soc_start' | 'soc_target' | 'taper_from_soc'>;
  /** Simulated time runs this many times faster than the clock passed to read(). */
  speed?: number;
}

/** In the taper the charging power never drops below this share of max_kw, so a session always finishes. */
export const TAPER_FLOOR = 0.1;
const MS_PER_HOUR = 3_600_000;

/**
 * The `sim` HAL: a vehicle battery with a charging curve (full power up to taper_from_soc, then
 * tapering linearly towards soc_target), a meter integrating energy, a relay with feedback and
 * injectable faults. Physics is advanced in closed form from the `nowMs` given to read(), so it
 * is exact and deterministic whatever the tick rate.
 */
export function createSimHal(o: SimHalOptions): Hal & { readonly faults: FaultKind[] } {
  const speed = o.speed ?? 1;
  const { battery_kwh: capacity, soc_start: socStart, soc_target: target } = o.battery;
  const taper = Math.min(o.battery.taper_from_soc, target);
  let lastMs: number | undefined;
  let relayCommand = false;
  let plugged = false;
  let soc = socStart;
  let meterKwh = 0;
  let powerKw = 0;
  const faults = new Set<FaultKind>();
  /** A charging profile's cap: the charger then behaves as one rated at the cap (its curve scaled to it). */
  let limitKw: number | undefined;
  const ratedKw = () => (limitKw === undefined ? o.maxKw : Math.min(o.maxKw, limitKw));

  const relayClosed = () => relayCommand && !faults.has('relay_failure');
  const flowing = () => relayClosed() && plugged && soc < target && faults.size === 0 && ratedKw() > 0;

  /** Power the vehicle accepts at this state of charge. */
  function acceptKw(s: number): number {
    if (s >= target) return 0;
    if (s < taper || target <= taper) return ratedKw();
    return ratedKw() * Math.max(TAPER_FLOOR, (target - s) / (target - taper));
  }

  /** Charges for `hours` of simulated time; returns the energy delivered, kWh. */
  function charge(hours: number): number {
    let left = hours;
    let energy = 0;
    const add = (kwh: number) => { energy += kwh; soc = Math.min(target, soc + kwh / capacity); };
    // 1. constant power below the taper
    if (soc < taper && left > 0) {
      const h = Math.min(left, ((taper - soc) * capacity) / ratedKw());
      add(ratedKw() * h);
      left -= h;
      if (soc > taper - 1e-12 && soc < taper) soc = taper;
    }
    // 2. linear taper: P = Pmax (target - soc) / (target - taper) => target - soc decays exponentially
    const xFloor = TAPER_FLOOR * (target - taper);
    if (left > 0 && soc >= taper && target - soc > xFloor) {
      const k = ratedKw() / (capacity * (target - taper));
      const x0 = target - soc;
      const hToFloor = Math.log(x0 / xFloor) / k;
      const h = Math.min(left, hToFloor);
      const x = h === hToFloor ? xFloor : x0 * Math.exp(-k * h);
      add(capacity * (x0 - x));
      if (h === hToFloor) soc = target - xFloor;
      left -= h;
    }
    // 3. the floor: constant TAPER_FLOOR * Pmax until the target
    if (left > 0 && soc < target) {
      const kw = ratedKw() * TAPER_FLOOR;
      const h = Math.min(left, ((target - soc) * capacity) / kw);
      add(kw * h);
      if (h < left) soc = target;
    }
    return energy;
  }

  function advance(nowMs: number) {
    if (lastMs === undefined || nowMs <= lastMs) { lastMs ??= nowMs; return; }
    const hours = ((nowMs - lastMs) * speed) / MS_PER_HOUR;
    lastMs = nowMs;
    // A failed meter still lets energy flow in reality, but the sim opens on any fault (see flowing()).
    if (flowing()) meterKwh += charge(hours);
    powerKw = flowing() ? acceptKw(soc) : 0;
  }

  return {
    driver: 'sim',
    get faults() { return [...faults]; },
    async start() { /* nothing to open */ },
    read(nowMs: number): HalInputs {
      advance(nowMs);
      return {
        meterKwh,
        powerKw,
        relayClosed: relayClosed(),
        vehiclePlugged: plugged,
        vehicleFull: plugged && soc >= target,
        soc: plugged ? soc : undefined,
        faults: [...faults],
      };
    },
    setRelay(closed: boolean) { relayCommand = closed; if (!flowing()) powerKw = 0; else powerKw = acceptKw(soc); },
    sessionStarted() { plugged = true; soc = socStart; },
    sessionEnded() { plugged = false; powerKw = 0; },
    injectFault(kind: FaultKind) { faults.add(kind); powerKw = 0; },
    clearFault(kind?: FaultKind) { if (kind) faults.delete(kind); else faults.clear(); },
    setPowerLimitKw(kw: number | undefined) { limitKw = kw === undefined ? undefined : Math.max(0, kw); powerKw = flowing() ? acceptKw(soc) : 0; },
    async close() { relayCommand = false; },
  };
}
