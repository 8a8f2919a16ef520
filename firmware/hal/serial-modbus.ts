import {
  decodeReadResponse, encodeReadRequest, responseLength, scanRtu,
} from './serial-frames.js';
import type { SerialLine, Take } from './serial-line.js';

export interface ModbusCounters {
  requests: number;
  replies: number;
  retries: number;
  timeouts: number;
  crc_errors: number;
  noise_bytes: number;
  exceptions: number;
}

export type ModbusRead =
  | { ok: true; data: Buffer }
  /** timeout: nothing valid came back; bad_frame: only corrupt frames came back; exception: the device refused. */
  | { ok: false; why: 'timeout' | 'bad_frame' | 'exception' | 'closed'; detail?: string };

/**
 * Modbus RTU master over one serial line (hand-written framing, see docs/hardware.md for why).
 * Each read is retried up to `retries` times on timeout or bad CRC; the reply is found by the
 * resynchronising scanner, so noise bytes before it do not lose it.
 */
export class ModbusMaster {
  readonly counters: ModbusCounters = { requests: 0, replies: 0, retries: 0, timeouts: 0, crc_errors: 0, noise_bytes: 0, exceptions: 0 };

  constructor(private readonly line: SerialLine, private readonly o: { timeoutMs: number; retries: number }) {}

  async read(unit: number, fn: number, address: number, quantity: number): Promise<ModbusRead> {
    const req = encodeReadRequest(unit, fn, address, quantity);
    const lengthAt = responseLength(unit, fn, quantity);
    let sawBad = false;
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) this.counters.retries++;
      this.counters.requests++;
      let crcErrors = 0;
      const take = (rx: Buffer): Take<Buffer> => {
        const s = scanRtu(rx, lengthAt);
        this.counters.noise_bytes += s.noise - s.crcErrors;
        this.counters.crc_errors += s.crcErrors;
        crcErrors += s.crcErrors;
        // After a corrupt reply we still wait out the timeout: retrying at once could take a late
        // answer to this request for the answer to the next one (RTU frames carry no transaction id).
        if (s.frame) return { done: true, value: s.frame, consumed: s.consumed };
        return { done: false, consumed: s.consumed };
      };
      const r = await this.line.transact(req, take, this.o.timeoutMs);
      if (!r.ok) {
        if (r.why === 'closed') return { ok: false, why: 'closed' };
        if (crcErrors > 0) sawBad = true;
        else this.counters.timeouts++;
        continue;
      }
      this.counters.replies++;
      const resp = decodeReadResponse(r.value);
      if (!resp.ok) {
        this.counters.exceptions++;
        return { ok: false, why: 'exception', detail: `exception code ${resp.exception}` };
      }
      return { ok: true, data: resp.data };
    }
    return { ok: false, why: sawBad ? 'bad_frame' : 'timeout' };
  }
}
