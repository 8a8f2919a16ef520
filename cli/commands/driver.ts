import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('driver').description('run a driver client (not built yet)').action(() => {
    process.stderr.write('evcharging driver: not built yet\n');
    process.exit(1);
  });
}
