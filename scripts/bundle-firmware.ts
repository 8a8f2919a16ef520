// npm run bundle:firmware [-- --profile NAME|FILE] [--out DIR]
// Builds the self-contained charging-point firmware package for a Raspberry Pi (arm64, armhf)
// and x64 Linux: the engine bundled into plain JavaScript by esbuild, the serialport package with
// only the Linux prebuilt bindings, the chosen hardware profile, a systemd unit and an install
// script; as a folder and a .tar.gz. The only thing the target needs is Node.js >= 20.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { loadProfile } from '../hw-profiles/profile.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PACKAGING = path.join(ROOT, 'firmware/packaging');
const NAME = 'evcharging-firmware';
/** Serial bindings kept: Raspberry Pi 64-bit (arm64), 32-bit (armhf: armv6/armv7) and x64 for testing. */
const PREBUILDS = ['linux-arm64', 'linux-arm', 'linux-x64'];
/** Needed only to compile the binding from source, never at run time. */
const BUILD_ONLY = new Set(['node-addon-api']);

function fail(msg: string): never {
  process.stderr.write(`bundle-firmware: ${msg}\n`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: { profile: { type: 'string', default: 'serial-lcus-sdm120' }, out: { type: 'string', default: path.join(ROOT, 'dist/firmware') } },
});

let profile;
try {
  profile = loadProfile(args.profile!);
} catch (err) {
  fail(`--profile: ${(err as Error).message}`);
}
const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const outRoot = path.resolve(args.out!);
const pkg = path.join(outRoot, NAME);
fs.rmSync(pkg, { recursive: true, force: true });
fs.mkdirSync(pkg, { recursive: true });

// 1. JavaScript. The serial HAL is its own entry named serial.js beside the engine: the HAL
//    factory loads it by that name at run time, only for serial profiles.
const started = Date.now();
await build({
  absWorkingDir: ROOT,
  entryPoints: { main: 'cli/firmware-entry.ts', serial: 'firmware/hal/serial.ts' },
  outdir: pkg,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.js' },
  chunkNames: 'lib-[hash]',
  external: ['serialport', '@serialport/*', 'bufferutil', 'utf-8-validate'],
  // Bundled CommonJS packages (pino, mqtt's dependencies) call require(): give ESM one.
  banner: { js: "import { createRequire as __evcCreateRequire } from 'node:module'; const require = __evcCreateRequire(import.meta.url);" },
  define: { 'process.env.EVCHARGING_FIRMWARE_VERSION': JSON.stringify(version), 'process.env.EVCHARGING_VERSION': JSON.stringify(version) },
  legalComments: 'none',
  minify: true,
  keepNames: true,
  logLevel: 'warning',
});
const bundleMs = Date.now() - started;

// 2. serialport and what it needs at run time, with only the Linux bindings we ship.
const nm = path.join(ROOT, 'node_modules');
const closure = new Set<string>();
(function walk(name: string) {
  if (closure.has(name) || BUILD_ONLY.has(name)) return;
  const dir = path.join(nm, name);
  if (!fs.existsSync(path.join(dir, 'package.json'))) fail(`node_modules/${name} is missing: run npm ci first`);
  closure.add(name);
  const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dep of Object.keys(pj.dependencies ?? {})) walk(dep);
})('serialport');
for (const name of closure) fs.cpSync(path.join(nm, name), path.join(pkg, 'node_modules', name), { recursive: true, dereference: true });
const bindings = path.join(pkg, 'node_modules/@serialport/bindings-cpp');
for (const d of fs.readdirSync(path.join(bindings, 'prebuilds'))) if (!PREBUILDS.includes(d)) fs.rmSync(path.join(bindings, 'prebuilds', d), { recursive: true });
for (const p of PREBUILDS) if (!fs.existsSync(path.join(bindings, 'prebuilds', p))) fail(`serialport prebuilt binding ${p} is missing in node_modules`);
for (const d of ['src', 'binding.gyp']) fs.rmSync(path.join(bindings, d), { recursive: true, force: true });

// 3. The profile, the service, the install script and their notes.
fs.copyFileSync(profile.name === args.profile ? path.join(ROOT, 'hw-profiles', `${profile.name}.json`) : path.resolve(args.profile!), path.join(pkg, 'profile.json'));
for (const f of ['evcharging-firmware.service', 'firmware.env', 'install.sh', 'README.md']) fs.copyFileSync(path.join(PACKAGING, f), path.join(pkg, f));
fs.chmodSync(path.join(pkg, 'install.sh'), 0o755);
fs.writeFileSync(path.join(pkg, 'package.json'), `${JSON.stringify({ name: NAME, version, private: true, type: 'module', engines: { node: '>=20' }, bin: { [NAME]: 'main.js' } }, null, 2)}\n`);
const gitCommit = (() => { try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { return 'unknown'; } })();
fs.writeFileSync(path.join(pkg, 'MANIFEST.json'), `${JSON.stringify({
  name: NAME, version, commit: gitCommit, built_at: new Date().toISOString(), profile: profile.name, hal: profile.hal.driver,
  node: '>=20', serial_bindings: PREBUILDS, run: 'node main.js cp --id CP-001 --mqtt mqtt://gateway:1883 --health-port 8001 --profile ./profile.json',
}, null, 2)}\n`);

// 4. The tarball.
const tarball = path.join(outRoot, `${NAME}-${version}-${profile.name}.tar.gz`);
execFileSync('tar', ['-czf', tarball, '-C', outRoot, NAME]);

const size = (p: string): number => fs.statSync(p).isDirectory() ? fs.readdirSync(p).reduce((n, f) => n + size(path.join(p, f)), 0) : fs.statSync(p).size;
const js = fs.readdirSync(pkg).filter((f) => f.endsWith('.js')).reduce((n, f) => n + size(path.join(pkg, f)), 0);
const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
process.stdout.write(
  `bundle-firmware: ${path.relative(process.cwd(), tarball) || tarball} (${kb(size(tarball))})\n` +
  `  folder ${pkg}: ${kb(size(pkg))} in all; JavaScript ${kb(js)} (esbuild ${bundleMs} ms); node_modules ${kb(size(path.join(pkg, 'node_modules')))} (${[...closure].length} packages, bindings ${PREBUILDS.join(', ')})\n` +
  `  profile ${profile.name} (${profile.hal.driver} HAL); install on the Pi: tar xzf ${path.basename(tarball)} && cd ${NAME} && sudo ./install.sh\n`,
);
