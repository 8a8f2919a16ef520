import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Aedes } from 'aedes';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

export interface TestBroker {
  kind: 'aedes' | 'mosquitto';
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** An aedes MQTT broker in this process on an ephemeral port (anonymous, no ACLs). */
export async function startAedes(): Promise<TestBroker & { aedes: Aedes }> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); aedes.handle(s); });
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(0, '127.0.0.1', () => res()); });
  const port = (server.address() as net.AddressInfo).port;
  return {
    kind: 'aedes', aedes, port, url: `mqtt://127.0.0.1:${port}`,
    stop: async () => {
      await new Promise<void>((r) => aedes.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Mosquitto (Debian package) as a child process on a free port: a third-party broker, anonymous. */
export async function startMosquitto(timeoutMs = 15_000): Promise<TestBroker & { process: ChildProcess }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'mosquitto-'));
  const port = await freePort();
  const conf = path.join(dir, 'mosquitto.conf');
  await fs.writeFile(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n`);
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => { err = (err + d).slice(-4000); });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    }
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${err}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
    }, { timeoutMs, what: `mosquitto on port ${port}` });
  } catch (e) {
    await stop();
    throw e;
  }
  return { kind: 'mosquitto', process: child, port, url: `mqtt://127.0.0.1:${port}`, stop };
}
