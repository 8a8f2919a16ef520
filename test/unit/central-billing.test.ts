import { describe, expect, it } from 'vitest';
import { makeTicket, priceOf, roundCents, roundKwh } from '../../central/billing.js';
import { INTERRUPTING_END_REASONS, SESSION_END_REASONS, Ticket } from '../../protocol/index.js';

const base = { session_id: 'S-1', cp_id: 'CP-001', driver_id: 'driver-a', started_at: 1_000_000, ended_at: 1_090_500 };

describe('central billing', () => {
  it('bills kWh × price, rounded half-up to the cent', () => {
    expect(priceOf(10, 0.35)).toBe(3.5);
    expect(priceOf(16.695833, 0.49)).toBe(8.18); // 8.18095…
    expect(priceOf(1, 0.125)).toBe(0.13); // exactly half a cent rounds up
    expect(priceOf(0.5, 0.25)).toBe(0.13); // 0.125
    expect(priceOf(1.005, 1)).toBe(1.01); // 100.49999… in binary, still half-up
    expect(priceOf(0, 0.5)).toBe(0);
  });
  it('rounds cents and kWh without float noise', () => {
    expect(roundCents(0.1 + 0.2)).toBe(0.3);
    expect(roundCents(2.675)).toBe(2.68);
    expect(roundKwh(0.1 + 0.2)).toBe(0.3);
    expect(roundKwh(12.3456789)).toBe(12.345679);
  });
  it('makes a protocol Ticket with duration and price', () => {
    const t = makeTicket({ ...base, kwh: 12.5, price_eur_kwh: 0.42, reason: 'full' });
    expect(Ticket.safeParse(t).success).toBe(true);
    expect(t).toMatchObject({ kwh: 12.5, eur: 5.25, price_eur_kwh: 0.42, duration_s: 90.5, reason: 'full', interrupted: false });
  });
  it('marks exactly the interrupting end reasons as interrupted', () => {
    for (const reason of SESSION_END_REASONS) {
      expect(makeTicket({ ...base, kwh: 1, price_eur_kwh: 0.3, reason }).interrupted, reason).toBe(INTERRUPTING_END_REASONS.has(reason));
    }
    expect(makeTicket({ ...base, kwh: 1, price_eur_kwh: 0.3, reason: 'fault' }).interrupted).toBe(true);
    expect(makeTicket({ ...base, kwh: 1, price_eur_kwh: 0.3, reason: 'driver_stop' }).interrupted).toBe(false);
  });
  it('never bills negative energy nor a negative duration', () => {
    const t = makeTicket({ ...base, kwh: -1, price_eur_kwh: 0.3, ended_at: base.started_at - 10, reason: 'disconnected' });
    expect(t.kwh).toBe(0);
    expect(t.eur).toBe(0);
    expect(t.duration_s).toBe(0);
    expect(Ticket.safeParse(t).success).toBe(true);
  });
});
