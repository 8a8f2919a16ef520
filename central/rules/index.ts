import type { BusMessage } from '../../protocol/index.js';
import { Acc, heardFromGateway } from './common.js';
import { onAck, onAnnounce, onGatewayBeat, onSessionEnd, onStatus, onTelemetry } from './cp.js';
import { onDriver } from './driver.js';
import { onAdmin, onBusUp, onMonitorReport, onTick } from './ops.js';
import type { Input, Key, Result, RulesOptions, RulesState } from './types.js';

/**
 * Central's rules as one pure function, the same shape as the firmware's `step`: the state
 * (durable and in-memory, read only), one input and the time in; the journal events, memory
 * changes, messages to publish and notes (logs, counters, recent events) out. The controller
 * (central/controller.ts) carries them out; each input is unit-tested in
 * test/unit/central-rules*.test.ts.
 */
export function handle(state: RulesState, input: Input, now: number, opts: RulesOptions): Result {
  // A message from the bus proves the bus is up, whatever the last tick saw.
  const fromBus = input.t !== 'monitor_report' && input.t !== 'admin' && input.t !== 'tick';
  const back = fromBus && !state.mem.busUp;
  const a = new Acc(back ? { durable: state.durable, mem: { ...state.mem, busUp: true, busBackAt: now } } : state, now, opts);
  if (back) {
    a.remember({ m: 'bus', up: true, at: now });
    // A return (not the first connection, after which central.ts sends bus_up): unsent tickets go again.
    if (state.mem.busBackAt !== state.mem.bootAt && input.t !== 'bus_up') {
      a.log('info', 'bus back: silences and deadlines count from now');
      onBusUp(a);
    }
  }
  if (input.t === 'announce' || input.t === 'status' || input.t === 'ack' || input.t === 'session_end' || input.t === 'telemetry') heardFromGateway(a, input.m.gw);
  switch (input.t) {
    case 'announce': onAnnounce(a, input.m, input.key); break;
    case 'status': onStatus(a, input.m, input.key); break;
    case 'ack': onAck(a, input.m, input.key); break;
    case 'session_end': onSessionEnd(a, input.m, input.key); break;
    case 'gateway_beat': onGatewayBeat(a, input.m, input.key); break;
    case 'telemetry': onTelemetry(a, input.m, input.key); break;
    case 'driver': onDriver(a, input.m, input.key); break;
    case 'monitor_report': onMonitorReport(a, input.r); break;
    case 'admin': onAdmin(a, input.cp_id, input.stop); break;
    case 'tick': onTick(a, input.busUp); break;
    case 'bus_up': onBusUp(a); break;
  }
  return a.done();
}

/** A cp.status message as its rules input. */
export function cpStatusInput(m: BusMessage<'cp.status'>, key?: Key): Input {
  switch (m.type) {
    case 'announce': return { t: 'announce', m, key };
    case 'status': return { t: 'status', m, key };
    case 'ack': return { t: 'ack', m, key };
    case 'session_end': return { t: 'session_end', m, key };
    case 'gateway': return { t: 'gateway_beat', m, key };
  }
}

export { endReasonOf, reachOf, type Reach } from './common.js';
export { DRIVER_REJECT_REASONS } from './driver.js';
export * from './types.js';
export { sweepEveryMs, TOLD_PER_TICK } from './ops.js';
