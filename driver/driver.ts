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

  async function send(msg: Omit<DriverRequestMsg, 'v' | 'driver_id' | 'ts'>): Promise<void> {
    const full: DriverRequestMsg = { v: PROTOCOL_VERSION, driver_id: id, ts: Date.now(), ...msg };
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
    if (step.sendStop && state.current) {
      const rid = newRequestId();
      state = stopSent(state, rid);
      void send({ request_id: rid, action: 'STOP', cp_id: state.current!.cpId });
    }
    if (step.queryAnswer || (!state.query && onQueryAnswered)) { const f = onQueryAnswered; onQueryAnswered = undefined; f?.(); }
    if (step.finished) { lastEndedAt = Date.now(); const f = onFinished; onFinished = undefined; f?.(step.finished); }
  }

  o.bus.subscribe(BUS_TOPICS.driverUpdates, (msg) => {
    if (msg.driver_id !== id || closed) return;
    recent.push(msg);
    if (recent.length > (o.recentMax ?? 100)) recent.shift();
    apply(onUpdate(state, msg, Date.now()));
  }, { group: id, key: id });

  const limits = { requestTimeoutMs: o.requestTimeoutMs, maxChargeMs: o.maxChargeMs };

  async function runOne(requestId: string, cpId: string, vehicleId?: string): Promise<Outcome | 'cancelled'> {
    if (closed) return 'cancelled';
    if (lastEndedAt !== undefined) {
      const rest = o.waitMs - (Date.now() - lastEndedAt);
      if (rest > 0) await new Promise<void>((r) => {
        const t = setTimeout(r, rest);
        cancel.signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
      });
    }
    if (closed) return 'cancelled';
    const finished = new Promise<Outcome>((resolve) => { onFinished = resolve; });
    state = requested(state, requestId, cpId, Date.now());
    o.log.debug({ driver_id: id, cp_id: cpId, request_id: requestId }, 'request sent');
    // Not awaited: a publish held up by a bus outage must not hold up the request timeout.
    void send({ request_id: requestId, action: 'REQUEST', cp_id: cpId, ...(vehicleId ? { vehicle_id: vehicleId } : {}) });
    return Promise.race([finished, new Promise<'cancelled'>((r) => cancel.signal.addEventListener('abort', () => r('cancelled'), { once: true }))]);
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
      await Promise.race([answered, new Promise<void>((r) => cancel.signal.addEventListener('abort', () => r(), { once: true }))]);
    },
    submit(cpId, vehicleId) {
      const requestId = newRequestId();
      const done = chain.then(() => runOne(requestId, cpId, vehicleId));
      chain = done.catch(() => undefined);
      return { requestId, done };
    },
    async stopCurrent() {
      const c = state.current;
      if (!c || c.phase !== 'charging') return false;
      const rid = newRequestId();
      state = stopSent(state, rid);
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
      closed = true;
      cancel.abort();
      if (timer) clearInterval(timer);
      await o.bus.close();
    },
  };
}
