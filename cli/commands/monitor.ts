import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('monitor').description('watch one engine health port and report to central (not built yet)').action(() => {
    process.stderr.write('evcharging monitor: not built yet\n');
    process.exit(1);
  });
}
