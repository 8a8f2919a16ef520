import type { Command } from 'commander';
import cp from './commands/cp.js';
import fault from './commands/fault.js';
import monitor from './commands/monitor.js';
import gateway from './commands/gateway.js';
import central from './commands/central.js';
import driver from './commands/driver.js';
import boardEmulator from './commands/board-emulator.js';
import network from './commands/network.js';
import fleet from './commands/fleet.js';
import weather from './commands/weather.js';

/**
 * Every subcommand of `evcharging`, one module each. A module registers its options
 * and imports the process it runs lazily, so `--help` and start-up stay fast.
 */
export function registerCommands(program: Command): void {
  for (const register of [network, gateway, central, cp, monitor, driver, fleet, fault, boardEmulator, weather]) register(program);
}
