import { InvalidArgumentError, type Command } from 'commander';
import { ID_PATTERN } from '../../protocol/index.js';
import { opt, parseList, parseNonNegInt, parseNonNegNumber, parsePort, parsePositiveNumber } from '../options.js';

const CONTROL_PORT = 8099;

const parseCpArg = (v: string) => {
  if (!/^\d{1,5}$/.test(v) && !ID_PATTERN.test(v)) throw new InvalidArgumentError('expected a CP number (11) or id (CP-011)');
  return v;
};

/** A positional argument parsed as its flag would be, its error naming it. */
function positional<T>(name: string, parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try { return parse(v); } catch (err) { throw new InvalidArgumentError(`${name}: ${(err as Error).message}`); }
  };
}

function addControlOptions(cmd: Command): Command {
  return cmd
    .addOption(opt('--control-port <port>', 'control port of the running `evcharging up`', 'EVCHARGING_CONTROL_PORT', parsePort, CONTROL_PORT))
    .addOption(opt('--control-host <host>', 'host of the running `evcharging up`', 'EVCHARGING_CONTROL_HOST', undefined, '127.0.0.1'));
}

interface ControlOpts { controlPort: number; controlHost: string }

/** Runs one control call; a refusal or an unreachable network is one line on stderr and a non-zero exit. */
async function call<T>(o: ControlOpts, method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
  const { control, ControlError } = await import('../../network/control-client.js');
  try {
    return await control<T>(`http://${o.controlHost}:${o.controlPort}`, method, route, body);
  } catch (err) {
    if (!(err instanceof ControlError)) throw err;
    process.stderr.write(`evcharging: ${err.message}\n`);
    process.exit(err.exitCode);
  }
}

/**
 * `evcharging up` runs the whole network on this machine; `add-cp`, `add-driver`, `crash`,
 * `restart` and `status` act on it while it runs, through its control port.
 */
export default function register(program: Command): void {
  const up = program.command('up').description('run the whole network on this machine: gateway, central, CPs (engine + monitor each) and drivers');
  up
    .addOption(opt('--cps <n>', 'charging points to start (CP-001 …)', 'EVCHARGING_CPS', parseNonNegInt, 5))
    .addOption(opt('--drivers <n>', 'drivers to start (driver-alice, driver-bob …)', 'EVCHARGING_DRIVERS', parseNonNegInt, 2))
    .addOption(opt('--host <host>', 'address every component listens on and is reached at', 'EVCHARGING_HOST', undefined, '127.0.0.1'))
    .addOption(opt('--gateway-mqtt-port <port>', 'gateway MQTT port (0: any free port)', 'GATEWAY_MQTT_PORT', parsePort, 1883))
    .addOption(opt('--gateway-http-port <port>', 'gateway /health and /metrics port (0: any free port)', 'GATEWAY_HTTP_PORT', parsePort, 8090))
    .addOption(opt('--central-port <port>', 'central HTTP API and dashboard port (0: any free port)', 'CENTRAL_PORT', parsePort, 8000))
    .addOption(opt('--health-base-port <port>', 'CP-n gets health port base+n-1 (0: any free ports)', 'EVCHARGING_HEALTH_BASE_PORT', parsePort, 8001))
    .addOption(opt('--control-port <port>', 'control port for add-cp, crash, status … (127.0.0.1; 0: any free port)', 'EVCHARGING_CONTROL_PORT', parsePort, CONTROL_PORT))
    .addOption(opt('--kafka-bootstrap <list>', 'Kafka bootstrap servers (selects the kafka bus; default: the embedded bus)', 'KAFKA_BOOTSTRAP', parseList))
    .addOption(opt('--data-dir <dir>', 'central state and component logs (default: a new temporary directory)', 'EVCHARGING_DATA_DIR'))
    .addOption(opt('--admin-token <token>', 'central admin token (default: a fresh random one, printed)', 'CENTRAL_ADMIN_TOKEN'))
    .addOption(opt('--speed <x>', 'simulation speed of the engines (1 = real time)', 'EVCHARGING_SPEED', parsePositiveNumber, 60))
    .addOption(opt('--driver-wait-s <s>', 'drivers wait this long between requests', 'EVCHARGING_DRIVER_WAIT_S', parseNonNegNumber, 1))
    .addOption(opt('--max-charge-s <s>', 'drivers end a session after this long', 'EVCHARGING_MAX_CHARGE_S', parsePositiveNumber, 8))
    .addOption(opt('--stop-timeout-s <s>', 'SIGKILL a component this long after SIGTERM', 'EVCHARGING_STOP_TIMEOUT_S', parsePositiveNumber, 5))
    .addOption(opt('--start-timeout-s <s>', 'give up when gateway or central is not healthy after this long', 'EVCHARGING_START_TIMEOUT_S', parsePositiveNumber, 60))
    .addOption(opt('--weather <source>', 'run the weather service: sim (built-in weather), openweather (OPENWEATHER_API_KEY) or off', 'EVCHARGING_WEATHER', undefined, 'off')
      .choices(['off', 'sim', 'openweather']))
    .addOption(opt('--child-logs <level>', 'echo component log lines at or above this level (all lines go to <data-dir>/logs)', 'EVCHARGING_CHILD_LOGS', undefined, 'warn')
      .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
    .action(async (o) => {
      const { createLogger } = await import('../../lib/log.js');
      const { runUp } = await import('../../network/up.js');
      await runUp(o, createLogger('up'));
    });

  const addCp = program.command('add-cp').description('add a charging point (engine + monitor) to the running network: add-cp 12 75.0 0.38 or add-cp 12 --kw 75 --price 0.38')
    .argument('<cp>', 'CP number (11 → CP-011) or id', parseCpArg)
    .argument('[kw]', 'rated power, kW (as --kw)', positional('kw', parsePositiveNumber))
    .argument('[price]', 'price, €/kWh (as --price)', positional('price', parseNonNegNumber))
    .addOption(opt('--kw <kw>', 'rated power (default: the profile\'s)', 'EVCHARGING_ADD_CP_KW', parsePositiveNumber))
    .addOption(opt('--price <eur>', 'price in €/kWh (default: the profile\'s)', 'EVCHARGING_ADD_CP_PRICE', parseNonNegNumber))
    .addOption(opt('--profile <name>', 'hardware profile', 'EVCHARGING_ADD_CP_PROFILE'));
  addControlOptions(addCp).action(async (id: string, kwArg: number | undefined, priceArg: number | undefined, o: ControlOpts & { kw?: number; price?: number; profile?: string }) => {
    const kw = o.kw ?? kwArg;
    const price = o.price ?? priceArg;
    const cp = await call<{ id: string; healthPort: number }>(o, 'POST', '/cp', { id, kw, price, profile: o.profile });
    process.stdout.write(`added ${cp.id} (health port ${cp.healthPort}) and monitor-${cp.id}\n`);
  });

  const addDriver = program.command('add-driver')
    .description('add a driver to the running network (frank → driver-frank); with a port (add-driver frank 8105) it is driven from its browser app there')
    .argument('<name>', 'driver name or id')
    .argument('[port]', 'serve the driver app on this port (as --http)', positional('port', parsePort))
    .addOption(opt('--http <port>', 'serve the driver app on this port', 'EVCHARGING_ADD_DRIVER_HTTP', parsePort));
  addControlOptions(addDriver).action(async (name: string, portArg: number | undefined, o: ControlOpts & { http?: number }) => {
    const port = o.http ?? portArg;
    const d = await call<{ id: string }>(o, 'POST', '/driver', { id: name, ...(port !== undefined ? { http_port: port } : {}) });
    process.stdout.write(port !== undefined ? `added ${d.id}: open http://localhost:${port}/\n` : `added ${d.id}\n`);
  });

  const crash = program.command('crash').description('SIGKILL a component of the running network (a random one when none is named)')
    .argument('[component]', 'component name as `status` shows it (gateway, central, CP-002, monitor-CP-002, driver-alice) or the original\'s (ev-cp-e-2, ev-cp-m-2, ev-driver-alice)');
  addControlOptions(crash).action(async (name: string | undefined, o: ControlOpts) => {
    const r = await call<{ name: string; pid: number }>(o, 'POST', '/crash', name ? { name } : {});
    process.stdout.write(`crashed ${r.name} (SIGKILL pid ${r.pid})\n`);
  });

  const restart = program.command('restart').description('restart a component of the running network (stopped gracefully first if it runs)')
    .argument('<component>', 'component name as `status` shows it');
  addControlOptions(restart).action(async (name: string, o: ControlOpts) => {
    const r = await call<{ name: string; pid?: number }>(o, 'POST', '/restart', { name });
    process.stdout.write(`restarted ${r.name} (pid ${r.pid ?? '-'})\n`);
  });

  const status = program.command('status').description('every component of the running network: pid, state, health')
    .addOption(opt('--json [bool]', 'print JSON instead of a table', 'EVCHARGING_STATUS_JSON', (v: string) => /^(1|true|yes|on|)$/i.test(v)));
  addControlOptions(status).action(async (o: ControlOpts & { json?: boolean }) => {
    const { statusTable } = await import('../../network/status-table.js');
    const r = await call<{ network: Record<string, unknown>; components: Parameters<typeof statusTable>[0] }>(o, 'GET', '/status');
    if (o.json === true) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else process.stdout.write(`dashboard ${String(r.network.dashboard)}  bus ${String(r.network.bus)}\n\n${statusTable(r.components)}`);
  });
}
