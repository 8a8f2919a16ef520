import { describe, expect, it } from 'vitest';
import {
  CentralCommandMsg, CpStatusTopicMsg, DriverRequestMsg, MAX_PAYLOAD_BYTES, decode, encode, parseCpTopic, mqttTopics,
  parseHealthReply, parseHealthRequest, embeddedBusTopic, BUS_TOPICS,
} from '../../protocol/index.js';

const status = { v: 1, type: 'status', cp_id: 'CP-001', state: 'ACTIVATED', seq: 3, ts: 1_700_000_000_000 };

describe('protocol codec', () => {
  it('round-trips a valid message and fills defaults', () => {
    const r = decode(CpStatusTopicMsg, encode(status));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value).toMatchObject({ ...status, faults: [], source: 'engine' });
  });

  it('rejects oversize payloads before parsing', () => {
    const r = decode(CpStatusTopicMsg, Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20));
    expect(r).toMatchObject({ ok: false, error: 'oversize' });
  });

  it('rejects bytes that are not JSON', () => {
    expect(decode(CpStatusTopicMsg, Buffer.from([0xff, 0x00, 0x13]))).toMatchObject({ ok: false, error: 'not_json' });
  });

  it('names the offending field on a schema error', () => {
    const r = decode(CpStatusTopicMsg, encode({ ...status, state: 'FLYING' }));
    expect(r).toMatchObject({ ok: false, error: 'schema' });
    if (!r.ok) expect(r.detail).toMatch(/^state:/);
  });

  it('rejects ids that could escape an MQTT topic', () => {
    for (const cp_id of ['CP/001', 'CP+', '#', '', 'a b']) {
      expect(decode(CentralCommandMsg, encode({ v: 1, command_id: 'c1', cp_id, command: 'STOP_CP', ts: 1 })).ok).toBe(false);
    }
  });

  it('rejects an unknown protocol version', () => {
    expect(decode(CpStatusTopicMsg, encode({ ...status, v: 2 })).ok).toBe(false);
  });

  it('needs a cp_id for a REQUEST but not for a QUERY', () => {
    const base = { v: 1, request_id: 'r1', driver_id: 'driver-alice', ts: 1 };
    expect(decode(DriverRequestMsg, encode({ ...base, action: 'REQUEST' })).ok).toBe(false);
    expect(decode(DriverRequestMsg, encode({ ...base, action: 'QUERY' })).ok).toBe(true);
  });
});

describe('topics', () => {
  it('parses CP topics and refuses anything else', () => {
    expect(parseCpTopic(mqttTopics.status('CP-001'))).toEqual({ cpId: 'CP-001', channel: 'status' });
    expect(parseCpTopic(mqttTopics.command('CP-001'))).toEqual({ cpId: 'CP-001', channel: 'cmd' });
    expect(parseCpTopic('cp/CP-001/secrets')).toBeNull();
    expect(parseCpTopic('cp//status')).toBeNull();
    expect(parseCpTopic('cp/CP-001/status/extra')).toBeNull();
    expect(embeddedBusTopic(BUS_TOPICS.cpStatus, 'CP-001')).toBe('bus/cp.status/CP-001');
  });
});

describe('health protocol', () => {
  it('parses requests and rejects garbage', () => {
    expect(parseHealthRequest('PING\r')).toEqual({ verb: 'PING' });
    expect(parseHealthRequest('fault ground_fault')).toEqual({ verb: 'FAULT', kind: 'ground_fault' });
    expect(parseHealthRequest('REPAIR')).toEqual({ verb: 'REPAIR' });
    expect(parseHealthRequest('HELLO')).toHaveProperty('error');
    expect(parseHealthRequest('\u0000\u00ff')).toHaveProperty('error');
    expect(parseHealthRequest('FAULT')).toHaveProperty('error');
  });

  it('parses replies', () => {
    expect(parseHealthReply('OK')).toEqual({ ok: true, detail: '' });
    expect(parseHealthReply('KO ground_fault')).toEqual({ ok: false, reason: 'ground_fault' });
    expect(parseHealthReply('ERR what')).toMatchObject({ ok: false });
  });
});
