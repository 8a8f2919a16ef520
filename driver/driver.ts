import { randomBytes } from 'node:crypto';
import type { Bus } from '../bus/types.js';
import { errText, type Logger } from '../lib/log.js';
import { BUS_TOPICS, PROTOCOL_VERSION, type DriverRequestMsg, type DriverUpdateMsg } from '../protocol/index.js';
import {
  initialTracker, invalidLines, onTick, onUpdate, queried, requested, stopSent, summaryLine,
  type Outcome, type Step, type TrackerState,
} from './session-tracker.js';

export interface DriverOptions {
  driverId: string;
  bus: Bus;
  log: Logger;
  /** Where update lines and the summary go (stdout in the CLI). */
  out: (line: string) => void;
  /** Pause between one session's end and the next request. */
  waitMs: number;
  maxChargeMs?: number;
  requestTimeoutMs: number;
  /** How often timeouts and the charge limit are checked. */
  tickMs?: number;
  recentMax?: number;
}

export interface Driver {
  start(): Promise<void>;
  /** Asks central how this driver's last session went and prints the answer. */
  query(): Promise<void>;
  /** Queues a request; resolves when it is finished (sessions run one at a time, `waitMs` apart). */
  submit(cpId: string, vehicleId?: string): { requestId: string; done: Promise<Outcome | 'cancelled'> };
  /** Resolves when every queued request, and a session taken back on start-up, is finished. */
  idle(): Promise<void>;
  /** Sends STOP for the session in progress, if any. */
  stopCurrent(): Promise<boolean>;
  noteInvalidLines(n: number): void;
  recent(): DriverUpdateMsg[];
  state(): TrackerState;
  summary(): string;
  close(): Promise<void>;
}

/** One driver client on the bus: requests in order, its own updates printed one per line. */
export function createDriver(o: DriverOptions): Driver {
  const id = o.driverId;
  let state = initialTracker(id);
  const recent: DriverUpdateMsg[] = [];
  let seq = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let onFinished: ((x: Outcome) => void) | undefined;
  let onQueryAnswered: (() => void) | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let lastEndedAt: number | undefined;
  const cancel = new AbortController();

  const newRequestId = () => `${id}-${Date.now().toString(36)}-${++seq}-${randomBytes(2).toString('hex')}`;

  /** `ts`: the moment the request was made (a REQUEST's `expires_at` is counted from it), now by default. */
  async function send(msg: Omit<DriverRequestMsg, 'v' | 'driver_id' | 'ts'>, ts = Date.now()): Promise<void> {
    const full: DriverRequestMsg = { v: PROTOCOL_VERSION, driver_id: id, ts, ...msg };
    try {
      await o.bus.publish(BUS_TOPICS.driverRequests, id, full);
    } catch (err) {
      // The request timeout reports it to the user; here, one log line for the operator.
      o.log.warn({ driver_id: id, action: msg.action, err: errText(err) }, 'could not publish the request');
    }
  }

  function apply(step: Step) {
    state = step.state;
    if (step.line) o.out(step.line);
    for (const m of step.send ?? []) void send(m);
    if (step.sendStop && state.current) {
      const rid = newRequestId();
      state = stopSent(state, rid, Date.now());
      void send({ request_id: rid, action: 'STOP', cp_id: state.current!.cpId });
    }
    if (step.adopted && !onFinished) {
      // A session taken back on start-up: requests queued after it wait until it ends.
      const ended = new Promise<Outcome>((r) => { onFinished = r; });
      chain = chain.then(() => untilAborted(ended, cancel.signal, 'cancelled')).catch(() => undefined);
    }
    if (step.queryAnswer || (!state.query && onQueryAnswered)) { const f = onQueryAnswered; onQueryAnswered = undefined; f?.(); }
    if (step.finished) { lastEndedAt = Date.now(); const f = onFinished; onFinished = undefined; f?.(step.finished); }
  }

  o.bus.subscribe(BUS_TOPICS.driverUpdates, (msg) => {
    if (msg.driver_id !== id || closed) return;
    recent.push(msg);
    if (recent.length > (o.recentMax ?? 100)) recent.shift();
    apply(onUpdate(state, msg, Date.now()));
  }, { group: id, key: id, perInstance: true }); // on Kafka a restarted driver must not wait for its killed predecessor's session to expire

  const limits = { requestTimeoutMs: o.requestTimeoutMs, maxChargeMs: o.maxChargeMs };

  async function runOne(requestId: string, cpId: string, vehicleId?: string): Promise<Outcome | 'cancelled'> {
    if (closed) return 'cancelled';
    if (lastEndedAt !== undefined) {
      const rest = o.waitMs - (Date.now() - lastEndedAt);
      if (rest > 0) {
        let t: NodeJS.Timeout | undefined;
        await untilAborted(new Promise<void>((r) => { t = setTimeout(r, rest); }), cancel.signal, undefined);
        clearTimeout(t);
      }
    }
    if (closed) return 'cancelled';
    const finished = new Promise<Outcome>((resolve) => { onFinished = resolve; });
    const now = Date.now();
    const expiresAt = now + o.requestTimeoutMs;
    state = requested(state, requestId, cpId, now, expiresAt);
    o.log.debug({ driver_id: id, cp_id: cpId, request_id: requestId }, 'request sent');
    // Not awaited: a publish held up by a bus outage must not hold up the request timeout.
    // expires_at: when we stop waiting; central never starts a supply for this request after it.
    void send({ request_id: requestId, action: 'REQUEST', cp_id: cpId, expires_at: expiresAt, ...(vehicleId ? { vehicle_id: vehicleId } : {}) }, now);
    return untilAborted(finished, cancel.signal, 'cancelled');
  }

  return {
    async start() {
      await o.bus.start();
      // Kafka resolves start() before the consumer has joined its group; a new group starts at the
      // latest offset, so an answer published before the join would be lost. Wait for it (bounded).
      const began = Date.now();
      let said = false;
      while (o.bus.health().consumer !== 'connected' && !closed) {
        if (!said && Date.now() - began > 3_000) { said = true; o.log.info({ driver_id: id }, 'waiting for the updates consumer to join its group (up to 30 s)'); }
        if (Date.now() - began > 30_000) { const problem = o.bus.health().problem; o.log.warn({ driver_id: id }, `updates consumer has not joined after 30 s (${problem ?? 'does driver.updates exist yet?'}), going on`); break; }
        await new Promise((r) => setTimeout(r, 100));
      }
      timer = setInterval(() => apply(onTick(state, Date.now(), limits)), o.tickMs ?? 200);
    },
    async query() {
      const rid = newRequestId();
      const answered = new Promise<void>((r) => { onQueryAnswered = r; });
      state = queried(state, rid, Date.now());
      void send({ request_id: rid, action: 'QUERY' });
      await untilAborted(answered, cancel.signal, undefined);
    },
    submit(cpId, vehicleId) {
      const requestId = newRequestId();
      const done = chain.then(() => runOne(requestId, cpId, vehicleId));
      chain = done.catch(() => undefined);
      return { requestId, done };
    },
    async idle() { await chain; },
    async stopCurrent() {
      const c = state.current;
      if (!c || c.phase !== 'charging') return false;
      const rid = newRequestId();
      state = stopSent(state, rid, Date.now());
      o.out(`${id} ${c.cpId} STOP requested`);
      void send({ request_id: rid, action: 'STOP', cp_id: c.cpId });
      return true;
    },
    noteInvalidLines(n) { state = invalidLines(state, n); },
    recent: () => [...recent],
    state: () => state,
    summary: () => summaryLine(state),
    async close() {
      if (closed) return;
      // Leaving (SIGTERM, quit) must not leave a supply nobody follows: STOP the session and wait
      // (bounded) for its end and ticket. A crash (SIGKILL) cannot do this; the restart takes the session back.
      // A request still unanswered may yet start a supply: wait for its answer (bounded), and withdraw it if none comes.
      const leaveBy = Date.now() + o.requestTimeoutMs;
      while (state.current?.phase === 'waiting' && !state.current.cancelled && Date.now() < leaveBy) await new Promise((r) => setTimeout(r, 50));
      const w = state.current;
      if (w?.phase === 'waiting') {
        o.out(`${id} ${w.cpId} CANCEL (driver leaving)`);
        // Bounded: a paused broker must not hold the exit up.
        await Promise.race([send({ request_id: `${w.requestId}-cancel`, action: 'CANCEL', cancels: w.requestId, cp_id: w.cpId }), new Promise((r) => setTimeout(r, 2_000).unref())]);
      }
      const c = state.current;
      if (c && c.phase !== 'waiting' && c.sessionId) {
        const ended = new Promise<void>((r) => { const prev = onFinished; onFinished = (x) => { prev?.(x); r(); }; });
        if (c.phase === 'charging') {
          const rid = newRequestId();
          state = stopSent(state, rid, Date.now());
          o.out(`${id} ${c.cpId} STOP (driver leaving)`);
          void send({ request_id: rid, action: 'STOP', cp_id: c.cpId });
        }
        let t: NodeJS.Timeout | undefined;
        await Promise.race([ended, new Promise<void>((r) => { t = setTimeout(r, 2 * o.requestTimeoutMs); })]);
        clearTimeout(t);
      }
      closed = true;
      cancel.abort();
      if (timer) clearInterval(timer);
      await o.bus.close();
    },
  };
}

/**
 * `p`, or `value` once `signal` aborts; the abort listener is removed when `p` settles, so a
 * long-lived signal does not collect one listener per request (MaxListenersExceededWarning).
 */
export function untilAborted<T, U>(p: Promise<T>, signal: AbortSignal, value: U): Promise<T | U> {
  if (signal.aborted) return Promise.resolve(value);
  return new Promise<T | U>((resolve, reject) => {
    const onAbort = () => resolve(value);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); }, (err: unknown) => { signal.removeEventListener('abort', onAbort); reject(err); });
  });
}
