import { VerifiedSecrets, verifySecretAsync, type CredentialEntry } from '../registry/credentials.js';

/**
 * Who may POST /monitor/report. A monitor sends `Authorization: Bearer <monitor id>:<secret>`
 * (its credentials from the registry, role `monitor`); it may report only for the CP its entry
 * names (`cp_id`, or the id `monitor-<CP id>` when the entry names none). The credentials are
 * read through `lookup`, so a revoked or re-issued entry counts at once.
 */
export type MonitorAuthResult =
  | { ok: true; monitorId: string; cpId: string }
  | { ok: false; status: 401 | 403; reason: string; identity?: string };

export function monitorScope(entry: CredentialEntry): string | undefined {
  if (entry.cp_id) return entry.cp_id;
  return entry.id.startsWith('monitor-') ? entry.id.slice('monitor-'.length) : undefined;
}

export function createMonitorAuth(lookup: (id: string) => CredentialEntry | undefined) {
  const verified = new VerifiedSecrets();
  return async function check(authorization: string | undefined, cpId: string): Promise<MonitorAuthResult> {
    const m = /^Bearer ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}):(\S{1,256})$/i.exec(authorization ?? '');
    if (!m) return { ok: false, status: 401, reason: 'monitor credentials required (Authorization: Bearer <monitor id>:<secret>)' };
    const [, id, secret] = m as unknown as [string, string, string];
    const entry = lookup(id);
    // One answer for unknown id, wrong secret, wrong role and revoked: nothing to probe with.
    const wrong: MonitorAuthResult = { ok: false, status: 401, reason: 'wrong monitor credentials', identity: id };
    if (!entry || entry.role !== 'monitor' || entry.revoked_at !== undefined) return wrong;
    if (!verified.has(entry, secret)) {
      if (!(await verifySecretAsync(entry, secret))) return wrong;
      verified.add(entry, secret);
    }
    const scope = monitorScope(entry);
    if (scope !== cpId) return { ok: false, status: 403, reason: `monitor ${id} may report only for ${scope ?? 'no CP'}, not ${cpId}`, identity: id };
    return { ok: true, monitorId: id, cpId };
  };
}
export type MonitorAuth = ReturnType<typeof createMonitorAuth>;
