// Entry point of the self-contained firmware package (npm run bundle:firmware): only the commands
// a charging point needs on its own hardware, `cp` (the engine) and `fault`, with the same
// options, environment variables and exit codes as `evcharging`.
import { runProgram } from './program.js';
import { VERSION } from '../lib/paths.js';
import cp from './commands/cp.js';
import fault from './commands/fault.js';

await runProgram({
  name: 'evcharging-firmware',
  description: 'charging-point firmware: the engine (cp) and its fault tool',
  version: process.env.EVCHARGING_FIRMWARE_VERSION ?? VERSION,
  register: (program) => { cp(program); fault(program); },
});
