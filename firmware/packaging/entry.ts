// Entry point of the self-contained firmware package (npm run bundle:firmware): only the commands
// a charging point needs on its own hardware, `cp` (the engine) and `fault`, with the same
// options, environment variables and exit codes as `evcharging`.
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../../cli/options.js';
import { ProfileError } from '../../hw-profiles/profile.js';
import cp from '../../cli/commands/cp.js';
import fault from '../../cli/commands/fault.js';

const program = new Command('evcharging-firmware')
  .description('charging-point firmware: the engine (cp) and its fault tool')
  .version(process.env.EVCHARGING_FIRMWARE_VERSION ?? '0.1.0')
  .showHelpAfterError(false)
  .exitOverride();
program.configureOutput({ outputError: (str, write) => write(`evcharging-firmware: ${str.replace(/^error: /, '')}`) });
cp(program);
fault(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(2);
  }
  if (err instanceof ConfigError || err instanceof ProfileError) {
    process.stderr.write(`evcharging-firmware: bad configuration: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
