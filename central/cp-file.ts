import fs from 'node:fs';
import { z } from 'zod';
import { CpId, firstIssue, type ProfileSummary } from '../protocol/index.js';
import { loadProfile, summarize, withOverrides } from '../hw-profiles/profile.js';
import { CpFileError } from '../lib/errors.js';

/**
 * The CP list central can preload (--cp-file): a JSON array whose items are CP ids or
 * objects `{ "cp_id": "CP-001", "profile": "dc-50kw", "kw": 50, "price": 0.4 }` (profile names
 * as in hw-profiles/). Preloaded CPs are listed DISCONNECTED until their engine speaks.
 */
const Entry = z.union([
  CpId.transform((cp_id) => ({ cp_id })),
  z.object({ cp_id: CpId, profile: z.string().min(1).max(128).optional(), kw: z.number().positive().optional(), price: z.number().nonnegative().optional() }).strict(),
]);
const CpFile = z.array(Entry).max(100_000);

export interface PreloadedCp { cp_id: string; profile?: ProfileSummary }


export function parseCpFile(text: string, file: string): PreloadedCp[] {
  let json: unknown;
  try { json = JSON.parse(text); } catch { throw new CpFileError(`--cp-file ${file}: not valid JSON`); }
  const r = CpFile.safeParse(json);
  if (!r.success) throw new CpFileError(`--cp-file ${file}: ${firstIssue(r.error)}`);
  const seen = new Set<string>();
  return r.data.map((e) => {
    if (seen.has(e.cp_id)) throw new CpFileError(`--cp-file ${file}: ${e.cp_id} is listed twice`);
    seen.add(e.cp_id);
    if (!('profile' in e) || !e.profile) return { cp_id: e.cp_id };
    try {
      return { cp_id: e.cp_id, profile: summarize(withOverrides(loadProfile(e.profile), { kw: e.kw, price: e.price })) };
    } catch (err) {
      throw new CpFileError(`--cp-file ${file}: ${e.cp_id}: ${(err as Error).message}`);
    }
  });
}

export function readCpFile(file: string): PreloadedCp[] {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (err) { throw new CpFileError(`--cp-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`); }
  return parseCpFile(text, file);
}
export { CpFileError };
