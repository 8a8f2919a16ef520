/**
 * Forward-buffer cost while Kafka is away and the buffer is full (every push sheds or grows):
 * microseconds per push with 100,000 entries waiting, for several shares of critical messages.
 *   npx tsx bench/gateway-buffer.ts [max=100000] [pushes=20000]
 */
import { ForwardBuffer } from '../gateway/forward-buffer.js';

const max = Number(process.argv[2] ?? 100_000);
const pushes = Number(process.argv[3] ?? 20_000);
const value = Buffer.from('{}');
for (const criticalShare of [0.1, 0.5, 0.9, 1]) {
  const b = new ForwardBuffer(max);
  let i = 0;
  const push = () => b.push({ topic: 't', key: `CP-${i % 1000}`, value, droppable: (i++ % 100) >= criticalShare * 100 });
  while (b.size < max) push();
  const t = process.hrtime.bigint();
  for (let k = 0; k < pushes; k++) push();
  const us = Number(process.hrtime.bigint() - t) / pushes / 1000;
  console.log(`critical share ${String(criticalShare).padEnd(3)}: ${us.toFixed(2)} µs per push with ${max} waiting (size now ${b.size}, shed ${b.shed})`);
}
