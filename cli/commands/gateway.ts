import type { Command } from 'commander';

// Placeholder until this command is built.
export default function register(program: Command): void {
  program.command('gateway').description('run the edge gateway (MQTT broker, auth, MQTT-Kafka bridge) (not built yet)').action(() => {
    process.stderr.write('evcharging gateway: not built yet\n');
    process.exit(1);
  });
}
