#!/usr/bin/env node
// Builds what runs: TypeScript compiled once into dist/, with the files the code reads beside it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const ASSETS = [/^central\/.*\.(html|js|css|svg|ico)$/, /^driver\/.*\.html$/, /^network\/.*\.mjs$/, /^hw-profiles\/.*\.json$/];

fs.rmSync(dist, { recursive: true, force: true });
// typescript's package exports hide bin/tsc from require.resolve: take it from the package's own folder.
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(tsc, ['-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
let copied = 0;
for (const dir of ['central', 'driver', 'network', 'hw-profiles']) {
  for (const f of fs.readdirSync(path.join(root, dir), { recursive: true })) {
    const rel = `${dir}/${String(f).split(path.sep).join('/')}`;
    if (!ASSETS.some((re) => re.test(rel)) || rel.endsWith('.ts')) continue;
    fs.mkdirSync(path.dirname(path.join(dist, rel)), { recursive: true });
    fs.copyFileSync(path.join(root, rel), path.join(dist, rel));
    copied++;
  }
}
console.log(`built dist/ (${copied} assets copied)`);
