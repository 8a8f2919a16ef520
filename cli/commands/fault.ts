import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('fault').description('inject or repair a simulated hardware fault on a running engine (not built yet)').action(() => {
    process.stderr.write('evcharging fault: not built yet\n');
    process.exit(1);
  });
}
