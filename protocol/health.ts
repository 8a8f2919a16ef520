/**
 * The engine's TCP health port speaks newline-terminated ASCII lines, one request one reply.
 *   PING               -> OK | KO <reason>
 *   STATUS             -> OK {json} (state, faults, session)
 *   FAULT <kind>       -> OK fault <kind> injected       (simulated hardware only)
 *   REPAIR [<kind>]    -> OK repaired
 * Anything else       -> ERR <reason>; the connection and the port keep serving.
 */
export const HEALTH_MAX_LINE = 256;
export type HealthRequest = { verb: 'PING' } | { verb: 'STATUS' } | { verb: 'FAULT'; kind: string } | { verb: 'REPAIR'; kind?: string };

export function parseHealthRequest(line: string): HealthRequest | { error: string } {
  const trimmed = line.trim();
  if (!/^[\x20-\x7e]*$/.test(trimmed)) return { error: 'non-ASCII bytes' };
  const [verb, arg, extra] = trimmed.split(/\s+/);
  if (extra !== undefined) return { error: 'too many arguments' };
  switch (verb?.toUpperCase()) {
    case 'PING': return { verb: 'PING' };
    case 'STATUS': return { verb: 'STATUS' };
    case 'FAULT': return arg ? { verb: 'FAULT', kind: arg } : { error: 'FAULT needs a kind' };
    case 'REPAIR': return arg ? { verb: 'REPAIR', kind: arg } : { verb: 'REPAIR' };
    default: return { error: `unknown request ${JSON.stringify(trimmed.slice(0, 32))}` };
  }
}

/** Parses a health reply: `OK ...` is healthy, `KO reason` is not, anything else is a protocol error. */
export function parseHealthReply(line: string): { ok: true; detail: string } | { ok: false; reason: string } {
  const t = line.trim();
  if (t === 'OK' || t.startsWith('OK ')) return { ok: true, detail: t.slice(3) };
  if (t.startsWith('KO')) return { ok: false, reason: t.slice(3) || 'KO' };
  return { ok: false, reason: `bad reply: ${t.slice(0, 64)}` };
}
