import type { Logger } from '../lib/log.js';
import { errText } from '../lib/log.js';
import { postJson, type PostResult } from '../lib/http-post.js';
import type { MonitorReportMsg } from '../protocol/index.js';

export type SendOutcome = { ok: true } | { ok: false; unreachable: boolean; reason: string };

export interface CentralReporterOptions {
  centralUrl: string;
  token?: string;
  timeoutMs: number;
  /** Bound to the CP already (cp_id), so lines here do not repeat it. */
  log: Logger;
  cpId: string;
}

export interface ReporterCounters { sent: number; accepted: number; rejected: number; unreachable: number }

/**
 * The edge to central: POSTs MonitorReportMsg to `<central>/monitor/report` over a keep-alive
 * connection. Central being down is logged once ("central not reachable, retrying") and once
 * more when it is back; a report central refuses (4xx/5xx) is counted and logged once per
 * distinct reason.
 */
export function createCentralReporter(o: CentralReporterOptions) {
  const url = `${o.centralUrl.replace(/\/$/, '')}/monitor/report`;
  const counters: ReporterCounters = { sent: 0, accepted: 0, rejected: 0, unreachable: 0 };
  let down = false;
  const refusedReasons = new Set<string>();

  async function send(report: MonitorReportMsg): Promise<SendOutcome> {
    counters.sent++;
    let res: PostResult;
    try {
      res = await postJson(url, report, { headers: o.token ? { authorization: `Bearer ${o.token}` } : {}, timeoutMs: o.timeoutMs });
    } catch (err) {
      counters.unreachable++;
      const reason = errText(err);
      if (!down) { down = true; o.log.warn({ central: o.centralUrl, reason }, 'central not reachable, retrying'); }
      return { ok: false, unreachable: true, reason };
    }
    if (down) { down = false; o.log.info({ central: o.centralUrl }, 'central reachable again'); }
    if (res.status >= 200 && res.status < 300) { counters.accepted++; return { ok: true }; }
    counters.rejected++;
    const reason = `HTTP ${res.status} ${res.body.slice(0, 200)}`.trim();
    if (!refusedReasons.has(reason) && refusedReasons.size < 20) {
      refusedReasons.add(reason);
      o.log.warn({ status: res.status, reason }, 'central refused a report');
    }
    return { ok: false, unreachable: false, reason };
  }

  return { send, counters, get down() { return down; } };
}
export type CentralReporter = ReturnType<typeof createCentralReporter>;
