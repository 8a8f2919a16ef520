import { INTERRUPTING_END_REASONS, type SessionEndReason, type Ticket } from '../protocol/index.js';

/**
 * Money and energy. kWh keep the meter's resolution (rounded to 1 mWh to drop float noise);
 * € = kWh × the session's price, rounded half-up to the cent. A session is interrupted when
 * it ended for a reason in protocol INTERRUPTING_END_REASONS.
 */
export const roundKwh = (kwh: number) => Math.round(kwh * 1e6) / 1e6;

/** Half-up to the cent; toPrecision first so 0.125 × 100 = 12.499999… still rounds to 13. */
export function roundCents(eur: number): number {
  return Math.round(Number((eur * 100).toPrecision(12))) / 100;
}

export function priceOf(kwh: number, priceEurKwh: number): number {
  return roundCents(roundKwh(kwh) * priceEurKwh);
}

export interface TicketInput {
  session_id: string; cp_id: string; driver_id: string;
  kwh: number; price_eur_kwh: number; started_at: number; ended_at: number; reason: SessionEndReason;
}

export function makeTicket(i: TicketInput): Ticket {
  const kwh = roundKwh(Math.max(0, i.kwh));
  const ended = Math.max(i.ended_at, i.started_at);
  return {
    session_id: i.session_id, cp_id: i.cp_id, driver_id: i.driver_id,
    kwh, eur: priceOf(kwh, i.price_eur_kwh), price_eur_kwh: i.price_eur_kwh,
    started_at: i.started_at, ended_at: ended, duration_s: (ended - i.started_at) / 1000,
    reason: i.reason, interrupted: INTERRUPTING_END_REASONS.has(i.reason),
  };
}
