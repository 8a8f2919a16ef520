import type { FaultKind } from '../../protocol/index.js';

/**
 * The hardware abstraction layer a firmware loop runs over. Embedded style: `read()` is
 * synchronous and returns the latest input image (a serial driver polls in the background
 * and caches it); outputs are commands the driver applies and reports back as feedback.
 */
export interface HalInputs {
  /** Cumulative energy register of the meter, kWh. */
  meterKwh: number;
  /** Instantaneous power, kW. */
  powerKw: number;
  /** Contactor/relay feedback: is it actually closed? */
  relayClosed: boolean;
  vehiclePlugged: boolean;
  /** The vehicle stopped drawing current because its battery reached its target. */
  vehicleFull: boolean;
  /** Vehicle state of charge 0..1 when the hardware knows it (the simulator does). */
  soc?: number;
  /** Hardware faults active now (empty when healthy). */
  faults: FaultKind[];
}

export interface Hal {
  readonly driver: 'sim' | 'serial';
  start(): Promise<void>;
  /** The input image at `nowMs` (monotonic ms). The simulator advances its physics to `nowMs`. */
  read(nowMs: number): HalInputs;
  /** Command the relay/contactor. Feedback appears in `read().relayClosed`. */
  setRelay(closed: boolean): void;
  /** A session starts/ends at this connector (the simulator plugs in / unplugs a vehicle). */
  sessionStarted(): void;
  sessionEnded(): void;
  /** Fault injection, where the hardware allows it (the simulator; the serial board emulator does it on its side). */
  injectFault?(kind: FaultKind): void;
  clearFault?(kind?: FaultKind): void;
  /** Caps the power the charger delivers (OCPP charging profiles), kW; undefined lifts the cap. Where the hardware allows it (the simulator). */
  setPowerLimitKw?(kw: number | undefined): void;
  /** Driver counters (serial: requests, retries, CRC errors, noise bytes, reopens), shown in the health port's STATUS. */
  stats?(): Record<string, number | boolean>;
  close(): Promise<void>;
}
