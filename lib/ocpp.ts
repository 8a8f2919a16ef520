import ocppRpcModule from 'ocpp-rpc';
import type { CpState, FaultKind, SessionEndReason } from '../protocol/index.js';

/**
 * The OCPP-J vocabulary both OCPP sides share: the gateway (a CSMS front-end for charge points)
 * and the firmware (a charge point for any CSMS). One place maps the project's CP states, faults,
 * session end reasons and meter readings to OCPP 1.6J and 2.0.1 and back, so the two sides
 * cannot drift apart. The RPC framing, schemas and strict validation are ocpp-rpc's.
 */

// ocpp-rpc is CommonJS with spread exports that Node's named-export detection misses, so take
// its module.exports as the default import. A static import (not createRequire) so that esbuild
// bundles it into the firmware package, which has no node_modules/ocpp-rpc.
export const ocppRpc = ocppRpcModule as typeof import('ocpp-rpc');
export type RpcClient = InstanceType<typeof ocppRpc.RPCClient>;
export type RpcServer = InstanceType<typeof ocppRpc.RPCServer>;

export const OCPP16 = 'ocpp1.6' as const;
export const OCPP201 = 'ocpp2.0.1' as const;
export type OcppVersion = typeof OCPP16 | typeof OCPP201;
/** In the gateway's order of preference when a charge point offers both. */
export const OCPP_VERSIONS: readonly OcppVersion[] = [OCPP201, OCPP16];
export const isOcppVersion = (v: string): v is OcppVersion => v === OCPP16 || v === OCPP201;
/** The gateway's endpoint: `ws://host:PORT/ocpp/<CP id>`. */
export const OCPP_PATH = '/ocpp';

// --- connector status ------------------------------------------------------------------------

export type Status16 = 'Available' | 'Preparing' | 'Charging' | 'SuspendedEVSE' | 'SuspendedEV' | 'Finishing' | 'Reserved' | 'Unavailable' | 'Faulted';
export type Status201 = 'Available' | 'Occupied' | 'Reserved' | 'Unavailable' | 'Faulted';

/** What a charge point reports for the project's state (DISCONNECTED is never sent: it is the link's absence). */
export function statusOf(version: OcppVersion, state: CpState): Status16 | Status201 {
  switch (state) {
    case 'SUPPLYING': return version === OCPP16 ? 'Charging' : 'Occupied';
    case 'STOPPED': return 'Unavailable';
    case 'FAULTY': return 'Faulted';
    default: return 'Available';
  }
}

/** The project's state of an idle connector from its OCPP status (a running transaction makes it SUPPLYING, see the gateway). */
export function stateOfStatus(status: string): CpState {
  if (status === 'Faulted') return 'FAULTY';
  if (status === 'Unavailable') return 'STOPPED';
  return 'ACTIVATED';
}

const FAULT_TO_ERROR: Record<FaultKind, string> = {
  ground_fault: 'GroundFailure', over_temperature: 'HighTemperature', meter_failure: 'PowerMeterFailure', relay_failure: 'PowerSwitchFailure', link_lost: 'InternalError',
};
/** 1.6 StatusNotification errorCode for the first active fault. */
export const errorCodeOf = (faults: readonly FaultKind[]): string => (faults[0] ? FAULT_TO_ERROR[faults[0]] : 'NoError');
/** The project's fault kinds from a 1.6 errorCode (unknown codes give none: the reason says which). */
export function faultsOfErrorCode(code: string | undefined): FaultKind[] {
  const hit = (Object.entries(FAULT_TO_ERROR) as Array<[FaultKind, string]>).find(([, c]) => c === code);
  return hit ? [hit[0]] : [];
}

// --- why a transaction ended ---------------------------------------------------------------------

/** What the firmware tells a CSMS for the engine's end reason (1.6 Reason / 2.0.1 stoppedReason). */
export function stopReasonOf(version: OcppVersion, reason: SessionEndReason): string {
  switch (reason) {
    case 'full': return version === OCPP16 ? 'Other' : 'SOCLimitReached';
    case 'driver_stop': return 'Local'; // the driver stopped at the charge point (a stop central asks for reaches the engine without a driver)
    case 'central_stop': case 'cp_stopped': return 'Remote';
    case 'fault': return 'EmergencyStop';
    case 'unplugged': return 'EVDisconnected';
    case 'disconnected': case 'engine_restart': return 'Reboot';
    default: return 'Other';
  }
}

/**
 * The project's end reason for an OCPP stop reason. `Remote` is the stop central asked for:
 * `driver_stop` when a driver asked, else `central_stop` (or `cp_stopped` after an availability change).
 * 1.6 has no "battery full" reason: `Other` is read as `full` (the project's firmware sends it so).
 */
export function endReasonOf(version: OcppVersion, reason: string | undefined, remote: SessionEndReason = 'central_stop'): SessionEndReason {
  switch (reason ?? 'Local') {
    case 'Remote': return remote;
    case 'Local': return 'driver_stop';
    case 'EVDisconnected': return 'unplugged';
    case 'EmergencyStop': case 'GroundFault': case 'OvercurrentFault': case 'PowerQuality': return 'fault';
    case 'PowerLoss': case 'HardReset': case 'SoftReset': case 'Reboot': case 'ImmediateReset': return 'engine_restart';
    case 'SOCLimitReached': case 'EnergyLimitReached': case 'StoppedByEV': return 'full';
    case 'Other': return version === OCPP16 ? 'full' : 'central_stop';
    default: return 'central_stop';
  }
}

// --- meter values ------------------------------------------------------------------------------

export interface SampledValue16 { value: string; measurand?: string; unit?: string; context?: string }
export interface SampledValue201 { value: number; measurand?: string; unitOfMeasure?: { unit?: string; multiplier?: number }; context?: string }
export interface MeterReading { registerKwh?: number; kw?: number; soc?: number }

const ENERGY = 'Energy.Active.Import.Register';
const POWER = 'Power.Active.Import';

/** Reads energy register (kWh), power (kW) and SoC (0..1) out of sampled values of either version; unknown measurands are skipped. */
export function readSampledValues(values: ReadonlyArray<SampledValue16 | SampledValue201>): MeterReading {
  const out: MeterReading = {};
  for (const sv of values) {
    const raw = typeof sv.value === 'number' ? sv.value : Number(sv.value);
    if (!Number.isFinite(raw)) continue;
    const unitObj = 'unitOfMeasure' in sv ? sv.unitOfMeasure : undefined;
    const unit = ('unit' in sv ? sv.unit : unitObj?.unit) ?? undefined;
    const scaled = raw * 10 ** (unitObj?.multiplier ?? 0);
    const measurand = sv.measurand ?? ENERGY;
    if (measurand === ENERGY) out.registerKwh = unit === 'kWh' ? scaled : scaled / 1000;
    else if (measurand === POWER) out.kw = unit === 'kW' ? scaled : scaled / 1000;
    else if (measurand === 'SoC') out.soc = Math.min(1, Math.max(0, scaled / 100));
  }
  return out;
}

/** Sampled values the firmware sends: the energy register in Wh, power in W and, when known, SoC in percent. */
export function sampledValuesOf(version: OcppVersion, m: { registerKwh: number; kw: number; soc?: number }, context: string): Array<SampledValue16 | SampledValue201> {
  const wh = Math.round(m.registerKwh * 1000);
  const w = Math.round(m.kw * 1000);
  if (version === OCPP16) {
    const out: SampledValue16[] = [
      { value: String(wh), measurand: ENERGY, unit: 'Wh', context },
      { value: String(w), measurand: POWER, unit: 'W', context },
    ];
    if (m.soc !== undefined) out.push({ value: String(Math.round(m.soc * 100)), measurand: 'SoC', unit: 'Percent', context });
    return out;
  }
  const out: SampledValue201[] = [
    { value: wh, measurand: ENERGY, unitOfMeasure: { unit: 'Wh' }, context },
    { value: w, measurand: POWER, unitOfMeasure: { unit: 'W' }, context },
  ];
  if (m.soc !== undefined) out.push({ value: Math.round(m.soc * 100), measurand: 'SoC', unitOfMeasure: { unit: 'Percent' }, context });
  return out;
}

/** An id tag (1.6: CiString20) or idToken (2.0.1: 36) for a driver: the driver id when it fits, else a stable prefix of the session id. */
export function idTagFor(version: OcppVersion, driverId: string | undefined, sessionId: string): string {
  const max = version === OCPP16 ? 20 : 36;
  if (driverId && driverId.length <= max) return driverId;
  return sessionId.slice(0, max);
}

/** ISO timestamp, as OCPP wants it. */
export const isoTime = (ms: number) => new Date(ms).toISOString();
/** Epoch ms of an OCPP timestamp, or `fallback` when it does not parse. */
export function msOf(iso: string | undefined, fallback: number): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? t : fallback;
}

/** Registers a handler for one OCPP action with typed params (strict mode has checked them against the schema already). */
export function onCall<P>(rpc: RpcClient, method: string, fn: (params: P) => unknown): void {
  rpc.handle(method, (({ params }: { params?: unknown }) => fn(params as P)) as never);
}
/** The handler for every action without its own: answered NotImplemented, as OCPP-J wants. */
export function onOtherCalls(rpc: RpcClient): void {
  rpc.handle((({ method }: { method?: string }) => { throw ocppRpc.createRPCError('NotImplemented', `${method ?? '?'} is not implemented here`); }) as never);
}

/** An ocpp-rpc client; its typings want every option, its code has defaults for all but these. */
export type RpcClientOptions = { endpoint: string; identity: string; protocols: string[] } & Partial<ConstructorParameters<typeof ocppRpc.RPCClient>[0]>;
export const newRpcClient = (o: RpcClientOptions): RpcClient => new ocppRpc.RPCClient(o as ConstructorParameters<typeof ocppRpc.RPCClient>[0]);
