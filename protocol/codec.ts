import type { z } from 'zod';

/** Largest payload any boundary accepts; bigger ones are rejected before parsing. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: DecodeErrorKind; detail: string };
export type DecodeErrorKind = 'oversize' | 'not_json' | 'schema';

/** Decodes and validates a JSON payload. Never throws: bad input comes back as a reason to count and log. */
export function decode<S extends z.ZodType>(schema: S, payload: Buffer | string, maxBytes = MAX_PAYLOAD_BYTES): DecodeResult<z.infer<S>> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > maxBytes) return { ok: false, error: 'oversize', detail: `${size} bytes > ${maxBytes}` };
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch {
    return { ok: false, error: 'not_json', detail: 'payload is not valid JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, error: 'schema', detail: firstIssue(parsed.error) };
  return { ok: true, value: parsed.data };
}

export function encode(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** A zod error as one line: the first issue's path and message (`profile.max_kw: Too small…`). */
export function firstIssue(err: z.ZodError): string {
  const issue = err.issues[0];
  return `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`;
}
