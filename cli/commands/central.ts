import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('central').description('run the central controller (HTTP API and dashboard) (not built yet)').action(() => {
    process.stderr.write('evcharging central: not built yet\n');
    process.exit(1);
  });
}
