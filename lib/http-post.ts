import http from 'node:http';
import https from 'node:https';

export interface PostResult { status: number; body: string }
export interface PostOptions { headers?: Record<string, string>; timeoutMs: number }

/**
 * One keep-alive agent per scheme for the whole process: a process running many reporters (or
 * one reporting every few seconds) reuses a few connections to central instead of a handshake
 * per report, and node:http costs far less CPU per request than fetch (bench:monitor-report).
 * An idle socket is let go before central's own keep-alive timeout (5 s by default) closes it.
 */
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64, timeout: 4_000 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64, timeout: 4_000 }),
};

/** Bytes of a response body kept; the rest is read and dropped (a reply is a short JSON line). */
const MAX_BODY = 64 * 1024;

/** POSTs a JSON body; rejects on a network error or when `timeoutMs` passes first, never on an HTTP status. */
export async function postJson(url: string, body: unknown, o: PostOptions): Promise<PostResult> {
  const u = new URL(url);
  const scheme = u.protocol === 'https:' ? 'https:' : u.protocol === 'http:' ? 'http:' : undefined;
  if (!scheme) throw new Error(`unsupported URL scheme ${u.protocol}`);
  const data = Buffer.from(JSON.stringify(body));
  try {
    return await once(u, scheme, data, o);
  } catch (err) {
    // The server closed a kept-alive socket just as this request went out on it: once more, on a fresh one.
    if ((err as { reused?: boolean }).reused && (err as NodeJS.ErrnoException).code === 'ECONNRESET') return once(u, scheme, data, o);
    throw err;
  }
}

function once(u: URL, scheme: 'http:' | 'https:', data: Buffer, o: PostOptions): Promise<PostResult> {
  return new Promise<PostResult>((resolve, reject) => {
    const req = (scheme === 'https:' ? https : http).request(u, {
      method: 'POST', agent: agents[scheme],
      headers: { 'content-type': 'application/json', 'content-length': data.length, ...o.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => { if (kept < MAX_BODY) { chunks.push(c); kept += c.length; } });
      res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, MAX_BODY).toString('utf8') }); });
      res.on('error', (err) => { clearTimeout(timer); reject(err); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on('error', (err) => { clearTimeout(timer); reject(Object.assign(err, { reused: req.reusedSocket })); });
    req.end(data);
  });
}
