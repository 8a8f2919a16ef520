/**
 * Smart charging as the firmware honours it: the charging profiles a CSMS set (1.6
 * SetChargingProfile csChargingProfiles, 2.0.1 chargingProfile, either version's shape read
 * into one), and the power limit they give at a moment. Pure: no I/O, no clock of its own.
 *
 * Per purpose the profile with the highest stack level that is valid now counts; its active
 * period is the last one whose startPeriod has passed (Absolute: from startSchedule,
 * Relative/Recurring: from when it was set, or from the transaction's start for a TxProfile).
 * A TxProfile replaces a TxDefaultProfile; the station-wide maximum profile caps both.
 */
export type Purpose = 'max' | 'txDefault' | 'tx';

export interface Period { startPeriod: number; limit: number; numberPhases?: number }
export interface Profile {
  id: number;
  stackLevel: number;
  purpose: Purpose;
  kind: 'Absolute' | 'Recurring' | 'Relative';
  unit: 'W' | 'A';
  periods: Period[];
  /** Epoch ms the schedule starts (Absolute), else when the profile was set. */
  startMs: number;
  durationS?: number;
  validFromMs?: number;
  validToMs?: number;
  transactionId?: string;
}

const PURPOSES: Record<string, Purpose> = {
  ChargePointMaxProfile: 'max', ChargingStationMaxProfile: 'max', TxDefaultProfile: 'txDefault', TxProfile: 'tx',
};

interface RawSchedule { chargingRateUnit: string; chargingSchedulePeriod: Period[]; startSchedule?: string; duration?: number }
interface RawProfile {
  chargingProfileId?: number; id?: number; stackLevel: number; chargingProfilePurpose: string; chargingProfileKind: string;
  chargingSchedule: RawSchedule | RawSchedule[]; validFrom?: string; validTo?: string; transactionId?: number | string;
}

/** Reads a 1.6 or 2.0.1 charging profile; undefined for a purpose this firmware does not apply (e.g. 2.0.1 ChargingStationExternalConstraints). */
export function readProfile(raw: RawProfile, nowMs: number): Profile | undefined {
  const purpose = PURPOSES[raw.chargingProfilePurpose];
  const schedule = Array.isArray(raw.chargingSchedule) ? raw.chargingSchedule[0] : raw.chargingSchedule;
  if (!purpose || !schedule || !schedule.chargingSchedulePeriod.length) return undefined;
  const kind = raw.chargingProfileKind === 'Absolute' || raw.chargingProfileKind === 'Recurring' ? raw.chargingProfileKind : 'Relative';
  const start = schedule.startSchedule ? Date.parse(schedule.startSchedule) : NaN;
  return {
    id: raw.chargingProfileId ?? raw.id ?? 0, stackLevel: raw.stackLevel, purpose, kind, unit: schedule.chargingRateUnit === 'A' ? 'A' : 'W',
    periods: [...schedule.chargingSchedulePeriod].sort((a, b) => a.startPeriod - b.startPeriod),
    startMs: kind === 'Absolute' && Number.isFinite(start) ? start : nowMs,
    ...(schedule.duration !== undefined ? { durationS: schedule.duration } : {}),
    ...(raw.validFrom ? { validFromMs: Date.parse(raw.validFrom) } : {}), ...(raw.validTo ? { validToMs: Date.parse(raw.validTo) } : {}),
    ...(raw.transactionId !== undefined ? { transactionId: String(raw.transactionId) } : {}),
  };
}

export class ChargingProfiles {
  private profiles: Profile[] = [];

  /** Adds or replaces (same id, or same purpose and stack level) a profile. */
  set(p: Profile): void {
    this.profiles = this.profiles.filter((q) => q.id !== p.id && !(q.purpose === p.purpose && q.stackLevel === p.stackLevel));
    this.profiles.push(p);
  }

  /** Clears by id, or by purpose and/or stack level; all with no criteria. Returns how many went. */
  clear(c: { id?: number; purpose?: Purpose; stackLevel?: number } = {}): number {
    const before = this.profiles.length;
    this.profiles = this.profiles.filter((p) => !((c.id === undefined || p.id === c.id) && (c.purpose === undefined || p.purpose === c.purpose) && (c.stackLevel === undefined || p.stackLevel === c.stackLevel)));
    return before - this.profiles.length;
  }

  /** A transaction ended: its TxProfiles go with it. */
  endTransaction(): void { this.profiles = this.profiles.filter((p) => p.purpose !== 'tx'); }

  get size(): number { return this.profiles.length; }

  /** The power limit in kW at `nowMs`, or undefined when no profile limits it. `txStartMs` anchors Relative TxProfiles. */
  limitKw(nowMs: number, o: { phases: number; voltage?: number; txStartMs?: number }): number | undefined {
    const of = (purpose: Purpose): number | undefined => {
      const valid = this.profiles.filter((p) => p.purpose === purpose && (p.validFromMs === undefined || nowMs >= p.validFromMs) && (p.validToMs === undefined || nowMs < p.validToMs))
        .sort((a, b) => b.stackLevel - a.stackLevel);
      for (const p of valid) {
        const anchor = p.kind === 'Relative' && purpose !== 'max' && o.txStartMs !== undefined ? Math.max(o.txStartMs, 0) : p.startMs;
        const elapsedS = Math.max(0, (nowMs - anchor) / 1000);
        if (p.durationS !== undefined && elapsedS >= p.durationS) continue;
        const period = [...p.periods].reverse().find((x) => x.startPeriod <= elapsedS);
        if (!period) continue;
        return p.unit === 'W' ? period.limit / 1000 : (period.limit * (o.voltage ?? 230) * (period.numberPhases ?? o.phases)) / 1000;
      }
      return undefined;
    };
    const tx = of('tx') ?? of('txDefault');
    const max = of('max');
    if (tx === undefined) return max;
    return max === undefined ? tx : Math.min(tx, max);
  }
}
