import type { Command } from 'commander';
import { FAULT_KINDS } from '../../protocol/index.js';
import { ConfigError, opt, parseBool, parseHostPort } from '../options.js';

interface FaultCliOptions { engine?: { host: string; port: number }; kind?: string; repair?: boolean; timeoutMs?: string }

/** `evcharging fault`: inject or repair a simulated hardware fault through an engine's health port. */
export default function register(program: Command): void {
  program.command('fault')
    .description('inject or repair a simulated hardware fault on a running engine (through its health port)')
    .addOption(opt('--engine <host:port>', "the engine's health port", 'FAULT_ENGINE', parseHostPort))
    .addOption(opt('--kind <kind>', `fault to inject (${FAULT_KINDS.join(', ')}); with --repair, the one to clear`, 'FAULT_KIND'))
    .addOption(opt('--repair [bool]', 'clear the fault (all of them without --kind)', 'FAULT_REPAIR', parseBool))
    .action(async (o: FaultCliOptions) => {
      if (!o.engine) throw new ConfigError('--engine HOST:PORT (FAULT_ENGINE) is required');
      const repair = o.repair === true || (o.repair as unknown) === '';
      if (!repair && !o.kind) throw new ConfigError('give --kind <kind> to inject a fault, or --repair');
      if (o.kind && !(FAULT_KINDS as readonly string[]).includes(o.kind)) throw new ConfigError(`--kind: expected one of ${FAULT_KINDS.join(', ')}`);
      const { healthRequest } = await import('../../firmware/health-client.js');
      const line = repair ? `REPAIR${o.kind ? ` ${o.kind}` : ''}` : `FAULT ${o.kind}`;
      try {
        const reply = await healthRequest(o.engine.host, o.engine.port, line);
        process.stdout.write(`${reply}\n`);
        process.exit(reply.startsWith('OK') ? 0 : 1);
      } catch (err) {
        process.stderr.write(`evcharging fault: ${o.engine.host}:${o.engine.port}: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
