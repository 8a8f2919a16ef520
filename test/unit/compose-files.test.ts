import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Command, type Option } from 'commander';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { registerCommands } from '../../cli/commands.js';
import { REPO_ROOT } from '../helpers/processes.js';

/**
 * Static validation of the Docker deployment (there is no Docker engine to run it here):
 * every compose file parses; every service of our image runs a real `evcharging` command
 * with real flags and environment keys — known keys are read off the CLI's registered
 * options, not kept by hand — whose values pass the CLI's own parsers; every `service:port`
 * reference names a service of the same file and a port it listens on; healthchecks ask the
 * services themselves; Kafka's advertised listener is parameterised.
 */

// --- the CLI, as commander registered it ---------------------------------------------------------
const program = new Command('evcharging');
registerCommands(program);
const commands = new Map<string, Command>();
(function walk(cmd: Command, prefix: string) {
  for (const sub of cmd.commands) {
    const name = prefix ? `${prefix} ${sub.name()}` : sub.name();
    commands.set(name, sub);
    walk(sub, name);
  }
})(program, '');
const ALL_ENV = new Set([...commands.values()].flatMap((c) => c.options.map((o) => o.envVar).filter(Boolean) as string[]));

// --- compose interpolation: ${X:-default} → default; ${X:?msg} / ${X} → a parameter ------------------
const PARAM = /\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}/g;
/** The value with defaults filled in, or undefined when it depends on a required variable. */
function resolveDefaults(v: string): string | undefined {
  let unresolved = false;
  const out = v.replace(PARAM, (m, _name: string, rest?: string) => {
    if (m.includes(':-') || /^\$\{[A-Z0-9_]+-/.test(m)) return rest ?? '';
    unresolved = true;
    return m;
  });
  return unresolved ? undefined : out;
}

type Service = {
  image?: string; build?: unknown; command?: unknown; environment?: Record<string, unknown> | string[];
  ports?: string[]; depends_on?: Record<string, unknown> | string[]; healthcheck?: { test?: unknown };
};
type ComposeFile = { services: Record<string, Service>; name?: string };

const DOCKER = path.join(REPO_ROOT, 'docker');
const composeFiles = fs.readdirSync(DOCKER).filter((f) => /^docker-compose.*\.ya?ml$/.test(f)).sort();
const load = (f: string) => parse(fs.readFileSync(path.join(DOCKER, f), 'utf8'), { merge: true }) as ComposeFile;
const isOurs = (s: Service) => s.build !== undefined || /evcharging/.test(String(s.image ?? ''));
const envOf = (s: Service): Record<string, string> => {
  if (!s.environment) return {};
  if (Array.isArray(s.environment)) return Object.fromEntries(s.environment.map((e) => [e.split('=')[0]!, e.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(s.environment).map(([k, v]) => [k, String(v)]));
};
const optionFor = (cmd: Command, flag: string) => cmd.options.find((o) => o.long === flag || o.short === flag);

/** Splits a command line into the subcommand and its flags, checking each flag against the CLI. */
function parseCommand(argv: string[]): { name: string; cmd: Command; flags: Map<Option, string | undefined>; problems: string[] } {
  const problems: string[] = [];
  let name = argv[0]!;
  let i = 1;
  while (i < argv.length && commands.has(`${name} ${argv[i]}`)) name = `${name} ${argv[i++]}`;
  const cmd = commands.get(name);
  if (!cmd) return { name, cmd: program, flags: new Map(), problems: [`\`evcharging ${name}\` is not a command of the CLI`] };
  const flags = new Map<Option, string | undefined>();
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) continue; // a positional argument
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const o = optionFor(cmd, flag);
    if (!o) { problems.push(`\`evcharging ${name}\` has no option ${flag}`); continue; }
    let value = inline;
    if (value === undefined && (o.required || (o.optional && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')))) value = argv[++i];
    flags.set(o, value);
  }
  return { name, cmd, flags, problems };
}

/** Runs the option's own parser (and choices) on a value, as the CLI would. */
function checkValue(o: Option, raw: string, where: string): string[] {
  const v = resolveDefaults(raw);
  if (v === undefined) return []; // set by the operator at deploy time
  try {
    if (o.argChoices && !o.argChoices.includes(v)) return [`${where}: ${JSON.stringify(v)} is not one of ${o.argChoices.join(', ')}`];
    o.parseArg?.(v, undefined as never);
    return [];
  } catch (err) {
    return [`${where}: ${JSON.stringify(v)} refused by the CLI: ${(err as Error).message}`];
  }
}

/** Ports a service listens on: its CLI port options (flag, env or default) — or Kafka's listeners. */
function listeningPorts(s: Service): Set<number> {
  const env = envOf(s);
  if (!isOurs(s)) {
    const listeners = env.KAFKA_LISTENERS ?? '';
    return new Set([...listeners.matchAll(/:\/\/[^:,]*:(\d+)/g)].map((m) => Number(m[1])));
  }
  const { cmd, flags } = parseCommand((s.command as string[]).map(String));
  const ports = new Set<number>();
  for (const o of cmd.options.filter((x) => x.long?.endsWith('-port'))) {
    const raw = flags.get(o) ?? (o.envVar ? env[o.envVar] : undefined) ?? (o.defaultValue !== undefined ? String(o.defaultValue) : undefined);
    const v = raw === undefined ? undefined : resolveDefaults(raw);
    if (v !== undefined && /^\d+$/.test(v)) ports.add(Number(v));
  }
  return ports;
}

/** Every HOST:PORT a string points at (URLs and bare host:port, lists too). */
function references(v: string): Array<{ host: string; port: number }> {
  return [...v.matchAll(/(?:^|[/,@\s])((?:\$\{[^}]+\})|[A-Za-z0-9_.-]+):(\d{2,5})(?=$|[/,\s])/g)].map((m) => ({ host: m[1]!, port: Number(m[2]) }));
}

describe('docker compose files', () => {
  it('exist: one machine, remote Kafka, and one file per lab-machine role', () => {
    expect(composeFiles).toEqual(expect.arrayContaining([
      'docker-compose.yml', 'docker-compose.remote-kafka.yml', 'docker-compose.lab-core.yml', 'docker-compose.lab-cps.yml', 'docker-compose.lab-drivers.yml',
    ]));
    expect(commands.size).toBeGreaterThan(5);
    expect(ALL_ENV.has('KAFKA_BOOTSTRAP')).toBe(true);
  });

  for (const file of composeFiles) {
    describe(file, () => {
      const doc = load(file);
      const services = doc.services ?? {};

      it('parses, and every service of our image runs a real evcharging command with real flags', () => {
        expect(Object.keys(services).length).toBeGreaterThan(0);
        const problems: string[] = [];
        for (const [name, s] of Object.entries(services).filter(([, s]) => isOurs(s))) {
          if (!Array.isArray(s.command) || !s.command.length) { problems.push(`${name}: command must be a non-empty list`); continue; }
          const parsed = parseCommand(s.command.map(String));
          problems.push(...parsed.problems.map((p) => `${name}: ${p}`));
          for (const [o, v] of parsed.flags) if (v !== undefined) problems.push(...checkValue(o, v, `${name}: ${o.long}`));
        }
        expect(problems).toEqual([]);
      });

      it('every environment variable of our services is a configuration key of that service\'s command', () => {
        const problems: string[] = [];
        for (const [name, s] of Object.entries(services).filter(([, s]) => isOurs(s))) {
          const { cmd, name: cmdName } = parseCommand((s.command as string[]).map(String));
          for (const [key, value] of Object.entries(envOf(s))) {
            const o = cmd.options.find((x) => x.envVar === key);
            if (!o) { problems.push(`${name}: ${key} is not a configuration key of \`evcharging ${cmdName}\`${ALL_ENV.has(key) ? ' (it belongs to another command)' : ''}`); continue; }
            problems.push(...checkValue(o, value, `${name}: ${key}`));
          }
        }
        expect(problems).toEqual([]);
      });

      it('service names and ports agree: references, published ports, depends_on, healthchecks', () => {
        const problems: string[] = [];
        const ports = new Map(Object.entries(services).map(([n, s]) => [n, listeningPorts(s)]));
        for (const [name, s] of Object.entries(services)) {
          const own = ports.get(name)!;
          const strings = isOurs(s) ? [...(s.command as unknown[]).map(String), ...Object.values(envOf(s))] : [];
          for (const str of strings) {
            for (const ref of references(str)) {
              if (ref.host.startsWith('${')) continue; // another machine, named by the operator
              if (services[ref.host]) {
                if (!ports.get(ref.host)!.has(ref.port)) problems.push(`${name}: ${ref.host}:${ref.port} but ${ref.host} listens on ${[...ports.get(ref.host)!].join(', ') || 'nothing'}`);
              } else if (ref.host === '127.0.0.1' || ref.host === 'localhost') {
                if (!own.has(ref.port)) problems.push(`${name}: ${ref.host}:${ref.port} is not one of its own ports`);
              } else {
                problems.push(`${name}: ${ref.host}:${ref.port} names no service of ${file} and is not a \${VARIABLE}`);
              }
            }
          }
          for (const p of s.ports ?? []) {
            const container = Number(String(p).split(':').at(-1)!.split('/')[0]);
            if (!own.has(container)) problems.push(`${name}: publishes ${p} but listens on ${[...own].join(', ')}`);
          }
          const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
          for (const d of deps) if (!services[d]) problems.push(`${name}: depends_on ${d}, which is not in ${file} (no depends_on across machines)`);
          const hc = s.healthcheck?.test;
          if (hc !== undefined) {
            const test = (Array.isArray(hc) ? hc : [String(hc)]).map(String);
            if (test.some((t) => /\b(nc|netcat|curl|wget)\b/.test(t))) problems.push(`${name}: healthcheck must not use nc/curl/wget`);
            if (isOurs(s)) {
              if (test.slice(0, 3).join(' ') !== 'CMD node docker/healthcheck.mjs') problems.push(`${name}: healthcheck must be node docker/healthcheck.mjs <its own /health or health port>`);
              const target = test[3] ?? '';
              const m = /^(?:http:\/\/127\.0\.0\.1:(\d+)\/health|tcp:\/\/127\.0\.0\.1:(\d+))$/.exec(target);
              if (!m) problems.push(`${name}: healthcheck target ${target} is not its own /health or health port`);
              else if (!own.has(Number(m[1] ?? m[2]))) problems.push(`${name}: healthcheck port ${m[1] ?? m[2]} is not one it listens on`);
            }
          }
          // Start-up ordering on health: whatever a service waits for must have a healthcheck.
          if (!Array.isArray(s.depends_on)) {
            for (const [d, cond] of Object.entries(s.depends_on ?? {})) {
              if ((cond as { condition?: string }).condition === 'service_healthy' && !services[d]?.healthcheck) problems.push(`${name}: waits for ${d} to be healthy, but ${d} has no healthcheck`);
            }
          }
        }
        expect(problems).toEqual([]);
      });

      const kafka = Object.entries(services).find(([, s]) => /(^|\/)kafka:/.test(String(s.image ?? '')));
      if (kafka) {
        it('runs Kafka in KRaft mode with internal and external listeners and a parameterised advertised host', () => {
          const [name, s] = kafka;
          const env = envOf(s);
          expect(env.KAFKA_PROCESS_ROLES).toMatch(/broker/);
          expect(env.KAFKA_PROCESS_ROLES).toMatch(/controller/);
          expect(Object.keys(env).some((k) => /ZOOKEEPER/.test(k))).toBe(false);
          const listeners = new Map([...env.KAFKA_LISTENERS!.matchAll(/([A-Z_]+):\/\/[^:,]*:(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
          const advertised = new Map([...env.KAFKA_ADVERTISED_LISTENERS!.matchAll(/([A-Z_]+):\/\/([^,]*):(\d+)/g)].map((m) => [m[1]!, { host: m[2]!, port: Number(m[3]) }]));
          expect([...listeners.keys()].sort()).toEqual(['CONTROLLER', 'EXTERNAL', 'INTERNAL']);
          expect(advertised.get('INTERNAL')).toEqual({ host: name, port: listeners.get('INTERNAL') });
          expect(advertised.get('EXTERNAL')!.host).toMatch(/^\$\{KAFKA_ADVERTISED_HOST[:}?-]/);
          expect(advertised.get('EXTERNAL')!.port).toBe(listeners.get('EXTERNAL'));
          expect(advertised.has('CONTROLLER')).toBe(false);
          expect(env.KAFKA_INTER_BROKER_LISTENER_NAME).toBe('INTERNAL');
          expect(env.KAFKA_CONTROLLER_LISTENER_NAMES).toBe('CONTROLLER');
          for (const l of listeners.keys()) expect(env.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP).toContain(`${l}:`);
          // Only the external listener is published, on its own port.
          expect((s.ports ?? []).map(String)).toEqual([`${listeners.get('EXTERNAL')}:${listeners.get('EXTERNAL')}`]);
          // Our services on this machine use the internal listener.
          for (const [n, o] of Object.entries(services).filter(([, x]) => isOurs(x))) {
            const b = envOf(o).KAFKA_BOOTSTRAP;
            if (b !== undefined) expect(b, n).toBe(`${name}:${listeners.get('INTERNAL')}`);
          }
        });
      }
    });
  }

  it('lab-machine role files hold only their role', () => {
    const kinds = (f: string) => new Set(Object.values(load(f).services).map((s) => (isOurs(s) ? String((s.command as string[])[0]) : 'kafka')));
    expect([...kinds('docker-compose.lab-core.yml')].sort()).toEqual(['central', 'gateway', 'kafka']);
    expect([...kinds('docker-compose.lab-cps.yml')].sort()).toEqual(['cp', 'monitor']);
    expect([...kinds('docker-compose.lab-drivers.yml')].sort()).toEqual(['driver']);
    expect(kinds('docker-compose.remote-kafka.yml').has('kafka')).toBe(false);
  });

  it('the request files the drivers use are in the image and name CPs of the deployment', () => {
    const cps = new Set(Object.values(load('docker-compose.yml').services).filter((s) => isOurs(s) && (s.command as string[])[0] === 'cp')
      .map((s) => { const c = s.command as string[]; return c[c.indexOf('--id') + 1]; }));
    for (const f of composeFiles) {
      for (const s of Object.values(load(f).services).filter((x) => isOurs(x) && (x.command as string[])[0] === 'driver')) {
        const c = s.command as string[];
        const file = c[c.indexOf('--requests') + 1]!;
        expect(fs.existsSync(path.join(REPO_ROOT, file)), file).toBe(true);
        for (const id of fs.readFileSync(path.join(REPO_ROOT, file), 'utf8').split('\n').filter(Boolean)) expect(cps.has(id), `${file}: ${id}`).toBe(true);
      }
    }
  });
});

describe('Dockerfile', () => {
  const text = fs.readFileSync(path.join(DOCKER, 'Dockerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));

  it('is multi-stage on a slim Node 20 base and runs as a non-root user with the CLI as entrypoint', () => {
    const froms = lines.filter((l) => /^FROM /i.test(l));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toMatch(/^FROM node:20[-.\w]*-slim\b/);
    const user = lines.findIndex((l) => /^USER /.test(l));
    expect(lines[user]).toMatch(/^USER (node|\d{4,})$/);
    const lastFrom = lines.map((l) => /^FROM /.test(l)).lastIndexOf(true);
    expect(user).toBeGreaterThan(lastFrom);
    expect(lines.find((l) => l.startsWith('ENTRYPOINT'))).toBe('ENTRYPOINT ["node", "bin/evcharging.js"]');
    // What runs is dist/ (compiled in the build stage), with production packages only.
    expect(text).toMatch(/RUN npm ci\b/);
    expect(text).toMatch(/npm run build/);
    expect(text).toMatch(/--omit=dev/);
    expect(lines).toContain('COPY --from=build /app/dist ./dist');
  });

  it('needs no BuildKit frontend: no `# syntax=` line (offline, BuildKit would pull one)', () => {
    expect(text).not.toMatch(/^#\s*syntax\s*=/m);
  });

  it('copies only paths that exist, and the build context leaves out what the image does not need', () => {
    for (const l of lines.filter((x) => /^COPY /.test(x) && !/--from=/.test(x))) {
      const parts = l.split(/\s+/).slice(1, -1);
      for (const p of parts) expect(fs.existsSync(path.join(REPO_ROOT, p)), p).toBe(true);
    }
    const ignore = fs.readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const p of ['node_modules', '.git', 'test']) expect(ignore).toContain(p);
    // Everything the CLI imports at run time is copied in.
    const copied = lines.filter((x) => /^COPY /.test(x)).map((x) => x.split(/\s+/)[1]);
    for (const dir of ['bin', 'cli', 'lib', 'protocol', 'firmware', 'gateway', 'central', 'driver', 'hw-profiles']) expect(copied).toContain(dir);
    // The build stage compiles what tsconfig.build.json includes: every one of those folders must be copied in (weather/ once was not).
    const build = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    for (const dir of build.include) expect(copied, `COPY ${dir} ./${dir}`).toContain(dir);
  });
});

describe('helper scripts', () => {
  for (const [script, command] of [['add-cp.sh', 'add-cp'], ['add-driver.sh', 'add-driver'], ['simulate-crash.sh', 'crash']] as const) {
    it(`${script} is valid bash, executable, and wraps \`evcharging ${command}\``, () => {
      const file = path.join(DOCKER, script);
      execFileSync('bash', ['-n', file]);
      expect(fs.statSync(file).mode & 0o111).not.toBe(0);
      expect(commands.has(command)).toBe(true);
      expect(fs.readFileSync(file, 'utf8')).toMatch(new RegExp(`evcharging ${command} `));
      // In compose mode they run services that exist in the one-machine and the lab files, with real flags.
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/compose run -d --no-deps --name \S+ (\S+) \\\n\s+(.*)/g)) {
        const service = m[1]!;
        expect(load('docker-compose.yml').services[service], service).toBeDefined();
        const argv = m[2]!.split(/\s+/).filter((a) => a !== '"$@"').map((a) => a.replace(/^"|"$/g, ''));
        expect(parseCommand(argv).problems).toEqual([]);
      }
    });
  }
});

describe('compose files need nothing exported to be inspected', () => {
  it('no ${VAR:?} parameter: `ps`, `logs` and `down` work in a new terminal', () => {
    for (const f of fs.readdirSync(DOCKER).filter((x) => x.endsWith('.yml'))) {
      expect(fs.readFileSync(path.join(DOCKER, f), 'utf8'), f).not.toMatch(/\$\{[A-Z0-9_]+:\?/);
    }
  });

  it("Kafka's log directory is the mounted volume (apache/kafka writes to /tmp otherwise)", () => {
    for (const f of ['docker-compose.yml', 'docker-compose.lab-core.yml']) {
      const kafka = load(f).services.kafka!;
      const mount = (kafka as { volumes?: string[] }).volumes?.[0]?.split(':')[1];
      expect(mount, f).toBe('/var/lib/kafka/data');
      expect(envOf(kafka).KAFKA_LOG_DIRS, f).toBe(mount);
    }
  });

  it("the CP machine's file uses the original's names: CENTRAL_HOST/PORT and GATEWAY_HOST say where machine 1 is", () => {
    const services = load('docker-compose.lab-cps.yml').services;
    for (const [name, s] of Object.entries(services)) {
      const env = envOf(s);
      if (name.startsWith('monitor-')) {
        expect(Object.keys(env)).toEqual(expect.arrayContaining(['CP_MONITOR_CP_ID', 'CP_MONITOR_CP_E_HOST', 'CP_MONITOR_CP_E_PORT', 'CENTRAL_HOST', 'CENTRAL_PORT', 'CP_MONITOR_HEALTH_INTERVAL', 'CP_MONITOR_LOG_LEVEL']));
      } else {
        expect(Object.keys(env)).toEqual(expect.arrayContaining(['CP_ENGINE_CP_ID', 'CP_ENGINE_HEALTH_PORT', 'GATEWAY_HOST']));
      }
    }
  });
});
