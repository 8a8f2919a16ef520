import { ControlError } from '../lib/errors.js';
import { readControlToken } from './control-token.js';
/** The other end of the control endpoint: what `add-cp`, `crash`, `status` … call. The token comes from the run's token file (or EVCHARGING_CONTROL_TOKEN). */

export async function control<T>(baseUrl: string, method: 'GET' | 'POST', route: string, body?: unknown, token = readControlToken(Number(new URL(baseUrl).port))): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}${route}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new ControlError(`no running network answers at ${baseUrl} (${code}); start one with \`evcharging up\` or set EVCHARGING_CONTROL_PORT`, 1);
  }
  const text = await res.text();
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { throw new ControlError(`unexpected answer from ${baseUrl}${route}: HTTP ${res.status}`, 1); }
  if (!res.ok) throw new ControlError((parsed as { error?: string }).error ?? `HTTP ${res.status}`, res.status === 404 || res.status === 400 ? 2 : 1);
  return parsed as T;
}
export { ControlError };
