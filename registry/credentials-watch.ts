import fs from 'node:fs';
import path from 'node:path';
import { loadCredentials, type CredentialEntry } from './credentials.js';

/**
 * Follows a credentials file as the registry rewrites it (atomically: temp file + rename), so
 * the gateway and central see a new or revoked identity within moments without a restart.
 * The directory is watched (a rename replaces the inode a file watch would follow) with a slow
 * poll behind it for file systems without inotify. A file that does not parse keeps the last
 * good set (reported once through `onError`). `onChange` hears the ids whose access ended:
 * revoked, removed or re-keyed (new secret), so their live connections can be closed.
 */
export interface CredentialsWatch {
  current(): Map<string, CredentialEntry>;
  get(id: string): CredentialEntry | undefined;
  /** Re-reads the file now (also what the watchers call). */
  reload(): void;
  close(): void;
}

export function watchCredentials(file: string, o: {
  onChange?: (ended: string[], now: Map<string, CredentialEntry>) => void;
  onError?: (err: Error) => void;
  pollMs?: number;
  initial?: Map<string, CredentialEntry>;
} = {}): CredentialsWatch {
  let map = o.initial ?? loadCredentials(file);
  let lastError = '';
  const reload = () => {
    let next: Map<string, CredentialEntry>;
    try { next = loadCredentials(file); } catch (err) {
      const msg = (err as Error).message;
      if (msg !== lastError) { lastError = msg; o.onError?.(err as Error); }
      return;
    }
    lastError = '';
    const ended: string[] = [];
    for (const [id, before] of map) {
      const after = next.get(id);
      if (before.revoked_at !== undefined) continue;
      if (!after || after.revoked_at !== undefined || after.hash !== before.hash || after.role !== before.role) ended.push(id);
    }
    map = next;
    if (ended.length || o.onChange) o.onChange?.(ended, next);
  };
  let timer: NodeJS.Timeout | undefined;
  const soon = () => { clearTimeout(timer); timer = setTimeout(reload, 20); };
  let dirWatch: fs.FSWatcher | undefined;
  try {
    const base = path.basename(file);
    dirWatch = fs.watch(path.dirname(path.resolve(file)), (_ev, name) => { if (!name || name.toString() === base) soon(); });
    dirWatch.on('error', () => undefined);
  } catch { /* no inotify here: the poll below does it */ }
  const poll = setInterval(reload, o.pollMs ?? 2_000);
  poll.unref();
  return {
    current: () => map,
    get: (id) => map.get(id),
    reload,
    close() { clearInterval(poll); clearTimeout(timer); dirWatch?.close(); },
  };
}

/**
 * The gateway's hook: keeps `map` (the one its authentication reads) equal to the file, in
 * place, and closes every live connection whose identity's access ended. `clients` lists the
 * broker's live clients and `identityOf` says whose each one is.
 */
export function followCredentials<C extends { close(): void }>(file: string, map: Map<string, CredentialEntry>, o: {
  clients: () => Iterable<C>;
  identityOf: (c: C) => string | undefined;
  onKick?: (id: string, c: C) => void;
  onError?: (err: Error) => void;
  pollMs?: number;
}): CredentialsWatch {
  return watchCredentials(file, {
    initial: new Map(map), pollMs: o.pollMs ?? 1_000, onError: o.onError,
    onChange: (ended, next) => {
      map.clear();
      for (const [k, v] of next) map.set(k, v);
      if (!ended.length) return;
      const gone = new Set(ended);
      for (const c of [...o.clients()]) {
        const id = o.identityOf(c);
        if (id !== undefined && gone.has(id)) { o.onKick?.(id, c); c.close(); }
      }
    },
  });
}
