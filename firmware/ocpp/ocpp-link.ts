import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { backoffDelay, sleep } from '../../lib/backoff.js';
import { errText, type Logger } from '../../lib/log.js';
import {
  OCPP16, errorCodeOf, isoTime, newRpcClient, onCall, onOtherCalls, sampledValuesOf, statusOf, stopReasonOf,
  type OcppVersion, type RpcClient,
} from '../../lib/ocpp.js';
import {
  ID_PATTERN, PROTOCOL_VERSION,
  type CentralCommandMsg, type Command, type CommandAckMsg, type CpStatusMsg, type CpTelemetryMsg, type SessionEndMsg,
} from '../../protocol/index.js';
import type { Engine, LinkPort } from '../engine.js';
import { ChargingProfiles, readProfile } from './charging-profile.js';

/**
 * The firmware as an OCPP-J charge point: the same engine (state machine, HAL, loop) that
 * speaks MQTT to the project's gateway speaks OCPP 1.6J or 2.0.1 to any central system
 * through this link. The engine's outgoing messages (status, acks, telemetry, session_end)
 * become StatusNotification, MeterValues and the transaction messages; the CSMS's calls
 * (remote start/stop, availability, charging profiles) become the engine's commands, answered
 * with what the engine acknowledged. Transaction messages wait in an in-memory queue while the
 * CSMS is away and go, in order, once it is back; BootNotification is sent once per boot.
 */

export interface OcppLinkOptions {
  /** The CSMS's endpoint, e.g. ws://csms:8180/steve/websocket/CentralSystemService; the CP id is appended. */
  url: string;
  cpId: string;
  version: OcppVersion;
  /** Security profile 1/2: HTTP Basic auth password (the user is the CP id). */
  secret?: string;
  /** wss:// with a private CA: the CA certificate (PEM file). */
  caFile?: string;
  vendor: string;
  model: string;
  fwVersion: string;
  /** MeterValues period while a transaction runs, seconds. */
  meterIntervalS: number;
  phases: number;
  log: Logger;
  /** Each call's round trip (fleet statistics). */
  onCall?(method: string, ms: number, ok: boolean): void;
}

export interface OcppLink extends LinkPort {
  readonly connected: boolean;
  readonly counters: { connects: number; badCommands: number; calls: number; queued: number; callErrors: number };
  /** Attaches the engine (created after the link's port); starts connecting. */
  start(engine: Engine): void;
  /** A locally started transaction: a vehicle plugged in and this id tag presented. False when refused. */
  localStart(idTag: string): Promise<boolean>;
  /** The driver ends the running transaction at the charge point (OCPP reason Local). */
  localStop(): Promise<boolean>;
  /** Whether a transaction runs. */
  readonly inTransaction: boolean;
  /** The power limit charging profiles set now, kW. */
  readonly limitKw: number | undefined;
  readonly queueLength: number;
  close(): Promise<void>;
}

interface Tx { sessionId: string; idTag: string; meterStartWh: number; startedAt: number; transactionId?: number | string; remoteStartId?: number; seqNo: number; lastMeterAt: number }
interface Queued { method: string; params: () => unknown; onResult?: (r: unknown) => void }

const ACK_WAIT_MS = 10_000;

export function createOcppLink(o: OcppLinkOptions): OcppLink {
  const { cpId, version, log } = o;
  const v16 = version === OCPP16;
  const counters = { connects: 0, badCommands: 0, calls: 0, queued: 0, callErrors: 0 };
  const profiles = new ChargingProfiles();
  const queue: Queued[] = [];
  const ackWaiters = new Map<string, (ack: CommandAckMsg) => void>();
  let engine: Engine | undefined;
  let rpc: RpcClient | undefined;
  let open = false;
  let booted = false;
  let closing = false;
  let pumping = false;
  let heartbeat: NodeJS.Timeout | undefined;
  let profileTimer: NodeJS.Timeout | undefined;
  let lastStatus: string | undefined;
  let tx: Tx | undefined;
  let pendingIdTag: { idTag: string; remoteStartId?: number } | undefined;
  let limitKw: number | undefined;

  async function call<T>(method: string, params: unknown): Promise<T> {
    const t0 = Date.now();
    counters.calls++;
    try {
      const r = (await rpc!.call(method, params)) as T;
      o.onCall?.(method, Date.now() - t0, true);
      return r;
    } catch (err) {
      counters.callErrors++;
      o.onCall?.(method, Date.now() - t0, false);
      throw err;
    }
  }

  // --- transaction messages: queued, sent in order, each removed only once answered ----------

  function enqueue(q: Queued) { queue.push(q); counters.queued++; void pump(); }

  async function pump(): Promise<void> {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length && open && booted) {
        const q = queue[0]!;
        try {
          const r = await call(q.method, q.params());
          q.onResult?.(r);
          queue.shift();
        } catch (err) {
          if (!open) break; // the link went: the same message again after the reconnect
          // The CSMS answered with an error: it will not take this message, keep the rest moving.
          log.warn({ cp_id: cpId, method: q.method, err: errText(err) }, 'transaction message refused by the central system, dropped');
          queue.shift();
        }
      }
    } finally {
      pumping = false;
    }
  }

  // --- what the engine says -------------------------------------------------------------------

  function onStatus(m: CpStatusMsg) {
    if (m.state === 'SUPPLYING' && m.session_id && tx?.sessionId !== m.session_id) beginTx(m.session_id);
    if (!open || !booted || m.state === 'DISCONNECTED') return;
    const status = statusOf(version, m.state);
    const key = `${status}|${m.faults.join(',')}`;
    if (key === lastStatus) return;
    lastStatus = key;
    const params = v16
      ? { connectorId: 1, errorCode: m.state === 'FAULTY' ? errorCodeOf(m.faults) : 'NoError', status, timestamp: isoTime(m.ts) }
      : { timestamp: isoTime(m.ts), connectorStatus: status, evseId: 1, connectorId: 1 };
    call('StatusNotification', params).catch((err) => { lastStatus = undefined; log.debug({ cp_id: cpId, err: errText(err) }, 'StatusNotification failed'); });
  }

  function beginTx(sessionId: string) {
    const snap = engine!.snapshot() as { meter_kwh?: number; session?: { kwh?: number } | null };
    const meterStartWh = Math.round(((snap.meter_kwh ?? 0) - (snap.session?.kwh ?? 0)) * 1000);
    const id = pendingIdTag ?? { idTag: 'local' };
    pendingIdTag = undefined;
    const t: Tx = { sessionId, idTag: id.idTag, meterStartWh, startedAt: Date.now(), seqNo: 0, lastMeterAt: Date.now(), ...(id.remoteStartId !== undefined ? { remoteStartId: id.remoteStartId } : {}) };
    if (!v16) t.transactionId = sessionId.slice(0, 36);
    tx = t;
    log.info({ cp_id: cpId, session_id: sessionId, id_tag: t.idTag, meter_start_wh: meterStartWh }, 'transaction started');
    const begin = sampledValuesOf(version, { registerKwh: meterStartWh / 1000, kw: 0 }, 'Transaction.Begin');
    if (v16) {
      enqueue({ method: 'StartTransaction', params: () => ({ connectorId: 1, idTag: t.idTag, meterStart: meterStartWh, timestamp: isoTime(t.startedAt) }),
        onResult: (r) => {
          const res = r as { transactionId: number; idTagInfo: { status: string } };
          t.transactionId = res.transactionId;
          if (res.idTagInfo.status !== 'Accepted' && tx === t) {
            log.warn({ cp_id: cpId, status: res.idTagInfo.status }, 'central system refused the id tag: stopping the transaction');
            engine!.command(cmd('STOP_SUPPLY', t.sessionId));
          }
        } });
    } else {
      enqueue({ method: 'TransactionEvent', params: () => ({
        eventType: 'Started', timestamp: isoTime(t.startedAt), triggerReason: t.remoteStartId !== undefined ? 'RemoteStart' : 'Authorized', seqNo: t.seqNo++,
        transactionInfo: { transactionId: t.transactionId, chargingState: 'Charging', ...(t.remoteStartId !== undefined ? { remoteStartId: t.remoteStartId } : {}) },
        idToken: { idToken: t.idTag, type: t.remoteStartId !== undefined ? 'Central' : 'ISO14443' }, evse: { id: 1, connectorId: 1 },
        meterValue: [{ timestamp: isoTime(t.startedAt), sampledValue: begin }],
      }) });
    }
  }

  function onTelemetry(m: CpTelemetryMsg) {
    const t = tx;
    if (!t || t.sessionId !== m.session_id || !open || !booted) return;
    applyProfiles();
    if (Date.now() - t.lastMeterAt < o.meterIntervalS * 1000) return;
    t.lastMeterAt = Date.now();
    const values = sampledValuesOf(version, { registerKwh: t.meterStartWh / 1000 + m.kwh, kw: m.kw, ...(m.soc !== undefined ? { soc: m.soc } : {}) }, 'Sample.Periodic');
    // Periodic samples are not queued offline (the transaction's end carries the reading that bills).
    if (v16) {
      if (t.transactionId === undefined) return;
      call('MeterValues', { connectorId: 1, transactionId: t.transactionId, meterValue: [{ timestamp: isoTime(m.ts), sampledValue: values }] }).catch(() => undefined);
    } else {
      call('TransactionEvent', { eventType: 'Updated', timestamp: isoTime(m.ts), triggerReason: 'MeterValuePeriodic', seqNo: t.seqNo++,
        transactionInfo: { transactionId: t.transactionId, chargingState: 'Charging' }, meterValue: [{ timestamp: isoTime(m.ts), sampledValue: values }] }).catch(() => undefined);
    }
  }

  function onSessionEnd(m: SessionEndMsg) {
    const t = tx && tx.sessionId === m.session_id ? tx : undefined;
    if (!t) return;
    tx = undefined;
    profiles.endTransaction();
    applyProfiles();
    const meterStopWh = t.meterStartWh + Math.round(m.kwh * 1000);
    const reason = stopReasonOf(version, m.reason);
    log.info({ cp_id: cpId, session_id: m.session_id, meter_stop_wh: meterStopWh, reason, queued: queue.length }, 'transaction ended');
    if (v16) {
      enqueue({ method: 'StopTransaction', params: () => ({
        transactionId: t.transactionId ?? 0, meterStop: meterStopWh, timestamp: isoTime(m.ended_at), reason, idTag: t.idTag,
      }) });
    } else {
      enqueue({ method: 'TransactionEvent', params: () => ({
        eventType: 'Ended', timestamp: isoTime(m.ended_at), triggerReason: reason === 'Remote' ? 'RemoteStop' : reason === 'EmergencyStop' ? 'AbnormalCondition' : reason === 'SOCLimitReached' ? 'EnergyLimitReached' : 'StopAuthorized',
        seqNo: t.seqNo++, transactionInfo: { transactionId: t.transactionId, chargingState: 'Idle', stoppedReason: reason },
        meterValue: [{ timestamp: isoTime(m.ended_at), sampledValue: sampledValuesOf(version, { registerKwh: meterStopWh / 1000, kw: 0 }, 'Transaction.End') }],
      }) });
    }
  }

  // The engine hands over messages (not MQTT), so no decoding here.
  const port: LinkPort = {
    send(m) {
      switch (m.type) {
        case 'status': return onStatus(m);
        case 'telemetry': return onTelemetry(m);
        case 'session_end': return onSessionEnd(m);
        case 'ack': { ackWaiters.get(m.command_id)?.(m); ackWaiters.delete(m.command_id); return; }
        default: return; // announce: BootNotification says it, once per boot
      }
    },
  };

  // --- what the central system asks ----------------------------------------------------------

  const cmd = (command: Command, sessionId?: string, driverId?: string): CentralCommandMsg => ({
    v: PROTOCOL_VERSION, command_id: `ocpp-${randomUUID()}`, cp_id: cpId, command, ...(sessionId ? { session_id: sessionId } : {}), ...(driverId ? { driver_id: driverId } : {}), ts: Date.now(),
  });

  /** Hands a command to the engine and waits for its ack (the engine applies commands on its next tick). */
  function ask(c: CentralCommandMsg): Promise<CommandAckMsg | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { ackWaiters.delete(c.command_id); resolve(undefined); }, ACK_WAIT_MS);
      ackWaiters.set(c.command_id, (a) => { clearTimeout(timer); resolve(a); });
      engine!.command(c);
    });
  }

  async function start(idTag: string, remoteStartId?: number): Promise<boolean> {
    if (tx || engine!.state !== 'ACTIVATED') return false;
    pendingIdTag = { idTag, ...(remoteStartId !== undefined ? { remoteStartId } : {}) };
    const ack = await ask(cmd('START_SUPPLY', randomUUID(), ID_PATTERN.test(idTag) ? idTag : undefined));
    if (!ack?.ok) pendingIdTag = undefined;
    return !!ack?.ok;
  }

  async function stop(transactionId: unknown): Promise<boolean> {
    if (!tx || String(tx.transactionId) !== String(transactionId)) return false;
    return !!(await ask(cmd('STOP_SUPPLY', tx.sessionId)))?.ok;
  }

  async function availability(operative: boolean): Promise<string> {
    const want = operative ? 'RESUME_CP' : 'STOP_CP';
    const state = engine!.state;
    if ((operative && state !== 'STOPPED') || (!operative && state === 'STOPPED')) return 'Accepted'; // already so
    if (state === 'FAULTY') return 'Rejected';
    return (await ask(cmd(want)))?.ok ? 'Accepted' : 'Rejected';
  }

  function applyProfiles() {
    const limit = profiles.limitKw(Date.now(), { phases: o.phases, ...(tx ? { txStartMs: tx.startedAt } : {}) });
    if (limit === limitKw) return;
    limitKw = limit;
    engine!.setPowerLimit(limit);
  }

  function setProfile(raw: unknown, hasTx: (id: unknown) => boolean): string {
    const r = raw as Parameters<typeof readProfile>[0];
    if (r.chargingProfilePurpose === 'TxProfile' && !tx) return 'Rejected';
    if (r.transactionId !== undefined && !hasTx(r.transactionId)) return 'Rejected';
    const p = readProfile(r, Date.now());
    if (!p) return v16 ? 'NotSupported' : 'Rejected';
    if (!engine!.setPowerLimit(limitKw)) return v16 ? 'NotSupported' : 'Rejected'; // the HAL cannot limit power
    profiles.set(p);
    applyProfiles();
    log.info({ cp_id: cpId, profile_id: p.id, purpose: p.purpose, limit_kw: limitKw ?? null }, 'charging profile set');
    return 'Accepted';
  }

  function handlers(r: RpcClient) {
    onCall(r, 'ChangeAvailability', async (p: { type?: string; operationalStatus?: string }) => ({ status: await availability((p.type ?? p.operationalStatus) === 'Operative') }));
    onCall(r, 'SetChargingProfile', (p: { csChargingProfiles?: unknown; chargingProfile?: unknown }) =>
      ({ status: setProfile(p.csChargingProfiles ?? p.chargingProfile, (id) => !!tx && String(tx.transactionId) === String(id)) }));
    onCall(r, 'ClearChargingProfile', (p: { id?: number; chargingProfileId?: number; chargingProfilePurpose?: string; stackLevel?: number; chargingProfileCriteria?: { chargingProfilePurpose?: string; stackLevel?: number } }) => {
      const crit = p.chargingProfileCriteria ?? p;
      const purpose = crit.chargingProfilePurpose === 'TxProfile' ? 'tx' : crit.chargingProfilePurpose === 'TxDefaultProfile' ? 'txDefault' : crit.chargingProfilePurpose ? 'max' : undefined;
      const n = profiles.clear({ ...(p.id ?? p.chargingProfileId) !== undefined ? { id: (p.id ?? p.chargingProfileId)! } : {}, ...(purpose ? { purpose } : {}), ...(crit.stackLevel !== undefined ? { stackLevel: crit.stackLevel } : {}) });
      applyProfiles();
      return { status: n ? 'Accepted' : 'Unknown' };
    });
    if (v16) {
      onCall(r, 'RemoteStartTransaction', async (p: { idTag: string; chargingProfile?: unknown }) => {
        const ok = await start(p.idTag);
        if (ok && p.chargingProfile) setProfile(p.chargingProfile, () => true);
        return { status: ok ? 'Accepted' : 'Rejected' };
      });
      onCall(r, 'RemoteStopTransaction', async (p: { transactionId: number }) => ({ status: (await stop(p.transactionId)) ? 'Accepted' : 'Rejected' }));
    } else {
      onCall(r, 'RequestStartTransaction', async (p: { idToken: { idToken: string }; remoteStartId: number; chargingProfile?: unknown }) => {
        const ok = await start(p.idToken.idToken, p.remoteStartId);
        if (ok && p.chargingProfile) setProfile(p.chargingProfile, () => true);
        return ok && tx?.transactionId !== undefined ? { status: 'Accepted', transactionId: String(tx.transactionId) } : { status: ok ? 'Accepted' : 'Rejected' };
      });
      onCall(r, 'RequestStopTransaction', async (p: { transactionId: string }) => ({ status: (await stop(p.transactionId)) ? 'Accepted' : 'Rejected' }));
    }
    onOtherCalls(r);
  }

  // --- connection ----------------------------------------------------------------------------

  async function boot(): Promise<void> {
    for (let attempt = 0; open && !closing && !booted; attempt++) {
      try {
        const res = v16
          ? await call<{ status: string; interval: number }>('BootNotification', { chargePointVendor: o.vendor.slice(0, 20), chargePointModel: o.model.slice(0, 20), firmwareVersion: o.fwVersion.slice(0, 50) })
          : await call<{ status: string; interval: number }>('BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: o.vendor.slice(0, 50), model: o.model.slice(0, 20), firmwareVersion: o.fwVersion.slice(0, 50) } });
        if (res.status === 'Accepted') {
          booted = true;
          startHeartbeat(res.interval);
          log.info({ cp_id: cpId, url: o.url, protocol: version, heartbeat_s: res.interval }, 'booted at the central system');
          return;
        }
        log.warn({ cp_id: cpId, status: res.status }, 'central system did not accept the boot yet, retrying');
        await sleep(Math.max(1, res.interval || 10) * 1000);
      } catch (err) {
        if (!open || closing) return;
        log.warn({ cp_id: cpId, err: errText(err) }, 'BootNotification failed, retrying');
        await sleep(backoffDelay(attempt, 1_000, 30_000));
      }
    }
  }

  function startHeartbeat(intervalS: number) {
    clearInterval(heartbeat);
    heartbeat = setInterval(() => { if (open) call('Heartbeat', {}).catch(() => undefined); }, Math.max(1, intervalS) * 1000);
    heartbeat.unref();
  }

  async function onOpen(): Promise<void> {
    open = true;
    counters.connects++;
    lastStatus = undefined;
    if (!booted) await boot();
    if (!open || closing) return;
    engine!.linkUp(); // the engine re-announces its status (and hands over session ends it held)
    void pump();
  }

  async function connectLoop(): Promise<void> {
    const wsOpts = o.caFile ? { ca: fs.readFileSync(o.caFile), minVersion: 'TLSv1.2' } : {};
    const r = newRpcClient({
      endpoint: o.url, identity: cpId, protocols: [version], strictMode: true, callTimeoutMs: 30_000, reconnect: true,
      backoff: { initialDelay: 500, maxDelay: 10_000, factor: 2, randomisationFactor: 0.25 }, ...(o.secret !== undefined ? { password: o.secret } : {}), wsOpts,
    } as never);
    rpc = r;
    handlers(r);
    r.on('open', () => { void onOpen(); });
    r.on('disconnect', () => {
      if (!open) return;
      open = false;
      if (!closing) { log.warn({ cp_id: cpId, url: o.url }, 'central system connection lost, reconnecting'); engine!.linkDown(); }
    });
    r.on('strictValidationFailure', (e: { method?: string; error?: Error }) => { counters.badCommands++; log.warn({ cp_id: cpId, method: e.method, err: e.error?.message.slice(0, 200) }, 'OCPP message failed the schema'); });
    // ocpp-rpc reconnects on its own only after a first successful connection: until then, retry here.
    for (let attempt = 0; !closing; attempt++) {
      try { await r.connect(); return; } catch (err) {
        if (attempt === 0) log.warn({ cp_id: cpId, url: o.url, err: errText(err) }, 'central system not reachable, retrying');
        await sleep(backoffDelay(attempt, 500, 10_000));
      }
    }
  }

  return {
    ...port,
    get connected() { return open && booted; },
    counters,
    get limitKw() { return limitKw; },
    get queueLength() { return queue.length; },
    start(e) {
      engine = e;
      profileTimer = setInterval(() => { if (engine) applyProfiles(); }, 1_000);
      profileTimer.unref();
      void connectLoop();
    },
    async localStart(idTag) {
      if (!open || !booted || tx || engine?.state !== 'ACTIVATED') return false;
      const auth = v16
        ? await call<{ idTagInfo: { status: string } }>('Authorize', { idTag }).then((r) => r.idTagInfo.status, () => 'Failed')
        : await call<{ idTokenInfo: { status: string } }>('Authorize', { idToken: { idToken: idTag, type: 'ISO14443' } }).then((r) => r.idTokenInfo.status, () => 'Failed');
      if (auth !== 'Accepted') return false;
      return start(idTag);
    },
    get inTransaction() { return !!tx; },
    async localStop() {
      if (!tx) return false;
      return !!(await ask(cmd('STOP_SUPPLY', tx.sessionId, ID_PATTERN.test(tx.idTag) ? tx.idTag : 'local')))?.ok;
    },
    async close() {
      closing = true;
      clearInterval(heartbeat);
      clearInterval(profileTimer);
      // Let the final messages (a session end, the last status) go, but do not hang on a dead CSMS.
      const deadline = Date.now() + 2_000;
      void pump();
      while (queue.length && open && Date.now() < deadline) await sleep(50);
      await rpc?.close({ code: 1000, reason: 'charge point stopping', force: !open }).catch(() => undefined);
    },
  };
}
