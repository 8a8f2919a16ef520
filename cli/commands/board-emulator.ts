import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('board-emulator').description('emulate serial relay board and energy meter on pty ports (not built yet)').action(() => {
    process.stderr.write('evcharging board-emulator: not built yet\n');
    process.exit(1);
  });
}
