import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * The control port's token. `evcharging up` makes a fresh one per run and writes it to a file
 * only its user can read (a 0700 directory under the temp dir, one file per control port), so
 * `evcharging status|add-cp|crash …` run by the same user find it, and nothing secret ever
 * appears on a command line. EVCHARGING_CONTROL_TOKEN (the token) or
 * EVCHARGING_CONTROL_TOKEN_FILE (another file) override it.
 */
export function controlTokenFile(port: number, env: NodeJS.ProcessEnv = process.env): string {
  if (env.EVCHARGING_CONTROL_TOKEN_FILE) return env.EVCHARGING_CONTROL_TOKEN_FILE;
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return path.join(os.tmpdir(), `evcharging-${uid}`, `control-${port}.token`);
}

export function newControlToken(): string { return crypto.randomBytes(24).toString('base64url'); }

/** Writes the token readable by this user only; returns the file. */
export function writeControlToken(port: number, token: string): string {
  const file = controlTokenFile(port);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const st = fs.statSync(path.dirname(file));
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`${path.dirname(file)} belongs to another user; set EVCHARGING_CONTROL_TOKEN_FILE`);
  fs.chmodSync(path.dirname(file), 0o700);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
  return file;
}

/** The token a control client sends: the env var, else the file for that port; undefined when neither exists. */
export function readControlToken(port: number, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.EVCHARGING_CONTROL_TOKEN) return env.EVCHARGING_CONTROL_TOKEN;
  try { return fs.readFileSync(controlTokenFile(port, env), 'utf8').trim() || undefined; } catch { return undefined; }
}
