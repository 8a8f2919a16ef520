import { Command, CommanderError } from 'commander';
import { ConfigError } from './options.js';
import { ProfileError } from '../hw-profiles/profile.js';

/**
 * Runs a commander program the way every entry point of ours does: help and version exit 0,
 * a usage error exits 2, bad configuration is one line `<name>: bad configuration: …` and exit 2.
 * Shared by the `evcharging` CLI and the firmware package's entry.
 */
export async function runProgram(o: { name: string; description: string; version: string; register: (program: Command) => void }): Promise<void> {
  const program = new Command(o.name).description(o.description).version(o.version).showHelpAfterError(false).exitOverride();
  program.configureOutput({ outputError: (str, write) => write(`${o.name}: ${str.replace(/^error: /, '')}`) });
  o.register(program);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
      process.exit(2);
    }
    if (err instanceof ConfigError || err instanceof ProfileError) {
      process.stderr.write(`${o.name}: bad configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
