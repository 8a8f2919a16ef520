import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { firstIssue, type ProfileSummary } from '../protocol/index.js';
import { ProfileError } from '../lib/errors.js';

/** Where the bundled profiles live; a profile may also be any JSON file path. */
export const PROFILES_DIR = dirname(fileURLToPath(import.meta.url));

const SerialLine = z.object({
  path: z.string().min(1),
  baud_rate: z.number().int().positive().default(9600),
});

export const SerialHalConfig = z.object({
  driver: z.literal('serial'),
  /** LCUS-type USB relay module (4-byte frames A0 ch state sum). */
  relay: SerialLine.extend({
    channel: z.number().int().min(1).max(8).default(1),
    /** status_query: boards that answer 0xFF with "CHn: ON|OFF" lines (relay feedback); none: trust the command. */
    feedback: z.enum(['status_query', 'none']).default('status_query'),
  }),
  /** Modbus RTU energy meter (Eastron SDM-style input registers). */
  meter: SerialLine.extend({ unit_id: z.number().int().min(1).max(247).default(1), model: z.enum(['sdm120', 'sdm630']).default('sdm120') }),
  /** Optional Modbus RTU digital input module on the meter's RS-485 bus (function 0x02), e.g. an RCD or over-temperature contact. */
  fault_input: z.object({
    unit_id: z.number().int().min(1).max(247),
    input: z.number().int().min(0).max(255).default(0),
    kind: z.enum(['ground_fault', 'over_temperature']).default('ground_fault'),
    active: z.enum(['high', 'low']).default('high'),
  }).optional(),
  timeout_ms: z.number().int().positive().default(300),
  retries: z.number().int().min(0).max(10).default(3),
  poll_ms: z.number().int().positive().default(500),
  /** The vehicle is full when, with the relay closed, it draws at most this much after having drawn more... */
  full_below_kw: z.number().nonnegative().default(0.1),
  /** ...for this long (ms). */
  full_after_ms: z.number().int().positive().default(3_000),
});

export const SimHalConfig = z.object({
  driver: z.literal('sim'),
  /** Battery of the simulated vehicles that plug in. */
  battery_kwh: z.number().positive().default(60),
  soc_start: z.number().min(0).max(1).default(0.2),
  soc_target: z.number().min(0).max(1).default(0.9),
  /** Above this state of charge the charging curve tapers linearly towards the target. */
  taper_from_soc: z.number().min(0).max(1).default(0.8),
});

export const HwProfileSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'lower-case letters, digits and dashes'),
  description: z.string().default(''),
  max_kw: z.number().positive().max(1000),
  price_eur_kwh: z.number().nonnegative().max(100),
  connector: z.enum(['Type2', 'CCS2', 'CHAdeMO', 'Type1', 'CCS1']),
  current: z.enum(['AC', 'DC']),
  phases: z.number().int().min(1).max(3),
  hal: z.discriminatedUnion('driver', [SimHalConfig, SerialHalConfig]),
}).strict();
export type HwProfile = z.infer<typeof HwProfileSchema>;
export type SimHalSettings = z.infer<typeof SimHalConfig>;
export type SerialHalSettings = z.infer<typeof SerialHalConfig>;


/** Validates a parsed profile; the error names the file and the field. */
export function parseProfile(raw: unknown, file: string): HwProfile {
  const parsed = HwProfileSchema.safeParse(raw);
  if (!parsed.success) throw new ProfileError(`${file}: ${firstIssue(parsed.error)}`);
  return parsed.data;
}

/** Loads a profile by bundled name (`ac-22kw`) or by path to a JSON file. */
export function loadProfile(nameOrPath: string): HwProfile {
  const file = nameOrPath.includes('/') || nameOrPath.endsWith('.json') ? nameOrPath : join(PROFILES_DIR, `${nameOrPath}.json`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ProfileError(`${file}: cannot read profile (known profiles: ${listProfiles().join(', ')})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseProfile(raw, file);
}

export function listProfiles(): string[] {
  return readdirSync(PROFILES_DIR).filter((f) => f.endsWith('.json')).map((f) => basename(f, '.json')).sort();
}

/** Applies command-line overrides (rated kW, price) to a profile. */
/** A power override renames the profile (`custom-75kw`): a name that says 22 kW must not label a 75 kW CP. */
export function withOverrides(p: HwProfile, o: { kw?: number; price?: number }): HwProfile {
  const name = o.kw !== undefined && o.kw !== p.max_kw ? `custom-${o.kw}kw` : p.name;
  return { ...p, name, max_kw: o.kw ?? p.max_kw, price_eur_kwh: o.price ?? p.price_eur_kwh };
}

export function summarize(p: HwProfile): ProfileSummary {
  return { name: p.name, max_kw: p.max_kw, price_eur_kwh: p.price_eur_kwh, connector: p.connector, phases: p.phases, hal: p.hal.driver };
}
export { ProfileError };
