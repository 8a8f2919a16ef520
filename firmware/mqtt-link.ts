import mqtt, { type MqttClient } from 'mqtt';
import { CentralCommandMsg, cpStatus, decode, encode, mqttRouteOf, mqttTopics } from '../protocol/index.js';
import { backoffDelay } from '../lib/backoff.js';
import { errText, type Logger } from '../lib/log.js';
import type { LinkPort } from './link.js';

export interface MqttLinkOptions {
  url: string;
  cpId: string;
  /** The CP's password at the gateway (the username is the CP id). */
  secret?: string;
  log: Logger;
  onUp(): void;
  onDown(): void;
  onCommand(msg: CentralCommandMsg): void;
  onBadCommand?(detail: string): void;
}

export interface MqttLink extends LinkPort {
  readonly connected: boolean;
  readonly counters: { connects: number; badCommands: number };
  close(): Promise<void>;
}

/**
 * The CP's MQTT client to the gateway: clean session, client id = username = CP id, a retained
 * last will that marks the CP DISCONNECTED, commands on cp/<id>/cmd (QoS 1) validated before the
 * engine sees them. Reconnects forever with capped exponential backoff and says so once per outage.
 */
export function createMqttLink(o: MqttLinkOptions): MqttLink {
  const { cpId, log } = o;
  const cmdTopic = mqttTopics.command(cpId);
  const counters = { connects: 0, badCommands: 0 };
  let attempt = 0;
  let outageLogged = false;
  let up = false;
  let closing = false;

  // Built by the same builder as the engine's statuses; the seq is the time, so it grows across reconnects.
  const will = () => cpStatus({ cpId, state: 'DISCONNECTED', reason: 'connection lost', source: 'last_will', seq: Date.now(), ts: Date.now() });
  const willRoute = mqttRouteOf(cpId, { type: 'status' });

  const client: MqttClient = mqtt.connect(o.url, {
    clientId: cpId,
    username: cpId,
    ...(o.secret !== undefined ? { password: o.secret } : {}),
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: backoffDelay(0, 500, 10_000),
    connectTimeout: 10_000,
    resubscribe: false,
    will: { topic: willRoute.topic, payload: encode(will()), qos: willRoute.qos, retain: willRoute.retain },
  });

  const outage = (why: string) => {
    if (outageLogged || closing) return;
    outageLogged = true;
    log.warn({ cp_id: cpId, url: o.url, reason: why }, 'gateway not reachable, retrying');
  };

  client.on('connect', () => {
    attempt = 0;
    counters.connects++;
    if (outageLogged || counters.connects > 1) log.info({ cp_id: cpId, url: o.url }, 'gateway reachable again');
    outageLogged = false;
    client.options.reconnectPeriod = backoffDelay(0, 500, 10_000);
    client.subscribe(cmdTopic, { qos: 1 }, (err) => {
      if (err && !closing) log.warn({ cp_id: cpId, err: errText(err) }, 'subscribe to commands failed');
    });
    up = true;
    o.onUp();
  });
  client.on('close', () => {
    if (up) {
      up = false;
      if (!closing) log.warn({ cp_id: cpId }, 'link to gateway lost');
      o.onDown();
    }
    if (closing) return;
    outage('connection closed');
    // mqtt.js reconnects at a fixed period; stretching it gives backoff.
    client.options.reconnectPeriod = backoffDelay(++attempt, 500, 10_000);
  });
  client.on('error', (err) => outage(errText(err)));
  // The will's seq is fixed at connect time; refresh it before each reconnect.
  client.on('reconnect', () => { if (client.options.will) client.options.will.payload = encode(will()); });

  client.on('message', (topic, payload) => {
    if (topic !== cmdTopic) return;
    const r = decode(CentralCommandMsg, payload);
    if (!r.ok) {
      counters.badCommands++;
      log.warn({ cp_id: cpId, error: r.error, detail: r.detail }, 'bad command ignored');
      o.onBadCommand?.(`${r.error}: ${r.detail}`);
      return;
    }
    o.onCommand(r.value);
  });

  return {
    get connected() { return up; },
    counters,
    send(msg) {
      const { topic, qos, retain } = mqttRouteOf(cpId, msg);
      client.publish(topic, encode(msg), { qos, retain }, (err) => {
        if (err && !closing && qos > 0) log.warn({ cp_id: cpId, topic, err: errText(err) }, 'publish failed');
      });
    },
    async close() {
      closing = true;
      // Flush what is in flight (the final status), but do not hang on a dead gateway.
      await Promise.race([
        client.endAsync(false),
        new Promise<void>((r) => setTimeout(r, 2_000).unref()),
      ]).catch(() => undefined);
      if (client.connected || !client.disconnected) await client.endAsync(true).catch(() => undefined);
    },
  };
}
