import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../lib/log.js';
import { errText } from '../../lib/log.js';
import { OCPP_PATH, OCPP_VERSIONS, isOcppVersion, ocppRpc, type RpcClient } from '../../lib/ocpp.js';
import { ID_PATTERN } from '../../protocol/index.js';
import { VerifiedSecrets, verifySecretAsync, type CredentialEntry } from '../../registry/credentials.js';
import { OcppChargePoint, type ChargePointSettings, type Remembered } from './charge-point.js';
import type { CpPort } from './port.js';

export interface OcppGatewayOptions extends Partial<ChargePointSettings> {
  /** Plain WebSocket port (security profile 1: HTTP Basic auth). */
  port?: number;
  /** TLS WebSocket port (security profile 2: TLS + HTTP Basic auth). */
  tls?: { port: number; cert: string; key: string };
}

export interface AttachedOcpp {
  port?: number;
  tlsPort?: number;
  clients(): number;
  close(): Promise<void>;
}

/**
 * The gateway's OCPP-J endpoint: `ws[s]://host:PORT/ocpp/<CP id>` with subprotocols
 * `ocpp2.0.1` and `ocpp1.6`, every call and result checked against the official schemas
 * (ocpp-rpc strict mode). A charge point is admitted with HTTP Basic auth as its own id and
 * the secret the MQTT side checks (registry/credentials.ts, role `cp`, not revoked); in dev
 * mode (no credentials) every id is admitted. Each connection becomes an OcppChargePoint
 * that speaks for that id alone through the CP port.
 */
export async function attachOcpp(cpPort: CpPort, o: OcppGatewayOptions & { host: string; credentials: Map<string, CredentialEntry> | null; registry: Registry }, log: Logger): Promise<AttachedOcpp> {
  const settings: ChargePointSettings = {
    kw: o.kw ?? 22, price: o.price ?? 0.35, heartbeatS: o.heartbeatS ?? 60, startTimeoutMs: o.startTimeoutMs ?? 60_000,
    acceptLocalIdTags: o.acceptLocalIdTags ?? o.credentials === null,
  };
  const m = {
    connections: new Counter({ name: 'gateway_ocpp_connections_total', help: 'OCPP charge point connections admitted, by subprotocol', labelNames: ['protocol'], registers: [o.registry] }),
    refused: new Counter({ name: 'gateway_ocpp_refused_total', help: 'OCPP connections refused, by reason (auth, path, id)', labelNames: ['reason'], registers: [o.registry] }),
    invalid: new Counter({ name: 'gateway_ocpp_invalid_total', help: 'OCPP calls or results that failed the official schema (strict mode)', registers: [o.registry] }),
    clients: new Gauge({ name: 'gateway_ocpp_clients', help: 'connected OCPP charge points', registers: [o.registry] }),
  };
  const verified = new VerifiedSecrets();
  const memory = new Map<string, Remembered>();
  const live = new Map<string, { rpc: RpcClient; cp: OcppChargePoint }>();
  let closing = false;

  const rpcServer = new ocppRpc.RPCServer({
    protocols: [...OCPP_VERSIONS], strictMode: true, callTimeoutMs: 30_000, pingIntervalMs: 30_000, deferPingsOnActivity: true,
  });

  rpcServer.auth((accept, reject, hs) => {
    const refuse = (code: number, reason: string, text: string) => {
      m.refused.inc({ reason });
      log.warn({ cp: hs.identity.slice(0, 64), remote: hs.remoteAddress, reason: text }, 'OCPP connection refused');
      reject(code, text);
    };
    if (hs.endpoint !== OCPP_PATH) return refuse(404, 'path', `endpoint is ${OCPP_PATH}/<CP id>`);
    if (!ID_PATTERN.test(hs.identity)) return refuse(400, 'id', 'invalid CP id');
    if (!o.credentials) return accept({ cpId: hs.identity });
    const entry = o.credentials.get(hs.identity);
    const secret = hs.password?.toString('utf8');
    // The password is only there when the Basic auth user is the identity itself: a CP cannot log in as another.
    if (!entry || entry.role !== 'cp' || entry.revoked_at !== undefined || !secret) return refuse(401, 'auth', 'bad credentials');
    if (verified.has(entry, secret)) return accept({ cpId: entry.id });
    void verifySecretAsync(entry, secret).then((ok) => {
      if (!ok) return refuse(401, 'auth', 'bad credentials');
      verified.add(entry, secret);
      accept({ cpId: entry.id });
    });
  });

  rpcServer.on('client', (rpc: RpcClient & { session: { cpId: string } }) => {
    const cpId = rpc.session.cpId;
    const version = rpc.protocol;
    if (closing || !version || !isOcppVersion(version)) { void rpc.close({ code: 1002, reason: 'unsupported subprotocol' }); return; }
    // A second connection with the same id takes over (as an MQTT client id does).
    const before = live.get(cpId);
    if (before) { before.cp.close(false); void before.rpc.close({ code: 1000, reason: 'replaced by a new connection' }); }
    const mem = memory.get(cpId) ?? {};
    memory.set(cpId, mem);
    const cp = new OcppChargePoint(cpId, version, rpc, cpPort, settings, mem, log);
    live.set(cpId, { rpc, cp });
    m.connections.inc({ protocol: version });
    m.clients.set(live.size);
    log.info({ cp: cpId, protocol: version }, 'OCPP charge point connected');
    rpc.on('strictValidationFailure', (e: { method?: string; outbound?: boolean; isCall?: boolean; error?: Error }) => {
      m.invalid.inc();
      log.warn({ cp: cpId, method: e.method, outbound: e.outbound, call: e.isCall, err: e.error?.message.slice(0, 200) }, 'OCPP message failed the schema');
    });
    rpc.on('close', () => {
      if (live.get(cpId)?.rpc === rpc) live.delete(cpId);
      m.clients.set(live.size);
      cp.close(!closing && !live.has(cpId));
      if (!closing) log.info({ cp: cpId }, 'OCPP charge point disconnected');
    });
  });
  rpcServer.on('error', (err: Error) => log.warn({ err: errText(err) }, 'OCPP server error'));

  const servers: net.Server[] = [];
  const listen = async (server: http.Server | https.Server, port: number): Promise<number> => {
    server.on('upgrade', rpcServer.handleUpgrade);
    servers.push(server);
    await new Promise<void>((res, rej) => { server.once('error', rej); server.listen(port, o.host, () => res()); });
    return (server.address() as net.AddressInfo).port;
  };
  const notWs = (_req: http.IncomingMessage, res: http.ServerResponse) => res.writeHead(426, { 'content-type': 'text/plain' }).end(`OCPP-J: open a WebSocket to ${OCPP_PATH}/<CP id>\n`);
  const port = o.port !== undefined ? await listen(http.createServer(notWs), o.port) : undefined;
  const tlsPort = o.tls ? await listen(https.createServer({ cert: fs.readFileSync(o.tls.cert), key: fs.readFileSync(o.tls.key), minVersion: 'TLSv1.2' }, notWs), o.tls.port) : undefined;
  log.info({ ocpp_port: port, ocpp_tls_port: tlsPort, protocols: OCPP_VERSIONS, mode: o.credentials ? 'basic auth' : 'dev' }, 'OCPP endpoint listening');

  return {
    port, tlsPort,
    clients: () => live.size,
    async close() {
      closing = true;
      await rpcServer.close({ code: 1001, reason: 'gateway stopping', force: true }).catch(() => undefined);
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
