import { spawn, type ChildProcess } from 'node:child_process';

export interface KafkaMock {
  /** e.g. ['127.0.0.1:40123', ...] */
  bootstrap: string[];
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a librdkafka mock cluster through kcat (a real Kafka-protocol broker in-process of
 * kcat) and resolves with its bootstrap list. Stop it with `stop()` (SIGKILL).
 */
export function startKafkaMock(brokers = 1, timeoutMs = 20_000): Promise<KafkaMock> {
  const child = spawn('kcat', ['-C', '-b', 'x:1', '-X', `test.mock.num.brokers=${brokers}`, '-d', 'mock', '-t', 'keepalive', '-o', 'end', '-q'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stop = () => new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => { void stop(); reject(new Error(`kcat mock cluster did not start: ${err.slice(-500)}`)); }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /bootstrap\.servers=(\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        child.stderr!.removeAllListeners('data');
        child.stderr!.resume();
        resolve({ bootstrap: m[1]!.split(',').map((s) => s.replace(/,$/, '')).filter(Boolean), process: child, stop });
      }
    });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`kcat exited (${code}): ${err.slice(-500)}`)); });
  });
}
