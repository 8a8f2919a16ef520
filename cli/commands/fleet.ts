import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('fleet').description('run many simulated CPs in one process (not built yet)').action(() => {
    process.stderr.write('evcharging fleet: not built yet\n');
    process.exit(1);
  });
}
