import type { ComponentReport } from './network.js';

/** `evcharging status`: one row per component. Pure, so the layout is unit-tested. */
export function statusTable(rows: readonly ComponentReport[], now = Date.now()): string {
  const head = ['COMPONENT', 'KIND', 'PID', 'STATE', 'HEALTH', 'RESTARTS', 'FOR'];
  const body = rows.map((r) => [
    r.name, r.kind, r.pid ? String(r.pid) : '-', r.exit && r.state !== 'running' ? `${r.state} (${r.exit})` : r.state,
    r.health, String(r.restarts), duration(now - r.since),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  return [head, ...body].map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
