import { registerCommands } from './commands.js';
import { runProgram } from './program.js';

await runProgram({
  name: 'evcharging',
  description: 'EV charging network simulator: charging-point firmware, edge gateway, central controller, monitors and drivers',
  version: '0.1.0',
  register: registerCommands,
});
