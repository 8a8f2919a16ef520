/**
 * Each CP's location, as OpenWeather names places (`City,CC`). Given ones come from
 * `--locations "CP-001=Oslo,NO;CP-002=Madrid,ES"` (or a JSON file `{"CP-001":"Oslo,NO"}`);
 * any other CP gets a city from a built-in list by its number, so every CP has one.
 */
export const CITIES = [
  'Madrid,ES', 'Oslo,NO', 'Alicante,ES', 'Helsinki,FI', 'Lisbon,PT', 'Reykjavik,IS', 'Berlin,DE', 'Tromso,NO',
  'Paris,FR', 'Moscow,RU', 'Rome,IT', 'Kiruna,SE', 'Athens,GR', 'Warsaw,PL', 'Valencia,ES', 'Murmansk,RU',
];

export function parseLocations(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const t = text.trim();
  if (!t) return out;
  if (t.startsWith('{')) {
    const obj = JSON.parse(t) as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) {
      if (typeof v !== 'string' || !v.trim()) throw new Error(`location of ${k} must be a place name`);
      out.set(k, v.trim());
    }
    return out;
  }
  for (const part of t.split(/[;\n]/).map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0 || i === part.length - 1) throw new Error(`expected CP=PLACE, got ${JSON.stringify(part)}`);
    out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

export function locationOf(cpId: string, given: ReadonlyMap<string, string>): string {
  const g = given.get(cpId);
  if (g) return g;
  const n = /(\d+)$/.exec(cpId);
  const i = n ? Number(n[1]) - 1 : [...cpId].reduce((a, c) => a + c.charCodeAt(0), 0);
  return CITIES[((i % CITIES.length) + CITIES.length) % CITIES.length]!;
}
