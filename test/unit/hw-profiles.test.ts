import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listProfiles, loadProfile, ProfileError, summarize, withOverrides } from '../../hw-profiles/profile.js';
import { ProfileSummary } from '../../protocol/index.js';

let dir: string;
beforeAll(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'profiles-')); });
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }); });

const good = { name: 'lab-11kw', max_kw: 11, price_eur_kwh: 0.3, connector: 'Type2', current: 'AC', phases: 3, hal: { driver: 'sim' } };
async function write(name: string, content: unknown) {
  const file = path.join(dir, name);
  await fs.writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('hardware profiles', () => {
  it('every bundled profile is valid and summarizes to the protocol shape', () => {
    const names = listProfiles();
    expect(names).toEqual(expect.arrayContaining(['ac-22kw', 'dc-50kw', 'dc-350kw']));
    for (const n of names) {
      const p = loadProfile(n);
      expect(p.name).toBe(n);
      expect(() => ProfileSummary.parse(summarize(p))).not.toThrow();
      if (p.hal.driver === 'sim') {
        expect(p.hal.soc_start).toBeLessThan(p.hal.soc_target);
        expect(p.hal.taper_from_soc).toBeLessThanOrEqual(p.hal.soc_target);
      }
    }
  });

  it('a profile file by path loads, with sim defaults filled in', async () => {
    const p = loadProfile(await write('lab.json', good));
    expect(p).toMatchObject({ name: 'lab-11kw', max_kw: 11, hal: { driver: 'sim', battery_kwh: 60 } });
    expect(withOverrides(p, { kw: 7.4, price: 0.5 })).toMatchObject({ max_kw: 7.4, price_eur_kwh: 0.5 });
  });

  it('a bad field is named together with the file', async () => {
    const file = await write('bad-kw.json', { ...good, max_kw: -3 });
    expect(() => loadProfile(file)).toThrow(ProfileError);
    expect(() => loadProfile(file)).toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: max_kw: `));
  });

  it('a nested bad field, an unknown field and a bad HAL driver are named', async () => {
    expect(() => loadProfile(`${dir}/x.json`)).toThrow(/x\.json: cannot read profile/);
    const nested = await write('bad-soc.json', { ...good, hal: { driver: 'sim', soc_start: 2 } });
    expect(() => loadProfile(nested)).toThrow(/bad-soc\.json: hal\.soc_start: /);
    const extra = await write('extra.json', { ...good, colour: 'red' });
    expect(() => loadProfile(extra)).toThrow(/extra\.json: .*colour/);
    const driver = await write('driver.json', { ...good, hal: { driver: 'telepathy' } });
    expect(() => loadProfile(driver)).toThrow(/driver\.json: hal\.driver/);
  });

  it('a file that is not JSON is named', async () => {
    const file = await write('broken.json', '{ "name": ');
    expect(() => loadProfile(file)).toThrow(/broken\.json: not valid JSON/);
  });

  it('an unknown bundled name lists the known ones', () => {
    expect(() => loadProfile('warp-drive')).toThrow(/warp-drive\.json: cannot read profile \(known profiles: ac-22kw, /);
  });
});
