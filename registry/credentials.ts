import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { ID_PATTERN, ROLES, firstIssue, type Role } from '../protocol/index.js';

/**
 * The credentials file, the one store of identities the registry writes and the gateway and
 * central read: `{ "clients": [{ "id", "role", "salt", "hash", "revoked_at"? }] }`;
 * hash = scrypt(secret, salt), hex. Role `service` (older files) is read as `central`.
 * A revoked entry stays (so its id is not silently reissued) and admits nobody.
 */
const Entry = z.object({
  id: z.string().regex(ID_PATTERN),
  role: z.preprocess((r) => (r === 'service' ? 'central' : r), z.enum(ROLES)),
  salt: z.string().min(8),
  hash: z.string().min(32),
  revoked_at: z.number().int().nonnegative().optional(),
  /** For a monitor: the CP it may report for (default: the id's part after `monitor-`). */
  cp_id: z.string().regex(ID_PATTERN).optional(),
  /** When the registry issued it (epoch ms). */
  created_at: z.number().int().nonnegative().optional(),
});
const FileSchema = z.object({ clients: z.array(Entry) });
export type CredentialEntry = z.infer<typeof Entry>;
export type { Role };

export function hashSecret(id: string, role: Role, secret: string): CredentialEntry {
  const salt = crypto.randomBytes(16).toString('hex');
  return { id, role, salt, hash: crypto.scryptSync(secret, salt, 32).toString('hex') };
}

export function verifySecret(entry: CredentialEntry, secret: string): boolean {
  const got = crypto.scryptSync(secret, entry.salt, 32);
  const want = Buffer.from(entry.hash, 'hex');
  return want.length === got.length && crypto.timingSafeEqual(got, want);
}

/** The same check off the event loop (libuv thread pool): scrypt costs tens of ms, and a reconnect storm of 1,000 CPs must not stall the broker. */
export function verifySecretAsync(entry: CredentialEntry, secret: string): Promise<boolean> {
  return new Promise((resolve) => {
    crypto.scrypt(secret, entry.salt, 32, (err, got) => {
      const want = Buffer.from(entry.hash, 'hex');
      resolve(!err && want.length === got.length && crypto.timingSafeEqual(got, want));
    });
  });
}

/**
 * Remembers secrets that passed scrypt, as a SHA-256 digest in memory only, so a CP that
 * reconnects costs a hash, not another scrypt. A changed entry (new salt/hash) is not matched.
 */
export class VerifiedSecrets {
  private readonly ok = new Map<string, Buffer>();
  private digest(entry: CredentialEntry, secret: string): Buffer {
    return crypto.createHash('sha256').update(entry.hash).update('\0').update(secret).digest();
  }
  has(entry: CredentialEntry, secret: string): boolean {
    const d = this.ok.get(entry.id);
    return !!d && crypto.timingSafeEqual(d, this.digest(entry, secret));
  }
  add(entry: CredentialEntry, secret: string): void { this.ok.set(entry.id, this.digest(entry, secret)); }
}

/** Loads and checks the file; throws an Error with one clear line on any problem. */
export function loadCredentials(file: string): Map<string, CredentialEntry> {
  let raw: unknown;
  try { raw = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (err) { throw new Error(`cannot read credentials file ${file}: ${(err as Error).message}`); }
  const r = FileSchema.safeParse(raw);
  if (!r.success) throw new Error(`credentials file ${file} is invalid: ${firstIssue(r.error)}`);
  return new Map(r.data.clients.map((c) => [c.id, c]));
}

/** Adds or replaces one entry in a credentials file (created if missing). */
export function upsertCredential(file: string, entry: CredentialEntry): void {
  const clients = fs.existsSync(file) ? [...loadCredentials(file).values()].filter((c) => c.id !== entry.id) : [];
  clients.push(entry);
  writeCredentials(file, clients);
}

/** Rewrites the whole file atomically (temp file, fsync, rename): a reader sees the old set or the new one, never half. */
export function writeCredentials(file: string, clients: CredentialEntry[]): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify({ clients }, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
}
