import { describe, expect, it } from 'vitest';
import { ChargingProfiles, readProfile } from '../../firmware/ocpp/charging-profile.js';
import { createSimHal } from '../../firmware/hal/sim.js';
import {
  OCPP16, OCPP201, endReasonOf, errorCodeOf, faultsOfErrorCode, idTagFor, readSampledValues, sampledValuesOf, stateOfStatus, statusOf, stopReasonOf,
} from '../../lib/ocpp.js';
import { CP_STATES, SESSION_END_REASONS } from '../../protocol/index.js';

describe('OCPP vocabulary (lib/ocpp.ts)', () => {
  it('a CP state survives the trip firmware → OCPP status → gateway', () => {
    for (const v of [OCPP16, OCPP201]) {
      for (const s of CP_STATES.filter((x) => x !== 'DISCONNECTED' && x !== 'SUPPLYING')) expect(stateOfStatus(statusOf(v, s))).toBe(s);
    }
    expect(statusOf(OCPP16, 'SUPPLYING')).toBe('Charging');
    expect(statusOf(OCPP201, 'SUPPLYING')).toBe('Occupied');
  });

  it('faults travel as 1.6 error codes and back', () => {
    expect(faultsOfErrorCode(errorCodeOf(['ground_fault']))).toEqual(['ground_fault']);
    expect(faultsOfErrorCode(errorCodeOf(['over_temperature']))).toEqual(['over_temperature']);
    expect(errorCodeOf([])).toBe('NoError');
    expect(faultsOfErrorCode('WeakSignal')).toEqual([]);
  });

  it('end reasons the firmware sends come back as the same reason at the gateway', () => {
    const produced = ['full', 'driver_stop', 'fault', 'unplugged'] as const;
    for (const v of [OCPP16, OCPP201]) for (const r of produced) expect(endReasonOf(v, stopReasonOf(v, r))).toBe(r);
    // A stop central asked for is Remote; which kind of stop is the gateway's memory of the command.
    expect(endReasonOf(OCPP16, stopReasonOf(OCPP16, 'central_stop'), 'driver_stop')).toBe('driver_stop');
    expect(endReasonOf(OCPP201, 'Remote', 'cp_stopped')).toBe('cp_stopped');
    expect(endReasonOf(OCPP16, undefined)).toBe('driver_stop'); // 1.6: an absent reason means Local
    for (const v of [OCPP16, OCPP201]) for (const r of SESSION_END_REASONS) expect(typeof stopReasonOf(v, r)).toBe('string');
  });

  it('meter values: Wh/kWh, W/kW, 2.0.1 multipliers and SoC; what the firmware writes the gateway reads', () => {
    expect(readSampledValues([{ value: '12345' }])).toEqual({ registerKwh: 12.345 }); // 1.6 defaults: the energy register in Wh
    expect(readSampledValues([{ value: '1.5', measurand: 'Energy.Active.Import.Register', unit: 'kWh' }, { value: '7.4', measurand: 'Power.Active.Import', unit: 'kW' }])).toEqual({ registerKwh: 1.5, kw: 7.4 });
    expect(readSampledValues([{ value: 3, measurand: 'Energy.Active.Import.Register', unitOfMeasure: { unit: 'Wh', multiplier: 3 } }])).toEqual({ registerKwh: 3 });
    expect(readSampledValues([{ value: 'garbage' }, { value: '55', measurand: 'SoC' }, { value: '1', measurand: 'Voltage' }])).toEqual({ soc: 0.55 });
    for (const v of [OCPP16, OCPP201]) {
      expect(readSampledValues(sampledValuesOf(v, { registerKwh: 42.1234, kw: 11.05, soc: 0.8 }, 'Sample.Periodic'))).toEqual({ registerKwh: 42.123, kw: 11.05, soc: 0.8 });
    }
  });

  it('id tags fit the version (1.6: 20 characters, 2.0.1: 36)', () => {
    expect(idTagFor(OCPP16, 'driver-alice', 'S-1')).toBe('driver-alice');
    expect(idTagFor(OCPP16, 'a-driver-with-a-long-name', 'S-abcdefghijklmnopqrstuvwxyz')).toBe('S-abcdefghijklmnopqr');
    expect(idTagFor(OCPP201, 'a-driver-with-a-long-name', 'S-1')).toBe('a-driver-with-a-long-name');
  });
});

describe('charging profiles (firmware/ocpp/charging-profile.ts)', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const p16 = (id: number, purpose: string, stackLevel: number, unit: 'W' | 'A', periods: Array<{ startPeriod: number; limit: number }>) =>
    readProfile({ chargingProfileId: id, stackLevel, chargingProfilePurpose: purpose, chargingProfileKind: 'Relative', chargingSchedule: { chargingRateUnit: unit, chargingSchedulePeriod: periods } }, t0)!;

  it('the active period of the highest stack level counts; amps are converted at 230 V per phase', () => {
    const c = new ChargingProfiles();
    expect(c.limitKw(t0, { phases: 3 })).toBeUndefined();
    c.set(p16(1, 'TxDefaultProfile', 0, 'W', [{ startPeriod: 0, limit: 11_000 }, { startPeriod: 60, limit: 4_000 }]));
    expect(c.limitKw(t0 + 10_000, { phases: 3 })).toBe(11);
    expect(c.limitKw(t0 + 61_000, { phases: 3 })).toBe(4);
    c.set(p16(2, 'TxDefaultProfile', 1, 'A', [{ startPeriod: 0, limit: 16 }]));
    expect(c.limitKw(t0 + 61_000, { phases: 3 })).toBeCloseTo(11.04, 6);
    // A TxProfile replaces the default; the station maximum caps it.
    c.set(p16(3, 'TxProfile', 0, 'W', [{ startPeriod: 0, limit: 20_000 }]));
    c.set(p16(4, 'ChargePointMaxProfile', 0, 'W', [{ startPeriod: 0, limit: 7_000 }]));
    expect(c.limitKw(t0, { phases: 3 })).toBe(7);
    expect(c.clear({ purpose: 'max' })).toBe(1);
    expect(c.limitKw(t0, { phases: 3 })).toBe(20);
    c.endTransaction();
    expect(c.limitKw(t0, { phases: 3 })).toBeCloseTo(11.04, 6);
    expect(c.clear()).toBe(2);
  });

  it('reads a 2.0.1 profile (schedule list, ChargingStationMaxProfile) and ignores purposes it does not apply', () => {
    const p = readProfile({ id: 9, stackLevel: 0, chargingProfilePurpose: 'ChargingStationMaxProfile', chargingProfileKind: 'Absolute',
      chargingSchedule: [{ chargingRateUnit: 'W', startSchedule: '2026-01-01T00:00:00Z', duration: 3600, chargingSchedulePeriod: [{ startPeriod: 0, limit: 5000 }] }] }, t0 + 99)!;
    const c = new ChargingProfiles();
    c.set(p);
    expect(c.limitKw(t0 + 1000, { phases: 1 })).toBe(5);
    expect(c.limitKw(t0 + 3_600_000, { phases: 1 })).toBeUndefined(); // past its duration
    expect(readProfile({ id: 1, stackLevel: 0, chargingProfilePurpose: 'ChargingStationExternalConstraints', chargingProfileKind: 'Absolute', chargingSchedule: [] }, t0)).toBeUndefined();
  });

  it('the sim HAL honours a power cap, and delivers again once it is lifted', () => {
    const hal = createSimHal({ maxKw: 22, battery: { battery_kwh: 60, soc_start: 0.2, soc_target: 0.9, taper_from_soc: 0.8 } });
    hal.sessionStarted();
    hal.setRelay(true);
    hal.read(0);
    expect(hal.read(1000).powerKw).toBe(22);
    hal.setPowerLimitKw!(7);
    const before = hal.read(2000).meterKwh;
    const after = hal.read(3_602_000);
    expect(after.powerKw).toBe(7);
    expect(after.meterKwh - before).toBeCloseTo(7, 6); // one hour at the cap
    hal.setPowerLimitKw!(0);
    expect(hal.read(3_700_000).powerKw).toBe(0);
    hal.setPowerLimitKw!(undefined);
    expect(hal.read(3_800_000).powerKw).toBe(22);
  });
});
