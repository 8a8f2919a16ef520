import { z } from 'zod';
import { ID_PATTERN, Ticket } from '../../protocol/index.js';

/**
 * Journal validation for the events the rules added to state.ts (a validator of journal lines
 * puts these beside the others): a lifted hold, a gateway seen beating, an estimate superseded by
 * the CP's own record, and pruning. Besides
 * these, `cp_announced` and `cp_status` may carry `gw` (a gateway id) and a request record `at`.
 */
const Str = z.string().min(1).max(256);
const Ids = z.array(Str).max(1000);

export const RULES_EVENT_SCHEMAS = [
  z.object({ t: z.literal('session_resumed'), session_id: Str }),
  z.object({
    t: z.literal('gateway_seen'),
    gateway: z.object({ gateway_id: z.string().regex(ID_PATTERN), boot_id: Str, interval_ms: z.number().int().min(100).max(60_000), first_at: z.number().finite().nonnegative() }),
  }),
  z.object({ t: z.literal('session_rebilled'), session_id: Str, ticket: Ticket }),
  z.object({ t: z.literal('pruned'), request_ids: Ids, session_ids: Ids }),
] as const;
