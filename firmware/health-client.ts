import net from 'node:net';

/** Sends one line to a health port and resolves with the first reply line. */
export function healthRequest(host: string, port: number, line: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = '';
    const done = (err: Error | null, reply?: string) => { sock.destroy(); if (err) reject(err); else resolve(reply!); };
    sock.setTimeout(timeoutMs, () => done(new Error(`no reply within ${timeoutMs} ms`)));
    sock.on('connect', () => sock.write(`${line}\n`));
    sock.on('error', (err: NodeJS.ErrnoException) => done(new Error(err.code === 'ECONNREFUSED' ? 'connection refused (is the engine running?)' : err.message)));
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => { buf += d; const i = buf.indexOf('\n'); if (i >= 0) done(null, buf.slice(0, i).replace(/\r$/, '')); });
    sock.on('end', () => done(new Error('connection closed without a reply')));
  });
}
