import { describe, expect, it } from 'vitest';
import { createSimHal, TAPER_FLOOR } from '../../firmware/hal/sim.js';
import { loadProfile } from '../../hw-profiles/profile.js';

const HOUR = 3_600_000;
/** A battery big enough that a 22 kW charger never reaches the taper within an hour. */
const bigBattery = { battery_kwh: 500, soc_start: 0, soc_target: 1, taper_from_soc: 0.95 };

/** Starts a session with the relay closed and reads every `stepMs` until `untilMs`. */
function run(hal: ReturnType<typeof createSimHal>, untilMs: number, stepMs: number, from = 0) {
  for (let t = from; t <= untilMs; t += stepMs) hal.read(t);
  return hal.read(untilMs);
}
function plugged(opts: Parameters<typeof createSimHal>[0]) {
  const hal = createSimHal(opts);
  hal.read(0);
  hal.sessionStarted();
  hal.setRelay(true);
  return hal;
}

describe('sim HAL', () => {
  it('22 kW for one hour meters 22 kWh (within 1%)', () => {
    const hal = plugged({ maxKw: 22, battery: bigBattery });
    const r = run(hal, HOUR, 1_000);
    expect(r.meterKwh).toBeGreaterThan(22 * 0.99);
    expect(r.meterKwh).toBeLessThan(22 * 1.01);
    expect(r.powerKw).toBe(22);
    expect(r.soc).toBeCloseTo(22 / 500, 6);
  });

  it('speed scales simulated time: one wall minute at x60 is one charging hour', () => {
    const hal = plugged({ maxKw: 22, battery: bigBattery, speed: 60 });
    const r = run(hal, 60_000, 100);
    expect(r.meterKwh).toBeCloseTo(22, 6);
  });

  it('the result does not depend on how often it is read (closed-form physics)', () => {
    const battery = loadProfile('ac-22kw').hal as { battery_kwh: number; soc_start: number; soc_target: number; taper_from_soc: number };
    const fine = plugged({ maxKw: 22, battery });
    const coarse = plugged({ maxKw: 22, battery });
    const a = run(fine, 1.8 * HOUR, 250);
    const b = coarse.read(1.8 * HOUR);
    expect(a.meterKwh).toBeCloseTo(b.meterKwh, 6);
    expect(a.soc).toBeCloseTo(b.soc!, 6);
  });

  it('tapers linearly above taper_from_soc and stops at soc_target with exactly the battery energy', () => {
    // ac-22kw: 60 kWh, 20% -> 90%, taper from 80%
    const hal = plugged({ maxKw: 22, battery: { battery_kwh: 60, soc_start: 0.2, soc_target: 0.9, taper_from_soc: 0.8 } });
    const toTaper = ((0.8 - 0.2) * 60 / 22) * HOUR;
    const before = run(hal, toTaper - 60_000, 10_000);
    expect(before.powerKw).toBe(22);
    expect(before.vehicleFull).toBe(false);
    let last = 22;
    const powers: number[] = [];
    for (let t = toTaper + 60_000; t < toTaper + 0.5 * HOUR; t += 60_000) {
      const r = hal.read(t);
      powers.push(r.powerKw);
      expect(r.powerKw).toBeLessThanOrEqual(last + 1e-9);
      // linear in state of charge, floored
      expect(r.powerKw).toBeCloseTo(22 * Math.max(TAPER_FLOOR, (0.9 - r.soc!) / 0.1), 6);
      last = r.powerKw;
    }
    expect(powers[0]).toBeLessThan(22);
    const end = hal.read(5 * HOUR);
    expect(end.vehicleFull).toBe(true);
    expect(end.powerKw).toBe(0);
    expect(end.soc).toBeCloseTo(0.9, 9);
    expect(end.meterKwh).toBeCloseTo(0.7 * 60, 6);
  });

  it('nothing flows without a plugged vehicle or with the relay open', () => {
    const hal = createSimHal({ maxKw: 50, battery: bigBattery });
    hal.read(0);
    hal.setRelay(true);
    expect(hal.read(HOUR).meterKwh).toBe(0);
    hal.sessionStarted();
    hal.setRelay(false);
    const r = hal.read(2 * HOUR);
    expect(r.meterKwh).toBe(0);
    expect(r.relayClosed).toBe(false);
    expect(r.vehiclePlugged).toBe(true);
  });

  it('ground fault: reported, power cut, meter frozen; clearing lets it flow again', () => {
    const hal = plugged({ maxKw: 22, battery: bigBattery });
    hal.read(HOUR / 2);
    hal.injectFault!('ground_fault');
    const during = hal.read(HOUR);
    expect(during.faults).toEqual(['ground_fault']);
    expect(during.powerKw).toBe(0);
    expect(during.meterKwh).toBeCloseTo(11, 6);
    hal.clearFault!('ground_fault');
    const after = hal.read(1.5 * HOUR);
    expect(after.faults).toEqual([]);
    expect(after.meterKwh).toBeCloseTo(22, 6);
  });

  it('meter failure and over-temperature are reported as faults; clearFault() without kind clears all', () => {
    const hal = plugged({ maxKw: 22, battery: bigBattery });
    hal.injectFault!('meter_failure');
    hal.injectFault!('over_temperature');
    expect(hal.read(1000).faults.sort()).toEqual(['meter_failure', 'over_temperature']);
    hal.clearFault!();
    expect(hal.read(2000).faults).toEqual([]);
  });

  it('relay failure: the relay is commanded closed but its feedback stays open', () => {
    const hal = plugged({ maxKw: 22, battery: bigBattery });
    hal.injectFault!('relay_failure');
    const r = hal.read(HOUR);
    expect(r.relayClosed).toBe(false);
    expect(r.meterKwh).toBe(0);
  });

  it('is deterministic: two runs give identical readings', () => {
    const a = plugged({ maxKw: 350, battery: { battery_kwh: 90, soc_start: 0.1, soc_target: 0.8, taper_from_soc: 0.6 }, speed: 30 });
    const b = plugged({ maxKw: 350, battery: { battery_kwh: 90, soc_start: 0.1, soc_target: 0.8, taper_from_soc: 0.6 }, speed: 30 });
    for (let t = 0; t < 120_000; t += 777) expect(a.read(t)).toEqual(b.read(t));
  });
});
