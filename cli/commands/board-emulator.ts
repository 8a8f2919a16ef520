import { InvalidArgumentError, type Command } from 'commander';
import { ConfigError, opt, parseNonNegNumber, parsePort, parsePositiveInt, parsePositiveNumber } from '../options.js';

interface BoardEmulatorCliOptions {
  relayPort?: string; meterPort?: string; baudRate: number; controlHost: string; controlPort: number;
  channels: number; meterUnit: number; inputUnit: number;
  vehicleKw: number; batteryKwh: number; socStart: number; socTarget: number; speed: number;
}

const parseFraction = (v: string) => {
  const n = parseNonNegNumber(v);
  if (n > 1) throw new InvalidArgumentError('expected a fraction 0..1');
  return n;
};

/** `evcharging board-emulator`: the serial hardware (relay board, meter, vehicle) on the far end of two ptys. */
export default function register(program: Command): void {
  program.command('board-emulator')
    .description('play an LCUS relay board and an Eastron SDM Modbus meter (with a vehicle) on serial ports, with injectable faults')
    .addOption(opt('--relay-port <path>', 'serial port of the relay board side', 'BOARD_RELAY_PORT'))
    .addOption(opt('--meter-port <path>', 'serial port of the meter side (Modbus RTU bus)', 'BOARD_METER_PORT'))
    .addOption(opt('--baud-rate <baud>', 'baud rate of both ports', 'BOARD_BAUD_RATE', parsePositiveInt, 9600))
    .addOption(opt('--control-host <host>', 'address of the fault-injection control port (HTTP)', 'BOARD_CONTROL_HOST', undefined, '127.0.0.1'))
    .addOption(opt('--control-port <port>', 'fault-injection control port (0 = any free port, printed at start)', 'BOARD_CONTROL_PORT', parsePort, 0))
    .addOption(opt('--channels <n>', 'relay channels on the board (the vehicle is on channel 1)', 'BOARD_CHANNELS', parsePositiveInt, 1))
    .addOption(opt('--meter-unit <id>', 'Modbus unit id of the meter', 'BOARD_METER_UNIT', parsePositiveInt, 1))
    .addOption(opt('--input-unit <id>', 'Modbus unit id of the digital input module (fault contact on input 0)', 'BOARD_INPUT_UNIT', parsePositiveInt, 2))
    .addOption(opt('--vehicle-kw <kw>', 'power the vehicle draws while the relay is closed', 'BOARD_VEHICLE_KW', parsePositiveNumber, 7.4))
    .addOption(opt('--battery-kwh <kwh>', 'vehicle battery capacity', 'BOARD_BATTERY_KWH', parsePositiveNumber, 60))
    .addOption(opt('--soc-start <fraction>', 'state of charge of a vehicle when it plugs in', 'BOARD_SOC_START', parseFraction, 0.2))
    .addOption(opt('--soc-target <fraction>', 'state of charge at which the vehicle stops drawing', 'BOARD_SOC_TARGET', parseFraction, 0.9))
    .addOption(opt('--speed <factor>', 'simulated vehicle time = wall time x factor', 'BOARD_SPEED', parsePositiveNumber, 1))
    .action(async (o: BoardEmulatorCliOptions) => {
      if (!o.relayPort) throw new ConfigError('--relay-port (BOARD_RELAY_PORT) is required');
      if (!o.meterPort) throw new ConfigError('--meter-port (BOARD_METER_PORT) is required');
      if (o.channels > 8) throw new ConfigError('--channels: LCUS boards have 1 to 8 channels');
      if (o.meterUnit > 247 || o.inputUnit > 247 || o.meterUnit === o.inputUnit) throw new ConfigError('--meter-unit/--input-unit: two different Modbus unit ids 1-247');
      if (o.socStart >= o.socTarget) throw new ConfigError('--soc-start must be below --soc-target');
      const { serve } = await import('../../lib/serve.js');
      const { listenErrorOf } = await import('../../lib/errors.js');
      const { startEmulator } = await import('../../firmware/emulator/emulator.js');
      await serve('board-emulator', async (log) => {
        const e = await startEmulator({
          relayPort: o.relayPort!, meterPort: o.meterPort!, baudRate: o.baudRate, controlHost: o.controlHost, controlPort: o.controlPort, log,
          board: { channels: o.channels, meterUnit: o.meterUnit, inputUnit: o.inputUnit, vehicleKw: o.vehicleKw, batteryKwh: o.batteryKwh, socStart: o.socStart, socTarget: o.socTarget, speed: o.speed },
        }).catch((err: unknown) => { throw listenErrorOf(err, `--control-port ${o.controlPort} on ${o.controlHost}`) ?? err; });
        log.info({ relay_port: o.relayPort, meter_port: o.meterPort, control_url: `http://${o.controlHost}:${e.controlPort}` }, `board emulator ready, control port ${e.controlPort}`);
        return e;
      });
    });
}
