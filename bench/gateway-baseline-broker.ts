/**
 * The baseline for bench/gateway-throughput.ts: a bare aedes broker whose 'publish' handler
 * produces each message to Kafka with kafkajs (one send per message, not awaited). No auth,
 * no ACLs, no validation, no buffer: what the gateway's extra work is measured against.
 *   tsx bench/gateway-baseline-broker.ts PORT BOOTSTRAP
 */
import net from 'node:net';
import { Aedes } from 'aedes';
import { Kafka, logLevel, Partitioners } from 'kafkajs';

const port = Number(process.argv[2]);
const bootstrap = (process.argv[3] ?? '').split(',').filter(Boolean);
let failed = 0;

const producer = new Kafka({ brokers: bootstrap, clientId: 'bench-baseline', logLevel: logLevel.NOTHING })
  .producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();
const broker = await Aedes.createBroker();
broker.on('publish', (packet, client) => {
  if (!client) return;
  const [, cpId, channel] = packet.topic.split('/');
  if (!cpId || !channel) return;
  producer.send({ topic: channel === 'telemetry' ? 'cp.telemetry' : 'cp.status', messages: [{ key: cpId, value: packet.payload as Buffer }] })
    .catch(() => { failed++; });
});
const server = net.createServer((s) => broker.handle(s));
server.listen(port, '127.0.0.1', () => process.stdout.write(`ready ${port}\n`));
process.on('SIGTERM', () => {
  process.stderr.write(`baseline: ${failed} sends failed\n`);
  server.close(); broker.close(() => void producer.disconnect().finally(() => process.exit(0)));
});
