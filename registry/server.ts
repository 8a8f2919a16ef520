import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ID_PATTERN, ROLES } from '../protocol/index.js';
import type { Logger } from '../lib/log.js';
import type { AuditLog } from '../lib/audit.js';
import { applyHttpLimits, DEFAULT_HTTP_LIMITS, fastifyLimitOptions, type HttpLimits } from '../lib/http-limits.js';
import { hashSecret, loadCredentials, writeCredentials, type CredentialEntry, type Role } from './credentials.js';

/**
 * The registry (the course's EV_Registry): issues and revokes credentials over HTTPS, admin
 * token required on every route.
 *
 *   POST   /registry/clients            {"id","role","cp_id"?} → 201 {id, role, secret, token?} — the secret is shown once
 *   GET    /registry/clients            every identity, without secrets or hashes
 *   GET    /registry/clients/:id
 *   POST   /registry/clients/:id/revoke → the entry is kept, revoked (its id is never silently reissued)
 *
 * It writes the credentials file the gateway and central read (scrypt-hashed, atomically);
 * they watch it, so a revoked identity is disconnected at once. `onRevoke` lets central put a
 * revoked CP out of service. Every action, refused or not, is in the audit log.
 */
export interface RegistryOptions {
  credentialsFile: string;
  adminToken: string;
  audit?: AuditLog;
  log: Logger;
  tls: { cert: string; key: string };
  limits?: HttpLimits;
  onRevoke?: (entry: CredentialEntry) => void | Promise<void>;
  onRegister?: (entry: CredentialEntry) => void | Promise<void>;
}

const Register = z.object({
  id: z.string().regex(ID_PATTERN, 'id: letters, digits, dot, dash or underscore, at most 64'),
  role: z.enum(ROLES.filter((r) => r !== 'admin') as [Role, ...Role[]]),
  cp_id: z.string().regex(ID_PATTERN).optional(),
}).strict();

const digest = (s: string) => createHash('sha256').update(s).digest();

export function publicView(e: CredentialEntry) {
  return { id: e.id, role: e.role, ...(e.cp_id ? { cp_id: e.cp_id } : {}), ...(e.created_at ? { created_at: e.created_at } : {}), revoked: e.revoked_at !== undefined, ...(e.revoked_at ? { revoked_at: e.revoked_at } : {}) };
}

export function buildRegistry(o: RegistryOptions): FastifyInstance {
  const limits = o.limits ?? DEFAULT_HTTP_LIMITS;
  const app = Fastify({
    logger: false, bodyLimit: 16 * 1024, ...fastifyLimitOptions(limits),
    https: { cert: fs.readFileSync(o.tls.cert), key: fs.readFileSync(o.tls.key) },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  applyHttpLimits(app.server as never, limits);
  app.removeContentTypeParser('text/plain');
  const tokenDigest = digest(o.adminToken);
  const audit = (req: FastifyRequest, action: string, outcome: 'ok' | 'refused', params: Record<string, unknown>) => {
    try { o.audit?.record({ identity: outcome === 'refused' && action === 'registry.auth' ? 'anonymous' : 'admin', source: req.ip, action, outcome, params }); } catch (err) { o.log.error({ err: (err as Error).message }, 'audit write failed'); }
  };
  const fail = (reply: FastifyReply, status: number, error: string) => reply.code(status).send({ error });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) o.log.error({ err: err.message }, 'registry request failed');
    return fail(reply, status, status === 500 ? 'internal error' : err.message);
  });
  app.setNotFoundHandler((req, reply) => fail(reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`));
  app.addHook('onRequest', async (req, reply) => {
    const m = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m || !timingSafeEqual(digest(m[1]!), tokenDigest)) {
      audit(req, 'registry.auth', 'refused', { method: req.method, route: req.url.split('?')[0]!.slice(0, 200) });
      return fail(reply.header('www-authenticate', 'Bearer'), 401, m ? 'wrong admin token' : 'admin token required (Authorization: Bearer <token>)');
    }
  });

  const read = () => (fs.existsSync(o.credentialsFile) ? loadCredentials(o.credentialsFile) : new Map<string, CredentialEntry>());
  // One writer at a time inside this process (read-modify-write of the file).
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => { const p = chain.then(fn); chain = p.catch(() => undefined); return p; };

  app.post('/registry/clients', async (req, reply) => {
    const r = Register.safeParse(req.body);
    if (!r.success) {
      const i = r.error.issues[0];
      audit(req, 'registry.register', 'refused', { reason: 'invalid body' });
      return fail(reply, 400, `${i?.path.join('.') || 'body'}: ${i?.message ?? 'invalid'}`);
    }
    const { id, role, cp_id } = r.data;
    if (role !== 'monitor' && cp_id) return fail(reply, 400, 'cp_id is for monitors only');
    return serial(async () => {
      const all = read();
      const had = all.get(id);
      if (had) {
        audit(req, 'registry.register', 'refused', { id, role, reason: had.revoked_at !== undefined ? 'revoked id' : 'exists' });
        return fail(reply, 409, had.revoked_at !== undefined ? `${id} was revoked; ids are not reissued (pick another)` : `${id} exists already`);
      }
      const secret = randomBytes(24).toString('base64url');
      const entry: CredentialEntry = { ...hashSecret(id, role, secret), ...(cp_id ? { cp_id } : {}), created_at: Date.now() };
      writeCredentials(o.credentialsFile, [...all.values(), entry]);
      audit(req, 'registry.register', 'ok', { id, role, ...(cp_id ? { cp_id } : {}) });
      o.log.info({ id, role }, 'registry: identity registered');
      await o.onRegister?.(entry);
      return reply.code(201).send({ ...publicView(entry), secret, ...(role === 'monitor' ? { token: `${id}:${secret}` } : {}), note: 'the secret is shown this once; only its scrypt hash is stored' });
    });
  });

  app.get('/registry/clients', async () => ({ clients: [...read().values()].map(publicView) }));
  app.get<{ Params: { id: string } }>('/registry/clients/:id', async (req, reply) => {
    const e = read().get(req.params.id);
    return e ? publicView(e) : fail(reply, 404, `unknown identity ${req.params.id.slice(0, 64)}`);
  });

  app.post<{ Params: { id: string } }>('/registry/clients/:id/revoke', async (req, reply) => serial(async () => {
    const all = read();
    const id = req.params.id;
    const e = all.get(id);
    if (!e) { audit(req, 'registry.revoke', 'refused', { id: id.slice(0, 64), reason: 'unknown' }); return fail(reply, 404, `unknown identity ${id.slice(0, 64)}`); }
    if (e.revoked_at !== undefined) return { ...publicView(e), already: true };
    const revoked: CredentialEntry = { ...e, revoked_at: Date.now() };
    all.set(id, revoked);
    writeCredentials(o.credentialsFile, [...all.values()]);
    audit(req, 'registry.revoke', 'ok', { id, role: e.role });
    o.log.warn({ id, role: e.role }, 'registry: identity revoked');
    await o.onRevoke?.(revoked);
    return publicView(revoked);
  }));

  return app;
}
