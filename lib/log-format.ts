/**
 * Readable log lines for people: pino's JSON object in, one coloured line out:
 *   `12:45:07 INFO  central  charging point registered  cp_id=CP-001 profile=ac-22kw`
 * Machines read JSON (a file, a pipe, LOG_FORMAT=json); a terminal gets these lines.
 */

export type LogFormat = 'pretty' | 'json';

/** `pretty` on a terminal, `json` otherwise; LOG_FORMAT=json|pretty decides when set. */
export function logFormatFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const f = env.LOG_FORMAT?.toLowerCase();
  if (f === 'json' || f === 'pretty') return f;
  return stream.isTTY ? 'pretty' : 'json';
}

/** Colour only where it is read by a person and not told otherwise (NO_COLOR, https://no-color.org). */
export function useColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return !!stream.isTTY && env.NO_COLOR === undefined && env.TERM !== 'dumb';
}

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '90'], 20: ['DEBUG', '90'], 30: ['INFO ', '32'], 40: ['WARN ', '33'], 50: ['ERROR', '31'], 60: ['FATAL', '35'],
};
/** Fields every pino line has, or that the prefix already shows. */
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v', 'component']);

const paint = (on: boolean, code: string, s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

function clock(t: unknown): string {
  const d = typeof t === 'number' || typeof t === 'string' ? new Date(t) : new Date();
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return d.toTimeString().slice(0, 8);
}

export interface FormatOptions {
  colour: boolean;
  /** Shown before the message instead of the logger's own name (the supervisor's component name). */
  prefix?: string;
}

/** One pino record as one line (no newline). */
export function formatRecord(rec: Record<string, unknown>, o: FormatOptions): string {
  const [label, code] = LEVELS[Number(rec.level)] ?? ['INFO ', '32'];
  const who = o.prefix ?? (typeof rec.component === 'string' ? rec.component : String(rec.name ?? ''));
  const extras = Object.entries(rec).filter(([k, v]) => !HIDDEN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`).join(' ');
  // The supervisor's own lines about a component name it in `component`: say it after the message.
  const about = o.prefix === undefined || typeof rec.component !== 'string' || rec.component === who ? '' : ` ${rec.component}`;
  const msg = String(rec.msg ?? '');
  return `${paint(o.colour, '2', clock(rec.time))} ${paint(o.colour, code, label)} ${paint(o.colour, '36', who.padEnd(14))} `
    + `${Number(rec.level) >= 40 ? paint(o.colour, code, msg) : msg}${about}${extras ? `  ${paint(o.colour, '2', extras)}` : ''}`;
}

/**
 * A line a component printed: pino JSON is formatted; any other line (a driver's update, a
 * one-line configuration error) is kept as it is, behind the prefix.
 */
export function formatLine(line: string, o: FormatOptions): string {
  if (line.startsWith('{')) {
    try {
      const rec = JSON.parse(line) as unknown;
      if (rec && typeof rec === 'object' && 'level' in rec) return formatRecord(rec as Record<string, unknown>, o);
    } catch { /* not JSON after all */ }
  }
  if (o.prefix === undefined) return line;
  // `driver-alice driver-alice CP-001 …`: the prefix says who, once.
  const text = line.startsWith(`${o.prefix} `) ? line.slice(o.prefix.length + 1) : line;
  return `${paint(o.colour, '2', clock(Date.now()))}       ${paint(o.colour, '36', o.prefix.padEnd(14))} ${text}`;
}

/** A pino destination that writes readable lines to `out` (synchronously, so nothing is lost at exit). */
export function prettyDestination(out: NodeJS.WriteStream, colour = useColour(out)): { write(s: string): void } {
  return {
    write(s: string) {
      for (const l of s.split('\n')) if (l) out.write(`${formatLine(l, { colour })}\n`);
    },
  };
}
