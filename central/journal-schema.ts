import { z } from 'zod';
import { CpStateSchema, DRIVER_ACTIONS, FaultKindSchema, ProfileSummary, SessionEndReasonSchema, Ticket } from '../protocol/index.js';
import { RULES_EVENT_SCHEMAS } from './rules/event-schemas.js';

/**
 * What a journal line and a snapshot must hold to be replayed: every event of state.ts with
 * every field it needs. A line that does not pass is never applied (a half-applied event could
 * leave a session billed wrong or a CP busy for ever); the store stops the start instead and
 * `evcharging central journal check|repair` says which line and why.
 */
const Num = z.number().finite();
const NonNeg = Num.nonnegative();
const Str = z.string().min(1).max(256);

export const SessionRecordSchema = z.object({
  session_id: Str, cp_id: Str, driver_id: Str, request_id: Str,
  status: z.enum(['ACTIVE', 'COMPLETED', 'INTERRUPTED']),
  started_at: NonNeg, ended_at: NonNeg.nullable(),
  kw: NonNeg, kwh: NonNeg, eur: NonNeg, price_eur_kwh: NonNeg,
  end_reason: SessionEndReasonSchema.nullable(), interrupted: z.boolean(), ticket: Ticket.nullable(),
  confirmed: z.boolean(), ticket_sent: z.boolean(),
  pending_end: z.object({ reason: SessionEndReasonSchema, deadline: NonNeg }).nullable(),
  telemetry_seq: Num,
}).passthrough();

export const CpRecordSchema = z.object({
  cp_id: Str, engine_state: CpStateSchema, status_seq: Num, faults: z.array(z.string().max(64)).max(64),
  engine_session_id: Str.optional(), profile: ProfileSummary.optional(), boot_id: Str.optional(),
  health_host: z.string().max(255).optional(), health_port: z.number().int().min(0).max(65535).optional(),
  admin_stopped: z.boolean(), source: z.enum(['engine', 'file', 'monitor']), last_seen: NonNeg, gw: Str.optional(),
}).passthrough();

export const RequestRecordSchema = z.object({
  request_id: Str, driver_id: Str, action: z.enum(DRIVER_ACTIONS), cp_id: Str.optional(),
  outcome: z.enum(['ACCEPTED', 'REJECTED', 'STOP_SENT']), reason: z.string().max(512).optional(), session_id: Str.optional(), at: NonNeg.optional(),
}).passthrough();

export const CentralEventSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('cp_seen'), cp_id: Str, source: z.enum(['engine', 'file', 'monitor']), profile: ProfileSummary.optional(), at: NonNeg }),
  z.object({ t: z.literal('cp_announced'), cp_id: Str, profile: ProfileSummary, boot_id: Str, health_host: z.string().max(255).optional(), health_port: z.number().int().min(0).max(65535).optional(), gw: Str.optional(), at: NonNeg }),
  z.object({ t: z.literal('cp_status'), cp_id: Str, state: CpStateSchema, faults: z.array(FaultKindSchema.or(z.string().max(64))).max(64), session_id: Str.optional(), seq: Num, gw: Str.optional(), at: NonNeg }),
  z.object({ t: z.literal('cp_admin'), cp_id: Str, stopped: z.boolean() }),
  z.object({ t: z.literal('session_started'), session: SessionRecordSchema }),
  z.object({ t: z.literal('session_confirmed'), session_id: Str }),
  z.object({ t: z.literal('telemetry'), session_id: Str, kw: NonNeg, kwh: NonNeg, eur: NonNeg, seq: Num, soc: z.number().min(0).max(1).optional() }),
  z.object({ t: z.literal('session_pending_end'), session_id: Str, reason: SessionEndReasonSchema, deadline: NonNeg }),
  z.object({ t: z.literal('session_ended'), session_id: Str, ticket: Ticket, estimate: z.boolean().optional() }),
  z.object({ t: z.literal('ticket_sent'), session_id: Str }),
  z.object({ t: z.literal('request_done'), request: RequestRecordSchema }),
  // The events central's rules added (central/rules/event-schemas.ts).
  ...RULES_EVENT_SCHEMAS,
]);

export const JournalLineSchema = z.object({ seq: z.number().int().positive(), e: z.looseObject({ t: z.string() }) });

export const SnapshotSchema = z.object({
  seq: z.number().int().nonnegative(),
  state: z.object({ cps: z.array(CpRecordSchema), sessions: z.array(SessionRecordSchema), requests: z.array(RequestRecordSchema), gateways: z.array(z.looseObject({ gateway_id: Str })).optional() }),
});

/** Why a journal line is not a replayable event, or undefined when it is. */
export function lineProblem(line: string, prevSeq: number): { problem: string } | { seq: number; e: unknown } {
  let raw: unknown;
  try { raw = JSON.parse(line); } catch { return { problem: 'not JSON' }; }
  const l = JournalLineSchema.safeParse(raw);
  if (!l.success) return { problem: `not a journal entry (${issueText(l.error)})` };
  const e = CentralEventSchema.safeParse(l.data.e);
  if (!e.success) {
    // Unknown event types come from a newer central: say so rather than "invalid".
    const known = CentralEventSchema.options.some((o) => o.shape.t.value === l.data.e.t);
    return { problem: known ? `event ${l.data.e.t}: ${issueText(e.error)}` : `unknown event type ${JSON.stringify(String(l.data.e.t).slice(0, 40))}` };
  }
  if (l.data.seq <= prevSeq) return { problem: `seq ${l.data.seq} is not above the previous line's ${prevSeq}` };
  return { seq: l.data.seq, e: raw && (raw as { e: unknown }).e };
}

function issueText(err: z.ZodError): string {
  const i = err.issues[0];
  return i ? `${i.path.join('.') || '(root)'}: ${i.message}` : 'invalid';
}
