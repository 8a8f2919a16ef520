// Container healthcheck without curl or netcat (the image is slim): asks a service its own health.
//   node docker/healthcheck.mjs http://127.0.0.1:8000/health   → 2xx is healthy
//   node docker/healthcheck.mjs tcp://127.0.0.1:8001           → an engine health port answering PING with OK
// Exit 0 healthy, 1 not, with one line saying why.
import net from 'node:net';

const target = process.argv[2] ?? '';
const fail = (why) => { process.stdout.write(`unhealthy: ${target}: ${why}\n`); process.exit(1); };
const timer = setTimeout(() => fail('timeout'), 4_000);

if (/^https?:\/\//.test(target)) {
  fetch(target).then((r) => { clearTimeout(timer); if (!r.ok) fail(`HTTP ${r.status}`); process.exit(0); }, (e) => fail(e.cause?.code ?? e.message));
} else if (target.startsWith('tcp://')) {
  const u = new URL(target);
  const sock = net.connect({ host: u.hostname, port: Number(u.port) }, () => sock.write('PING\n'));
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    buf += d;
    if (!buf.includes('\n')) return;
    const line = buf.slice(0, buf.indexOf('\n')).trim();
    if (line === 'OK' || line.startsWith('OK ')) process.exit(0);
    fail(line.slice(0, 80));
  });
  sock.on('error', (e) => fail(e.code ?? e.message));
} else {
  fail('expected http://HOST:PORT/health or tcp://HOST:PORT');
}
