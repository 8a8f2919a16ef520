import { z } from 'zod';
import { CpId } from '../protocol/index.js';
import type { Controller } from './controller.js';

/**
 * Central's side of the weather service (the course's EV_W): it reports each CP's outside
 * temperature; at or below 0 °C central takes that CP out of service (an admin stop, with the
 * reason kept here and shown on the dashboard), and back in service once it is above 0 °C,
 * unless an operator had stopped it before the frost. In memory: the service reports every
 * few seconds, so a restarted central knows the weather again at once.
 */

export const FREEZING_C = 0;

export const WeatherReport = z.object({
  cp_id: CpId,
  location: z.string().min(1).max(128),
  temp_c: z.number().finite().min(-100).max(100),
}).strict();
export type WeatherReport = z.infer<typeof WeatherReport>;

export interface WeatherRecord {
  location: string;
  temp_c: number;
  at: number;
  out_of_service: boolean;
  /** The frost stopped it (it was running): warm weather resumes it; an operator's stop it leaves alone. */
  stopped_by_weather: boolean;
}

export type WeatherAction = 'take_out' | 'keep_out' | 'bring_back' | 'none';

/** Pure: what a report means for a CP, given what central knew. */
export function weatherAction(prev: WeatherRecord | undefined, tempC: number, adminStopped: boolean): WeatherAction {
  const freezing = tempC <= FREEZING_C;
  if (freezing) return prev?.out_of_service ? (adminStopped ? 'none' : 'keep_out') : 'take_out';
  return prev?.out_of_service ? 'bring_back' : 'none';
}

export class WeatherDesk {
  private readonly records = new Map<string, WeatherRecord>();
  constructor(private readonly ctl: Controller, private readonly now: () => number = Date.now) {}

  /** Applies one report; undefined when the CP is unknown. */
  async report(r: WeatherReport): Promise<{ cp_id: string; out_of_service: boolean; action: WeatherAction } | undefined> {
    const cp = this.ctl.state.cps.get(r.cp_id);
    if (!cp) return undefined;
    const prev = this.records.get(r.cp_id);
    const action = weatherAction(prev, r.temp_c, cp.admin_stopped);
    const rec: WeatherRecord = {
      location: r.location, temp_c: r.temp_c, at: this.now(),
      out_of_service: r.temp_c <= FREEZING_C,
      stopped_by_weather: prev?.stopped_by_weather ?? false,
    };
    const say = (level: 'info' | 'warn', text: string) => {
      this.ctl.recent.push({ at: this.now(), level, text, cp_id: r.cp_id });
    };
    if (action === 'take_out' || action === 'keep_out') {
      if (!cp.admin_stopped) { rec.stopped_by_weather = true; await this.ctl.adminSet(r.cp_id, true); }
      if (action === 'take_out') say('warn', `${r.cp_id} out of service: ${r.temp_c.toFixed(1)} °C in ${r.location}`);
    } else if (action === 'bring_back') {
      if (rec.stopped_by_weather && this.ctl.state.cps.get(r.cp_id)?.admin_stopped) await this.ctl.adminSet(r.cp_id, false);
      rec.stopped_by_weather = false;
      say('info', `${r.cp_id} back in service: ${r.temp_c.toFixed(1)} °C in ${r.location}`);
    }
    this.records.set(r.cp_id, rec);
    return { cp_id: r.cp_id, out_of_service: rec.out_of_service, action };
  }

  view(): Record<string, Omit<WeatherRecord, 'stopped_by_weather'>> {
    const out: Record<string, Omit<WeatherRecord, 'stopped_by_weather'>> = {};
    for (const [id, r] of this.records) out[id] = { location: r.location, temp_c: r.temp_c, at: r.at, out_of_service: r.out_of_service };
    return out;
  }
}
