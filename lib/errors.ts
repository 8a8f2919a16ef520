/**
 * The one catalogue of expected failures: each code has the exit status a command ends with
 * and the words its one-line message starts with. Everything expected is an AppError; the
 * program runner prints `<program>: <label>: <message>` and exits with the code's status, so
 * no command maps errors by hand. Anything else is a bug and keeps its stack trace.
 */
export const ERROR_CODES = {
  config: { exit: 2, label: 'bad configuration' },
  listen: { exit: 2, label: 'cannot listen' },
  data: { exit: 2, label: 'bad data' },
  unavailable: { exit: 2, label: 'unavailable' },
  not_found: { exit: 2, label: 'not found' },
  conflict: { exit: 1, label: 'conflict' },
  start: { exit: 1, label: 'start failed' },
  control: { exit: 1, label: 'control' },
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly exitCode: number = ERROR_CODES[code].exit) {
    super(message);
    this.name = new.target.name;
  }
  get label(): string { return ERROR_CODES[this.code].label; }
}

/** Bad option, environment variable or configuration file. */
export class ConfigError extends AppError { constructor(message: string) { super('config', message); } }
/** A port that is taken, not ours to bind, or an address that is not here. */
export class ListenError extends AppError { constructor(message: string) { super('listen', message); } }
/** Data on disk that cannot be used as it is (a journal, a lock, a file's contents). */
export class StoreError extends AppError { constructor(message: string) { super('data', message); } }
/** A hardware profile that does not pass its schema. */
export class ProfileError extends AppError { constructor(message: string) { super('config', message); } }
/** A CP file (central's --cp-file) that cannot be read. */
export class CpFileError extends AppError { constructor(message: string) { super('config', message); } }
/** Hardware (a HAL driver) this machine cannot provide. */
export class HalUnavailableError extends AppError { constructor(message: string) { super('unavailable', message); } }
/** A component name the running network does not know. */
export class UnknownComponentError extends AppError {
  constructor(name: string, known: string[]) { super('not_found', `no component named ${JSON.stringify(name)} (known: ${known.join(', ')})`); }
}
/** Something that exists already (a CP or driver added twice). */
export class ConflictError extends AppError { constructor(message: string) { super('conflict', message); } }
/** A component of the network that did not come up. */
export class StartError extends AppError { constructor(message: string) { super('start', message); } }
/** The control port of a running network refused or could not be reached. */
export class ControlError extends AppError { constructor(message: string, exitCode = 1) { super('control', message, exitCode); } }

const LISTEN_CODES: Record<string, string> = { EADDRINUSE: 'already in use', EACCES: 'permission denied', EADDRNOTAVAIL: 'no such address here', ENOTFOUND: 'no such host' };

/** A listen() failure as a ListenError naming the address, or undefined when it is not one. */
export function listenErrorOf(err: unknown, what?: string): ListenError | undefined {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  const why = e && typeof e.code === 'string' ? LISTEN_CODES[e.code] : undefined;
  if (!why || (e.syscall !== undefined && e.syscall !== 'listen' && e.syscall !== 'bind' && e.syscall !== 'getaddrinfo')) return undefined;
  const where = what ?? (e.port !== undefined ? `${e.address ?? ''}:${e.port}` : e.address ?? 'address');
  return new ListenError(`${where}: ${why}`);
}
