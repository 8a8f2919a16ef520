import { SessionEndMsg, Ticket, type DriverUpdateMsg } from '../../protocol/index.js';
import type { BusRecord } from './bus-recorder.js';

/**
 * Pure checks over recorded bus traffic: which tickets drivers received, and whether each
 * one bills what the charging point metered (its session_end) at its profile's price.
 */

export type Update = DriverUpdateMsg & { ticket?: Ticket };

/** Every driver update as recorded, validated loosely (a record that is not an update is left out). */
export function driverUpdates(records: readonly BusRecord[]): Update[] {
  return records.filter((r) => r.topic === 'driver.updates').map((r) => r.value as unknown as Update);
}

/** Final updates (COMPLETED / INTERRUPTED) with the ticket each carries. */
export function finalUpdates(records: readonly BusRecord[]): Array<Update & { ticket: Ticket }> {
  return driverUpdates(records).filter((u): u is Update & { ticket: Ticket } => (u.status === 'COMPLETED' || u.status === 'INTERRUPTED') && !!u.ticket);
}

/** The CPs' metered records (`session_end` on cp.status), by session id. */
export function sessionEnds(records: readonly BusRecord[]): Map<string, SessionEndMsg> {
  const out = new Map<string, SessionEndMsg>();
  for (const r of records) {
    if (r.topic !== 'cp.status' || r.value.type !== 'session_end') continue;
    const m = SessionEndMsg.safeParse(r.value);
    if (m.success) out.set(m.data.session_id, m.data);
  }
  return out;
}

/** Distinct tickets per session id (a repeated delivery of the same ticket counts once). */
export function distinctTickets(updates: ReadonlyArray<{ ticket?: Ticket }>): Map<string, Ticket[]> {
  const out = new Map<string, Map<string, Ticket>>();
  for (const u of updates) {
    if (!u.ticket) continue;
    const key = JSON.stringify({ kwh: u.ticket.kwh, eur: u.ticket.eur, ended_at: u.ticket.ended_at, reason: u.ticket.reason });
    const m = out.get(u.ticket.session_id) ?? new Map<string, Ticket>();
    m.set(key, u.ticket);
    out.set(u.ticket.session_id, m);
  }
  return new Map([...out].map(([id, m]) => [id, [...m.values()]]));
}

const near = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol;

/**
 * What is wrong with a ticket, measured against the CP's session_end and the profile price;
 * an empty list when it bills exactly what was metered (kWh to 1 Wh, € to the cent).
 */
export function ticketProblems(ticket: Ticket, end: SessionEndMsg | undefined, price: number): string[] {
  const p: string[] = [];
  const schema = Ticket.safeParse(ticket);
  if (!schema.success) p.push(`not a protocol Ticket: ${schema.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (!end) return [...p, `no session_end from ${ticket.cp_id} for ${ticket.session_id}`];
  if (end.cp_id !== ticket.cp_id) p.push(`cp ${ticket.cp_id} != metered at ${end.cp_id}`);
  if (!near(ticket.kwh, end.kwh, 0.001)) p.push(`kWh ${ticket.kwh} != metered ${end.kwh}`);
  if (!near(ticket.eur, end.eur, 0.01)) p.push(`EUR ${ticket.eur} != metered ${end.eur}`);
  if (!near(ticket.price_eur_kwh, price, 1e-9)) p.push(`price ${ticket.price_eur_kwh} != profile ${price}`);
  if (!near(ticket.eur, ticket.kwh * price, 0.01)) p.push(`EUR ${ticket.eur} != ${ticket.kwh} kWh x ${price}`);
  return p;
}
