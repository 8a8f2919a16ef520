import { Command, CommanderError } from 'commander';
import { ConfigError } from './options.js';
import { ProfileError } from '../hw-profiles/profile.js';
import { registerCommands } from './commands.js';

const program = new Command('evcharging')
  .description('EV charging network simulator: charging-point firmware, edge gateway, central controller, monitors and drivers')
  .version('0.1.0')
  .showHelpAfterError(false)
  .exitOverride();
program.configureOutput({ outputError: (str, write) => write(`evcharging: ${str.replace(/^error: /, '')}`) });

registerCommands(program);

/** Bad configuration: one clear line, exit code 2. */
function configFailure(message: string): never {
  process.stderr.write(`evcharging: bad configuration: ${message}\n`);
  process.exit(2);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
    process.exit(2);
  }
  if (err instanceof ConfigError || err instanceof ProfileError) configFailure(err.message);
  throw err;
}
