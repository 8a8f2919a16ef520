import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('up').description('run the whole network (not built yet)').action(() => {
    process.stderr.write('evcharging network: not built yet\n');
    process.exit(1);
  });
}
