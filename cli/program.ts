import { Command, CommanderError } from 'commander';
import { AppError } from '../lib/errors.js';

/**
 * Runs a commander program the way every entry point of ours does: help and version exit 0,
 * a usage error exits 2, an expected failure (lib/errors.ts) is one line `<name>: <label>: …` and
 * its code's exit status (bad configuration and a taken port: 2).
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
    if (err instanceof AppError) {
      process.stderr.write(`${o.name}: ${err.label}: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    throw err;
  }
}
