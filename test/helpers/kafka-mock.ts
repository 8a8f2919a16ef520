import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { waitFor } from './wait.js';

export interface KafkaMock {
  /** e.g. ['127.0.0.1:40123', ...] */
  bootstrap: string[];
  process: ChildProcess;
  /** SIGSTOP: the cluster keeps its sockets and data but answers nothing (a hung or partitioned broker). */
  pause(): void;
  /** SIGCONT: it answers again, with everything it held. */
  resume(): void;
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
        resolve({
          bootstrap: m[1]!.split(',').map((s) => s.replace(/,$/, '')).filter(Boolean), process: child, stop,
          pause: () => { child.kill('SIGSTOP'); },
          resume: () => { child.kill('SIGCONT'); },
        });
      }
    });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`kcat exited (${code}): ${err.slice(-500)}`)); });
  });
}

/**
 * A plain TCP forwarder from a chosen local port to `target` (host:port). librdkafka's mock
 * cluster binds ephemeral ports only, so to make Kafka appear on a port a client was given
 * before, the forwarder listens there: clients bootstrap through it, then reach the broker at
 * the address its metadata announces.
 */
export async function forwardPort(port: number, target: string): Promise<{ close(): Promise<void> }> {
  const [host, p] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(p, host);
    for (const s of [inbound, outbound]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => { inbound.destroy(); outbound.destroy(); }); }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(port, '127.0.0.1', () => res()); });
  return {
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

export interface KafkaRecord { topic: string; key: string; value: Record<string, unknown>; raw: string }

/** Reads topics from the beginning with its own consumer group and keeps every record, in arrival order. */
export async function readTopics(bootstrap: string[], topics: string[], timeoutMs = 45_000) {
  const kafka = new Kafka({ brokers: bootstrap, clientId: `reader-${process.pid}`, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${process.pid}-${Math.random().toString(36).slice(2)}`, allowAutoTopicCreation: true });
  const records: KafkaRecord[] = [];
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => { joined = true; });
  await consumer.connect();
  for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      const raw = message.value?.toString() ?? '';
      let value: Record<string, unknown> = {};
      try { value = JSON.parse(raw) as Record<string, unknown>; } catch { /* kept raw */ }
      records.push({ topic, key: message.key?.toString() ?? '', value, raw });
    },
  });
  await waitFor(() => joined, { timeoutMs, what: 'reader joined its group' });
  return {
    records,
    of: (topic: string, key?: string) => records.filter((r) => r.topic === topic && (key === undefined || r.key === key)),
    stop: () => consumer.disconnect().catch(() => undefined),
  };
}
