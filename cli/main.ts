import { registerCommands } from './commands.js';
import { runProgram } from './program.js';
import { VERSION } from '../lib/paths.js';

await runProgram({
  name: 'evcharging',
  description: 'EV charging network simulator: charging-point firmware, edge gateway, central controller, monitors and drivers',
  version: VERSION,
  register: registerCommands,
});
