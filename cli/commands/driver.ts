import type { Command } from 'commander';
import { addHttpLimitOptions, httpLimitsFrom } from '../../lib/http-limits.js';
import {
  addBusOptions, addEnvAliases, busConfigFrom, CENTRAL_ALIASES, centralFromEnv, ConfigError, GATEWAY_ALIASES, gatewayFromEnv, opt, parseId, parseNonNegNumber, parsePort, parsePositiveInt, parsePositiveNumber, parseUrl,
  type BusOptionValues,
} from '../options.js';

interface DriverCliOptions extends BusOptionValues {
  id?: string; requests?: string; waitS: number; maxChargeS?: number; requestTimeoutMs: number; http?: number; httpHost: string; central: string;
}

/** `evcharging driver`: a driver client on the bus (request file, terminal, or HTTP). */
export default function register(program: Command): void {
  const cmd = program.command('driver')
    .description('run a driver client: request charges at CPs in turn, print every update, end with a summary')
    .addOption(opt('--id <id>', 'driver id (bus key and consumer group)', 'DRIVER_ID', parseId))
    .addOption(opt('--requests <file>', 'request file: one CP id a line (# comments)', 'DRIVER_REQUESTS_FILE'))
    .addOption(opt('--wait-s <s>', 'seconds between one session and the next request', 'DRIVER_WAIT_SECONDS', parseNonNegNumber, 4))
    .addOption(opt('--max-charge-s <s>', 'send STOP after this many seconds of charging', 'DRIVER_MAX_CHARGE_SECONDS', parsePositiveNumber))
    .addOption(opt('--request-timeout-ms <ms>', 'give up on a request (or a silent session) after this long', 'DRIVER_REQUEST_TIMEOUT_MS', parsePositiveInt, 10_000))
    .addOption(opt('--http <port>', 'serve the driver app (a page at /) and HTTP API on this port (keeps running)', 'DRIVER_HTTP_PORT', parsePort))
    .addOption(opt('--http-host <host>', 'address the driver app listens on; it has no authentication, so loopback by default (0.0.0.0 to reach it from a phone on a trusted network)', 'DRIVER_HTTP_HOST', undefined, '127.0.0.1'))
    .addOption(opt('--central <url>', "central's HTTP URL (for GET /charging-points)", 'CENTRAL_HTTP_URL', parseUrl(['http', 'https']), 'http://localhost:8000'));
  addHttpLimitOptions(cmd, 'DRIVER_');
  // CENTRAL_HOST/CENTRAL_PORT say where central is; GATEWAY_HOST where the embedded bus is (as on a CP machine).
  addEnvAliases(addBusOptions(cmd), [...CENTRAL_ALIASES, ...GATEWAY_ALIASES], (a) => ({ ...centralFromEnv(a), ...gatewayFromEnv(a, 'busMqtt') }));
  cmd.action(async (o: DriverCliOptions) => {
    let limits;
    try { limits = httpLimitsFrom(o as unknown as Record<string, unknown>); } catch (err) { throw new ConfigError((err as Error).message); }
    if (!o.id) throw new ConfigError('--id (DRIVER_ID) is required');
    const interactive = !o.requests && process.stdin.isTTY === true;
    if (!o.requests && !interactive && o.http === undefined) {
      throw new ConfigError('--requests (DRIVER_REQUESTS_FILE) is required unless stdin is a terminal or --http is set');
    }
    const busConfig = busConfigFrom(o, o.id);
    const { readFile } = await import('node:fs/promises');
    const { parseRequestFile } = await import('../../driver/request-file.js');
    let file: ReturnType<typeof parseRequestFile> | undefined;
    if (o.requests) {
      let text: string;
      try { text = await readFile(o.requests, 'utf8'); } catch (err) {
        throw new ConfigError(`--requests ${o.requests}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      file = parseRequestFile(text);
    }

    const { createLogger } = await import('../../lib/log.js');
    const { onShutdown } = await import('../../lib/lifecycle.js');
    const { createBus } = await import('../../bus/create.js');
    const { createDriver } = await import('../../driver/driver.js');
    const log = createLogger('driver', { driver_id: o.id });
    const id = o.id;
    const out = (line: string) => { process.stdout.write(`${line}\n`); };
    const driver = createDriver({
      driverId: id, bus: createBus(busConfig, log), log, out,
      waitMs: o.waitS * 1000, maxChargeMs: o.maxChargeS !== undefined ? o.maxChargeS * 1000 : undefined, requestTimeoutMs: o.requestTimeoutMs,
    });
    // Printed when the file is done and again at shutdown if sessions (e.g. over HTTP) came since.
    let lastSummary = '';
    const summarise = () => { const s = driver.summary(); if (s !== lastSummary) { lastSummary = s; out(s); } };
    let http: { close: () => Promise<void> } | undefined;
    // Closers run last-first: summary, then HTTP, then the bus.
    onShutdown(log, [() => driver.close(), () => http?.close(), summarise], 3 * o.requestTimeoutMs + 5_000); // close() waits for an answer, stops a running session and waits for its end

    if (file) {
      for (const bad of file.invalid) out(`${id} ${o.requests} line ${bad.line}: ${bad.reason}: ${JSON.stringify(bad.text)} (skipped)`);
      driver.noteInvalidLines(file.invalid.length);
    }
    if (o.http !== undefined) {
      const { startDriverHttp } = await import('../../driver/http.js');
      try {
        const h = await startDriverHttp({ driverId: id, driver, centralUrl: o.central, port: o.http, host: o.httpHost, limits, log });
        http = h;
        log.info({ port: h.port, app: `http://${o.httpHost === '0.0.0.0' ? 'localhost' : o.httpHost}:${h.port}/` }, 'driver HTTP API listening');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE' || code === 'EACCES') throw new ConfigError(`--http ${o.http}: ${code === 'EADDRINUSE' ? 'already in use' : 'permission denied'}`);
        throw err;
      }
    }

    await driver.start();
    log.info({ bus: busConfig.kafkaBootstrap ? 'kafka' : 'embedded', requests: file?.requests.length ?? 0 }, 'driver ready');
    await driver.query();

    if (file) {
      const runs = file.requests.map((r) => driver.submit(r.cpId).done);
      await Promise.all(runs);
      await driver.idle(); // a session taken back on start-up is followed to its end, even with an empty file
    } else if (interactive) {
      const { runInteractive } = await import('../../driver/interactive.js');
      await runInteractive(driver, out);
    }
    if (file || interactive) summarise();
    if (o.http === undefined) {
      await driver.close();
      process.exit(0);
    }
  });
}
