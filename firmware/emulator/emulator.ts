import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Logger } from '../../lib/log.js';
import { Board, type BoardOptions } from './board.js';
import { startControlServer } from './control.js';
import { EmulatorPort } from './port.js';

export interface EmulatorOptions {
  relayPort: string;
  meterPort: string;
  baudRate: number;
  board: Partial<BoardOptions>;
  controlHost: string;
  controlPort: number;
  log: Logger;
}

export interface Emulator {
  board: Board;
  controlPort: number;
  close(): Promise<void>;
}

/** The board emulator process: relay board + meter bus on two serial ports, vehicle physics, control port. */
export async function startEmulator(o: EmulatorOptions): Promise<Emulator> {
  const board = new Board(o.board);
  const { log } = o;
  const relay = new EmulatorPort({ name: 'relay', path: o.relayPort, baudRate: o.baudRate, log, onData: (c) => board.relayRx(c, Date.now()) });
  const meter = new EmulatorPort({ name: 'meter', path: o.meterPort, baudRate: o.baudRate, log, onData: (c) => board.meterRx(c, Date.now()) });
  let relaysBefore = board.relays.join();
  let fullBefore = false;
  // Physics and a log line whenever the relay or the vehicle changes.
  const physics = setInterval(() => {
    board.advance(Date.now());
    const st = board.state();
    if (st.relays.join() !== relaysBefore) { relaysBefore = st.relays.join(); log.info({ relays: st.relays }, `relay ${st.relays[0] ? 'closed' : 'open'}`); }
    if (st.vehicle_full !== fullBefore) { fullBefore = st.vehicle_full; if (fullBefore) log.info({ energy_kwh: st.energy_kwh }, 'vehicle full, stops drawing'); }
  }, 100);
  await Promise.all([relay.start(), meter.start()]);
  const state = () => ({ ...board.state(), relay_port_open: relay.isOpen, meter_port_open: meter.isOpen });
  let server: http.Server;
  try {
    server = await startControlServer({
      board, host: o.controlHost, port: o.controlPort, log, state,
      noiseNow: (line, n) => (line === 'meter' ? meter : relay).write(randomBytes(n)),
    });
  } catch (err) {
    clearInterval(physics);
    await Promise.all([relay.close(), meter.close()]);
    throw err;
  }
  const controlPort = (server.address() as { port: number }).port;
  return {
    board, controlPort,
    async close() {
      clearInterval(physics);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await Promise.all([relay.close(), meter.close()]);
    },
  };
}
