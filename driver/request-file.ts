import { ID_PATTERN } from '../protocol/index.js';

export interface RequestLine { line: number; cpId: string }
export interface InvalidLine { line: number; text: string; reason: string }

/**
 * A driver's request file: one CP id a line; blank lines and `#` comments (whole-line or
 * trailing) are ignored. Invalid ids are returned separately so they can be reported and skipped.
 */
export function parseRequestFile(text: string): { requests: RequestLine[]; invalid: InvalidLine[] } {
  const requests: RequestLine[] = [];
  const invalid: InvalidLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const t = raw.replace(/#.*$/, '').trim();
    if (!t) return;
    if (ID_PATTERN.test(t)) requests.push({ line: i + 1, cpId: t });
    else invalid.push({ line: i + 1, text: t.slice(0, 80), reason: /\s/.test(t) ? 'more than one word' : 'not a CP id (letters, digits, dot, dash, underscore; at most 64)' });
  });
  return { requests, invalid };
}
