import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `npm start` as a person sees it: run on a pseudo-terminal (util-linux `script`), read until
 * both drivers have a ticket, then Ctrl-C typed into the terminal. Every line is readable (no
 * JSON), coloured, behind the component's name; no request is refused for an unknown CP, no
 * error line, no stack trace; Ctrl-C stops everything and the temporary folder goes with it.
 * Free ports everywhere, so it runs beside other tests; the simulated weather service runs too.
 */
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
let child: ReturnType<typeof spawn> | undefined;
afterAll(() => { if (child && child.exitCode === null) child.kill('SIGKILL'); });

describe('npm start on a terminal', () => {
  it('prints readable lines: no JSON, no REJECTED unknown CP, no error or stack trace; Ctrl-C stops it', async () => {
    const cmd = 'npm start -- --gateway-mqtt-port 0 --gateway-http-port 0 --central-port 0 --control-port 0 --health-base-port 0 --weather sim';
    const env = { ...process.env, LOG_FORMAT: undefined, NO_COLOR: undefined, TERM: 'xterm-256color', LOG_LEVEL: 'info' };
    child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let raw = '';
    child.stdout!.on('data', (d: Buffer) => { raw += d.toString('utf8'); });
    child.stderr!.on('data', (d: Buffer) => { raw += d.toString('utf8'); });
    const exited = new Promise<void>((r) => child!.once('exit', () => r()));
    const text = () => raw.replace(ANSI, '').replace(/\r/g, '');
    const began = Date.now();
    await waitFor(() => /driver-alice\s+\S+ COMPLETED/.test(text()) && /driver-bob\s+\S+ COMPLETED/.test(text()),
      { timeoutMs: 90_000, intervalMs: 200, what: `both drivers' tickets; terminal so far:\n${text().slice(-3000)}` });
    console.log(`npm start on a pty: both drivers had a ticket ${((Date.now() - began) / 1000).toFixed(1)} s after start`);

    child.stdin!.write('\x03'); // Ctrl-C, typed into the terminal
    await waitFor(() => /INFO\s+up\s+stopped/.test(text()), { timeoutMs: 60_000, intervalMs: 200, what: `"stopped"; terminal:\n${text().slice(-2000)}` });
    await exited;

    const lines = text().split('\n').map((l) => l.trimEnd()).filter(Boolean);
    expect(raw).toMatch(/\x1b\[3\dm/); // coloured: it is a terminal
    expect(lines.filter((l) => /^\s*[{[]"/.test(l) || /"level":\d/.test(l))).toEqual([]);
    expect(lines.filter((l) => /REJECTED unknown CP/.test(l))).toEqual([]);
    expect(lines.filter((l) => /\b(ERROR|FATAL)\b|Error:|^\s+at |Warning:/.test(l))).toEqual([]);
    // Each event one line: time, level, who, what (npm's own two header lines and the banner aside).
    const logLines = lines.filter((l) => /^\d\d:\d\d:\d\d /.test(l));
    expect(logLines.length).toBeGreaterThan(20);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d INFO  up\s+network up: dashboard at http:\/\/127\.0\.0\.1:\d+\//.test(l))).toBe(true);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d\s+driver-alice\s+last session: no earlier session$/.test(l))).toBe(true);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d\s+driver-bob\s+CP-\d{3} COMPLETED \d+\.\d\d kWh \d+\.\d\d € ticket /.test(l))).toBe(true);
    expect(lines.some((l) => /try\s+npx evcharging status/.test(l))).toBe(true);
    // The temporary data folder is gone with the network.
    const dir = /data_dir=(\S+)/.exec(text())?.[1];
    expect(dir).toBeTruthy();
    expect(fs.existsSync(dir!)).toBe(false);
  }, 180_000);
});
