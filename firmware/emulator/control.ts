import http from 'node:http';
import type { Logger } from '../../lib/log.js';
import type { Board } from './board.js';

/**
 * The emulator's control port (HTTP, loopback by default): the test bench's hand on the hardware.
 *   GET  /state                        relays, power, energy, vehicle, faults, counters
 *   POST /bad-crc?count=N              the next N meter replies carry a wrong CRC
 *   POST /noise?bytes=B&count=N        the next N meter replies come after B random bytes
 *   POST /noise-now?bytes=B&line=meter|relay   B random bytes on a line at once
 *   POST /meter-silence?on=1|0         the meter stops (or resumes) answering
 *   POST /fault-input?on=1|0           the fault contact closes (or opens)
 *   POST /relay-stuck?on=1|0           the relay ignores commands
 *   POST /plug                         a fresh vehicle plugs in
 */
export function startControlServer(o: {
  board: Board; host: string; port: number; log: Logger;
  noiseNow: (line: 'meter' | 'relay', bytes: number) => boolean;
  state: () => Record<string, unknown>;
}): Promise<http.Server> {
  const { board, log } = o;
  const int = (v: string | null, def: number, max: number) => {
    if (v === null) return def;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n > max) throw new Error(`expected an integer 0-${max}, got ${JSON.stringify(v.slice(0, 20))}`);
    return n;
  };
  const flag = (v: string | null) => {
    if (v === null || /^(1|true|on|yes)$/i.test(v)) return true;
    if (/^(0|false|off|no)$/i.test(v)) return false;
    throw new Error(`expected on=1 or on=0, got ${JSON.stringify(v.slice(0, 20))}`);
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const q = url.searchParams;
    const send = (code: number, body: unknown) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)); };
    req.resume();
    try {
      if (req.method === 'GET' && url.pathname === '/state') return send(200, o.state());
      if (req.method !== 'POST') return send(404, { error: `no such control ${req.method} ${url.pathname}` });
      const f = board.faults;
      switch (url.pathname) {
        case '/bad-crc': f.badCrc = int(q.get('count'), 1, 1_000_000); break;
        case '/noise': f.noiseBytes = int(q.get('bytes'), 16, 4096); f.noiseReplies = int(q.get('count'), 1, 1_000_000); break;
        case '/noise-now': {
          const line = q.get('line') ?? 'meter';
          if (line !== 'meter' && line !== 'relay') throw new Error('line must be meter or relay');
          if (!o.noiseNow(line, int(q.get('bytes'), 16, 4096))) return send(409, { error: `${line} port not open` });
          break;
        }
        case '/meter-silence': f.meterSilent = flag(q.get('on')); break;
        case '/fault-input': f.faultInput = flag(q.get('on')); break;
        case '/relay-stuck': f.relayStuck = flag(q.get('on')); break;
        case '/plug': board.plug(); break;
        default: return send(404, { error: `no such control ${url.pathname}` });
      }
      log.info({ control: url.pathname, query: Object.fromEntries(q) }, `fault control ${url.pathname}`);
      return send(200, o.state());
    } catch (err) {
      return send(400, { error: (err as Error).message });
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve(server));
  });
}
