import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('cp').description('run one charging-point engine (firmware loop, HAL, health port, MQTT) (not built yet)').action(() => {
    process.stderr.write('evcharging cp: not built yet\n');
    process.exit(1);
  });
}
