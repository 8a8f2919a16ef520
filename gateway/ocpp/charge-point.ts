import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/log.js';
import { errText } from '../../lib/log.js';
import {
  OCPP16, endReasonOf, onCall, onOtherCalls, faultsOfErrorCode, idTagFor, isoTime, msOf, ocppRpc, readSampledValues, stateOfStatus,
  type OcppVersion, type RpcClient, type SampledValue16, type SampledValue201,
} from '../../lib/ocpp.js';
import {
  PROTOCOL_VERSION,
  type CentralCommandMsg, type CpState, type FaultKind, type SessionEndReason,
} from '../../protocol/index.js';
import type { CpPort } from './port.js';

/**
 * One OCPP charge point connected to the gateway, translated into the project's CP messages:
 * BootNotification → announce, StatusNotification → status, Start/StopTransaction and
 * TransactionEvent → status, telemetry and session_end, MeterValues → telemetry; central's
 * commands → RemoteStart/RequestStart, RemoteStop/RequestStop and ChangeAvailability, and the
 * charge point's answers → acks. Everything goes through the CpPort as the CP's own id; a
 * transaction's end is answered only once the bus has its session_end.
 */

export interface ChargePointSettings {
  /** What the announce says of a charge point OCPP does not describe: rated kW, price, connector. */
  kw: number;
  price: number;
  heartbeatS: number;
  /** How long a remote start may wait for its transaction before central hears it failed. */
  startTimeoutMs: number;
  /** Accept id tags the gateway did not hand out (locally started transactions): dev mode only. */
  acceptLocalIdTags: boolean;
}

/** What the gateway remembers of a CP between its connections (in memory, for this gateway's life). */
export interface Remembered { bootId?: string; profileName?: string; fwVersion?: string; tx?: Transaction; seq?: number }

export interface Transaction {
  id: string;
  sessionId: string;
  driverId?: string;
  /** Central's session (a remote start) or one the CP started itself (billed by nobody). */
  central: boolean;
  meterStartKwh: number;
  lastKwh: number;
  startedAt: number;
  /** Set when central asked to stop: what kind of stop it was. */
  stopAs?: SessionEndReason;
}

interface PendingStart { cmd: CentralCommandMsg; idTag: string; remoteStartId: number; timer: NodeJS.Timeout }

let next16TxId = Math.floor(Date.now() / 1000) % 1_000_000_000;
let nextRemoteStartId = Math.floor(Date.now() / 1000) % 1_000_000_000;
const round = (n: number, d: number) => Math.round(n * 10 ** d) / 10 ** d;

export class OcppChargePoint {
  /** Unknown until the charge point's first StatusNotification: central hears nothing before (a boot alone is not readiness). */
  private connectorStatus: string | undefined;
  private stationUnavailable = false;
  private faults: FaultKind[] = [];
  private errorCode?: string;
  private readonly pending = new Map<string, PendingStart>();
  private lastSent?: string;
  private availabilityStop = false;
  private closed = false;
  private readonly unsubscribe: () => void;
  readonly counters = { calls: 0, unknownTransactions: 0, refusedIdTags: 0 };

  constructor(
    readonly cpId: string,
    readonly version: OcppVersion,
    private readonly rpc: RpcClient,
    private readonly port: CpPort,
    private readonly s: ChargePointSettings,
    private readonly memory: Remembered,
    private readonly log: Logger,
  ) {
    this.unsubscribe = port.commandsFor(cpId, (cmd) => void this.onCommand(cmd));
    if (version === OCPP16) this.handle16(); else this.handle201();
    onCall(rpc, 'Heartbeat', () => ({ currentTime: isoTime(Date.now()) }));
    onOtherCalls(rpc);
    // A reconnect without a new boot: the same boot goes on (central must not think the CP restarted).
    if (memory.bootId) void this.announce(memory.bootId);
  }

  /** One sequence per CP across its connections, growing across gateway restarts too (it starts at the clock). */
  private nextSeq(): number {
    this.memory.seq = Math.max((this.memory.seq ?? 0) + 1, Date.now());
    return this.memory.seq;
  }

  /** The CP's state as central sees it. */
  get state(): CpState {
    if (this.faults.length || this.connectorStatus === 'Faulted') return 'FAULTY';
    if (this.memory.tx) return 'SUPPLYING';
    if (this.stationUnavailable) return 'STOPPED';
    return this.connectorStatus === undefined ? 'DISCONNECTED' : stateOfStatus(this.connectorStatus);
  }

  // --- CP → bus ------------------------------------------------------------------------------

  private announce(bootId: string): Promise<boolean> {
    return this.port.fromCp(this.cpId, 'announce', {
      v: PROTOCOL_VERSION, type: 'announce', cp_id: this.cpId, fw_version: (this.memory.fwVersion ?? 'ocpp').slice(0, 32), boot_id: bootId, ts: Date.now(),
      profile: { name: (this.memory.profileName ?? 'ocpp').slice(0, 64), max_kw: this.s.kw, price_eur_kwh: this.s.price, connector: 'Type2', phases: 3, hal: 'ocpp' },
    });
  }

  /** Publishes the status when what central sees changed (state, session, faults). */
  private status(force = false): void {
    const state = this.state;
    if (state === 'DISCONNECTED') return;
    const key = `${state}|${this.memory.tx?.sessionId ?? ''}|${this.faults.join(',')}`;
    if (!force && key === this.lastSent) return;
    this.lastSent = key;
    void this.port.fromCp(this.cpId, 'status', {
      v: PROTOCOL_VERSION, type: 'status', cp_id: this.cpId, state, faults: [...this.faults], source: 'engine', seq: this.nextSeq(), ts: Date.now(),
      ...(this.memory.tx ? { session_id: this.memory.tx.sessionId } : {}), ...(state === 'FAULTY' && this.errorCode && this.errorCode !== 'NoError' ? { reason: `OCPP ${this.errorCode}` } : {}),
    });
  }

  private ack(cmd: CentralCommandMsg, ok: boolean, reason?: string): void {
    void this.port.fromCp(this.cpId, 'ack', {
      v: PROTOCOL_VERSION, type: 'ack', cp_id: this.cpId, command_id: cmd.command_id, command: cmd.command, ok, ...(reason ? { reason: reason.slice(0, 256) } : {}), state: this.state, ts: Date.now(),
    });
  }

  private onBoot(vendor: string, model: string, fw: string | undefined) {
    this.memory.bootId = randomUUID();
    this.memory.profileName = `${vendor} ${model}`;
    this.memory.fwVersion = fw;
    // A new boot: whatever transaction the gateway knew of died with the old one.
    this.memory.tx = undefined;
    this.lastSent = undefined;
    void this.announce(this.memory.bootId).then(() => this.status(true));
    return { currentTime: isoTime(Date.now()), interval: this.s.heartbeatS, status: 'Accepted' };
  }

  /** An id tag is accepted when central handed it out for a pending or running session (or, in dev mode, any). */
  private idTagStatus(idTag: string): 'Accepted' | 'Invalid' {
    if ([...this.pending.values()].some((p) => p.idTag === idTag) || (this.memory.tx?.driverId !== undefined && idTagFor(this.version, this.memory.tx.driverId, this.memory.tx.sessionId) === idTag) || this.s.acceptLocalIdTags) return 'Accepted';
    this.counters.refusedIdTags++;
    return 'Invalid';
  }

  private startTransaction(id: string, idTag: string | undefined, remoteStartId: number | undefined, meterStartKwh: number, at: number): boolean {
    const pend = [...this.pending.values()].find((p) => (remoteStartId !== undefined && p.remoteStartId === remoteStartId) || (idTag !== undefined && p.idTag === idTag));
    if (!pend && !(this.s.acceptLocalIdTags)) return false;
    if (pend) {
      clearTimeout(pend.timer);
      this.pending.delete(pend.cmd.command_id);
    }
    this.memory.tx = {
      id, central: !!pend, sessionId: pend?.cmd.session_id ?? `OCPP-${this.cpId}-${id}`.slice(0, 128), meterStartKwh, lastKwh: 0, startedAt: at,
      ...(pend?.cmd.driver_id ? { driverId: pend.cmd.driver_id } : {}),
    };
    this.log.info({ cp: this.cpId, transaction: id, session_id: this.memory.tx.sessionId, central: this.memory.tx.central }, 'transaction started');
    this.status();
    if (pend) this.ack(pend.cmd, true);
    return true;
  }

  private meter(values: ReadonlyArray<SampledValue16 | SampledValue201>, transactionId: string | undefined): void {
    const tx = this.memory.tx;
    if (!tx || (transactionId !== undefined && transactionId !== tx.id)) {
      if (transactionId !== undefined) this.counters.unknownTransactions++;
      return;
    }
    const m = readSampledValues(values);
    if (m.registerKwh === undefined) return;
    const kwh = round(Math.max(0, m.registerKwh - tx.meterStartKwh), 6);
    tx.lastKwh = kwh;
    void this.port.fromCp(this.cpId, 'telemetry', {
      v: PROTOCOL_VERSION, type: 'telemetry', cp_id: this.cpId, session_id: tx.sessionId, kw: round(Math.max(0, m.kw ?? 0), 3), kwh, eur: round(kwh * this.s.price, 4),
      ...(m.soc !== undefined ? { soc: round(m.soc, 4) } : {}), seq: this.nextSeq(), ts: Date.now(),
    });
  }

  /** Ends the transaction: resolves once the bus has the session_end (the CALLRESULT waits for it). */
  private async stopTransaction(id: string, meterStopKwh: number | undefined, reason: string | undefined, at: number): Promise<void> {
    const tx = this.memory.tx;
    if (!tx || tx.id !== id) {
      this.counters.unknownTransactions++;
      this.log.warn({ cp: this.cpId, transaction: id }, 'stop of a transaction this gateway does not know (started before a gateway restart?): answered, not billed');
      return;
    }
    this.memory.tx = undefined;
    const kwh = round(Math.max(0, meterStopKwh !== undefined ? meterStopKwh - tx.meterStartKwh : tx.lastKwh), 6);
    const remote = tx.stopAs ?? (this.availabilityStop ? 'cp_stopped' : 'central_stop');
    const end = endReasonOf(this.version, reason, remote);
    this.log.info({ cp: this.cpId, transaction: id, session_id: tx.sessionId, kwh, reason: end, ocpp_reason: reason }, 'transaction ended');
    const delivered = this.port.fromCp(this.cpId, 'session', {
      v: PROTOCOL_VERSION, type: 'session_end', cp_id: this.cpId, session_id: tx.sessionId, ...(tx.driverId ? { driver_id: tx.driverId } : {}),
      kwh, eur: round(kwh * this.s.price, 4), price_eur_kwh: this.s.price, started_at: tx.startedAt, ended_at: Math.max(at, tx.startedAt), reason: end, ts: Date.now(),
    });
    this.status();
    if (!(await delivered)) throw ocppRpc.createRPCError('InternalError', 'the transaction record was refused by the gateway');
  }

  // --- OCPP 1.6J -------------------------------------------------------------------------------

  private handle16(): void {
    const r = this.rpc;
    onCall(r, 'BootNotification', (params: { chargePointVendor: string; chargePointModel: string; firmwareVersion?: string }) =>
      this.onBoot(params.chargePointVendor, params.chargePointModel, params.firmwareVersion));
    onCall(r, 'StatusNotification', (params: { connectorId: number; status: string; errorCode: string }) => {
      if (params.connectorId === 0) this.stationUnavailable = params.status === 'Unavailable';
      if (params.connectorId <= 1) {
        if (params.connectorId === 1 || params.status === 'Faulted') this.connectorStatus = params.status;
        this.errorCode = params.errorCode;
        this.faults = params.status === 'Faulted' ? faultsOfErrorCode(params.errorCode) : [];
        this.status();
      }
      return {};
    });
    onCall(r, 'Authorize', (params: { idTag: string }) => ({ idTagInfo: { status: this.idTagStatus(params.idTag) } }));
    onCall(r, 'StartTransaction', (params: { connectorId: number; idTag: string; meterStart: number; timestamp: string }) => {
      const id = String(++next16TxId);
      if (this.memory.tx || params.connectorId !== 1) return { transactionId: Number(id), idTagInfo: { status: this.memory.tx ? 'ConcurrentTx' : 'Invalid' } };
      const ok = this.startTransaction(id, params.idTag, undefined, params.meterStart / 1000, msOf(params.timestamp, Date.now()));
      if (!ok) this.counters.refusedIdTags++;
      return { transactionId: Number(id), idTagInfo: { status: ok ? 'Accepted' : 'Invalid' } };
    });
    onCall(r, 'MeterValues', (params: { connectorId: number; transactionId?: number; meterValue: Array<{ sampledValue: SampledValue16[] }> }) => {
      for (const mv of params.meterValue) this.meter(mv.sampledValue, params.transactionId !== undefined ? String(params.transactionId) : undefined);
      return {};
    });
    onCall(r, 'StopTransaction', async (params: { transactionId: number; meterStop: number; timestamp: string; reason?: string }) => {
      await this.stopTransaction(String(params.transactionId), params.meterStop / 1000, params.reason, msOf(params.timestamp, Date.now()));
      return { idTagInfo: { status: 'Accepted' } };
    });
    onCall(r, 'DataTransfer', () => ({ status: 'UnknownVendorId' }));
  }

  // --- OCPP 2.0.1 ------------------------------------------------------------------------------

  private handle201(): void {
    const r = this.rpc;
    onCall(r, 'BootNotification', (params: { chargingStation: { model: string; vendorName: string; firmwareVersion?: string } }) =>
      this.onBoot(params.chargingStation.vendorName, params.chargingStation.model, params.chargingStation.firmwareVersion));
    onCall(r, 'StatusNotification', (params: { evseId: number; connectorStatus: string }) => {
      if (params.evseId === 1) {
        this.connectorStatus = params.connectorStatus;
        if (params.connectorStatus !== 'Faulted') this.faults = [];
        this.status();
      }
      return {};
    });
    onCall(r, 'Authorize', (params: { idToken: { idToken: string } }) => ({ idTokenInfo: { status: this.idTagStatus(params.idToken.idToken) } }));
    onCall(r, 'MeterValues', () => ({})); // outside transactions: nothing central uses
    onCall(r, 'NotifyEvent', () => ({}));
    onCall(r, 'TransactionEvent', async (params: {
      eventType: 'Started' | 'Updated' | 'Ended'; timestamp: string; transactionInfo: { transactionId: string; stoppedReason?: string; remoteStartId?: number };
      idToken?: { idToken: string }; meterValue?: Array<{ sampledValue: SampledValue201[] }>; evse?: { id: number };
    }) => {
      const t = params.transactionInfo;
      const at = msOf(params.timestamp, Date.now());
      const values = (params.meterValue ?? []).flatMap((mv) => mv.sampledValue);
      const register = readSampledValues(values).registerKwh;
      if (params.eventType === 'Started' || (params.eventType === 'Updated' && !this.memory.tx)) {
        if (this.memory.tx && this.memory.tx.id !== t.transactionId) return { idTokenInfo: { status: 'ConcurrentTx' } };
        if (!this.memory.tx) {
          const ok = this.startTransaction(t.transactionId, params.idToken?.idToken, t.remoteStartId, register ?? 0, at);
          if (!ok) return params.idToken ? { idTokenInfo: { status: 'Invalid' } } : {};
        }
        if (values.length) this.meter(values, t.transactionId);
        return params.idToken ? { idTokenInfo: { status: 'Accepted' } } : {};
      }
      if (params.eventType === 'Updated') {
        if (values.length) this.meter(values, t.transactionId);
        return {};
      }
      await this.stopTransaction(t.transactionId, register, t.stoppedReason, at);
      return {};
    });
  }

  // --- central → CP ---------------------------------------------------------------------------

  private async onCommand(cmd: CentralCommandMsg): Promise<void> {
    if (cmd.expires_at !== undefined && Date.now() > cmd.expires_at) return this.ack(cmd, false, 'command expired');
    try {
      switch (cmd.command) {
        case 'START_SUPPLY': return await this.remoteStart(cmd);
        case 'STOP_SUPPLY': return await this.remoteStop(cmd, cmd.driver_id ? 'driver_stop' : 'central_stop');
        case 'STOP_CP': case 'RESUME_CP': return await this.availability(cmd);
      }
    } catch (err) {
      this.ack(cmd, false, `OCPP call failed: ${errText(err)}`);
    }
  }

  private async call<T>(method: string, params: unknown): Promise<T> {
    this.counters.calls++;
    return (await this.rpc.call(method, params)) as T;
  }

  private async remoteStart(cmd: CentralCommandMsg): Promise<void> {
    if (!cmd.session_id) return this.ack(cmd, false, 'START_SUPPLY needs a session_id');
    if (this.memory.tx) return this.ack(cmd, this.memory.tx.sessionId === cmd.session_id, this.memory.tx.sessionId === cmd.session_id ? undefined : `already SUPPLYING session ${this.memory.tx.sessionId}`);
    if (this.state !== 'ACTIVATED') return this.ack(cmd, false, `CP is ${this.state}`);
    const idTag = idTagFor(this.version, cmd.driver_id, cmd.session_id);
    const remoteStartId = ++nextRemoteStartId;
    const timer = setTimeout(() => {
      if (this.pending.delete(cmd.command_id)) this.ack(cmd, false, `no transaction started within ${this.s.startTimeoutMs} ms`);
    }, this.s.startTimeoutMs);
    timer.unref();
    this.pending.set(cmd.command_id, { cmd, idTag, remoteStartId, timer });
    const res = this.version === OCPP16
      ? await this.call<{ status: string }>('RemoteStartTransaction', { connectorId: 1, idTag })
      : await this.call<{ status: string }>('RequestStartTransaction', { idToken: { idToken: idTag, type: 'Central' }, remoteStartId, evseId: 1 });
    if (res.status !== 'Accepted' && this.pending.delete(cmd.command_id)) {
      clearTimeout(timer);
      this.ack(cmd, false, `charge point answered ${res.status}`);
    }
    // Accepted: the ack goes when the transaction starts (or its deadline passes).
  }

  private async remoteStop(cmd: CentralCommandMsg, as: SessionEndReason): Promise<void> {
    const tx = this.memory.tx;
    if (!tx) return this.ack(cmd, false, `CP is ${this.state}, not SUPPLYING`);
    if (cmd.session_id && cmd.session_id !== tx.sessionId) return this.ack(cmd, false, `session ${cmd.session_id} is not the active session`);
    tx.stopAs = as;
    const res = this.version === OCPP16
      ? await this.call<{ status: string }>('RemoteStopTransaction', { transactionId: Number(tx.id) })
      : await this.call<{ status: string }>('RequestStopTransaction', { transactionId: tx.id });
    this.ack(cmd, res.status === 'Accepted', res.status === 'Accepted' ? undefined : `charge point answered ${res.status}`);
  }

  private async availability(cmd: CentralCommandMsg): Promise<void> {
    const stop = cmd.command === 'STOP_CP';
    const type = stop ? 'Inoperative' : 'Operative';
    this.availabilityStop = stop;
    // The project's STOP_CP ends a running session at once; OCPP would only schedule the change.
    if (stop && this.memory.tx) {
      this.memory.tx.stopAs = 'cp_stopped';
      await (this.version === OCPP16 ? this.call('RemoteStopTransaction', { transactionId: Number(this.memory.tx.id) }) : this.call('RequestStopTransaction', { transactionId: this.memory.tx.id }));
    }
    const res = this.version === OCPP16
      ? await this.call<{ status: string }>('ChangeAvailability', { connectorId: 0, type })
      : await this.call<{ status: string }>('ChangeAvailability', { operationalStatus: type });
    const ok = res.status === 'Accepted' || res.status === 'Scheduled';
    if (ok) {
      this.stationUnavailable = stop;
      this.status();
    }
    this.ack(cmd, ok, ok ? undefined : `charge point answered ${res.status}`);
  }

  /** The connection ended: pending starts fail, central sees DISCONNECTED (the transaction, if any, may still end later). */
  close(publishDisconnected: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    for (const p of this.pending.values()) { clearTimeout(p.timer); this.ack(p.cmd, false, 'charge point disconnected'); }
    this.pending.clear();
    if (!publishDisconnected) return;
    void this.port.fromCp(this.cpId, 'status', {
      v: PROTOCOL_VERSION, type: 'status', cp_id: this.cpId, state: 'DISCONNECTED', faults: [], source: 'gateway', reason: 'connection lost', seq: this.nextSeq(), ts: Date.now(),
    });
  }
}
