import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type Ticket } from '../../protocol/index.js';
import { waitFor } from '../helpers/wait.js';
import { CentralRig, type Json } from '../helpers/central-rig.js';

/**
 * Admin stop/resume and monitor reports against a real central and a real engine: a STOPPED
 * CP refuses requests, stopping mid-session gives the driver an interrupted ticket billed from
 * the CP's record; a silent monitor makes the CP DISCONNECTED and unrequestable, a fault report
 * makes it FAULTY and interrupts its session, `recovered` brings it back. The dashboard's SSE
 * feed pushes each change.
 */
let rig: CentralRig | undefined;
beforeAll(async () => {
  rig = await CentralRig.start({ centralArgs: ['--monitor-timeout-ms', '1500', '--end-grace-ms', '3000'] });
  await rig.addEngine('CP-401', 'dc-50kw', 20);
}, 120_000);
afterAll(async () => { await rig?.stop(); }, 60_000);

/** Reads central's SSE feed, keeping every snapshot. */
async function openFeed(url: string) {
  const ac = new AbortController();
  const res = await fetch(`${url}/events`, { signal: ac.signal });
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const snapshots: Json[] = [];
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = '';
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
          if (data) snapshots.push(JSON.parse(data) as Json);
        }
      }
    } catch { /* aborted */ }
  })();
  const stateOf = (s: Json, id: string) => (s.charging_points as Json[]).find((c) => c.cp_id === id)?.state;
  return { snapshots, stateOf, close: () => ac.abort() };
}

describe('central admin stop and resume', () => {
  it('a STOPPED CP refuses requests; resumed it takes them; stopped mid-session the driver gets an interrupted ticket', async () => {
    const r = rig!;
    const feed = await openFeed(r.centralUrl);
    try {
      await waitFor(() => feed.snapshots.length > 0, { timeoutMs: 10_000, what: 'first SSE snapshot' });
      expect(feed.stateOf(feed.snapshots[0]!, 'CP-401')).toBe('ACTIVATED');

      const stopped = await r.post('/cp/CP-401/stop');
      expect(stopped.status).toBe(200);
      expect(stopped.body.charging_point).toMatchObject({ cp_id: 'CP-401', state: 'STOPPED', admin_stopped: true });
      await waitFor(() => r.of('central.commands', 'CP-401').some((c) => c.command === 'STOP_CP'), { timeoutMs: 10_000, what: 'STOP_CP sent' });
      await waitFor(async () => (await r.cp('CP-401'))?.engine_state === 'STOPPED', { timeoutMs: 20_000, what: 'engine STOPPED' });
      // Pushed live to the dashboard feed.
      await waitFor(() => feed.snapshots.some((s) => feed.stateOf(s, 'CP-401') === 'STOPPED'), { timeoutMs: 10_000, what: 'SSE snapshot with CP-401 STOPPED' });

      const q1 = await r.request('driver-lee', 'REQUEST', 'CP-401');
      expect(await r.update('driver-lee', (u) => u.request_id === q1, 'answer while stopped')).toMatchObject({ status: 'REJECTED', reason: 'CP stopped' });
      expect(r.of('central.commands', 'CP-401').filter((c) => c.command === 'START_SUPPLY')).toEqual([]);

      expect((await r.post('/cp/CP-401/resume')).status).toBe(200);
      await waitFor(() => r.of('central.commands', 'CP-401').some((c) => c.command === 'RESUME_CP'), { timeoutMs: 10_000, what: 'RESUME_CP sent' });
      await waitFor(async () => (await r.cp('CP-401'))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'CP-401 ACTIVATED after resume' });

      const q2 = await r.request('driver-lee', 'REQUEST', 'CP-401');
      const acc = await r.update('driver-lee', (u) => u.request_id === q2 && u.status === 'ACCEPTED', 'ACCEPTED after resume');
      const sessionId = String(acc.session_id);
      await r.update('driver-lee', (u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId && Number(u.kwh) > 0, 'IN_PROGRESS');
      await waitFor(() => feed.snapshots.some((s) => (s.charging_points as Json[]).some((c) => c.cp_id === 'CP-401' && c.state === 'SUPPLYING' && Number(c.kwh) > 0)),
        { timeoutMs: 10_000, what: 'SSE snapshot with live kWh' });

      // Stopped mid-session: the CP ends the session, the driver gets an INTERRUPTED ticket billing the CP's record.
      expect((await r.post('/cp/CP-401/stop')).status).toBe(200);
      const final = await r.update('driver-lee', (u) => u.session_id === sessionId && (u.status === 'COMPLETED' || u.status === 'INTERRUPTED'), 'final update');
      expect(final.status).toBe('INTERRUPTED');
      const t = final.ticket as Ticket;
      expect(t).toMatchObject({ session_id: sessionId, reason: 'cp_stopped', interrupted: true });
      const end = r.of('cp.status', 'CP-401').find((m) => m.type === 'session_end' && m.session_id === sessionId)!;
      expect(t.kwh).toBeCloseTo(Number(end.kwh), 6);
      expect(t.kwh).toBeGreaterThan(0);
      expect((await r.get(`/sessions/${sessionId}`)).body).toMatchObject({ status: 'INTERRUPTED', interrupted: true, end_reason: 'cp_stopped' });
      expect(await r.cp('CP-401')).toMatchObject({ state: 'STOPPED' });

      expect((await r.post('/cp/CP-401/resume')).status).toBe(200);
      await waitFor(async () => (await r.cp('CP-401'))?.state === 'ACTIVATED', { timeoutMs: 20_000, what: 'ACTIVATED again' });
      // The dashboard page itself: HTML with the live script.
      const page = await fetch(`${r.centralUrl}/`);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      expect(await page.text()).toContain("new EventSource('/events')");
    } finally {
      feed.close();
    }
  }, 120_000);
});

describe('central and the monitor reports', () => {
  const report = (kind: 'heartbeat' | 'fault' | 'recovered', engineOk: boolean) => rig!.post('/monitor/report', {
    token: null, body: { v: PROTOCOL_VERSION, cp_id: 'CP-401', monitor_id: 'test-monitor', kind, engine_ok: engineOk, ts: Date.now(), ...(engineOk ? {} : { reason: 'test fault' }) },
  });

  it('a silent monitor is DOWN (CP DISCONNECTED, refused); a fault report interrupts the session; recovered brings the CP back', async () => {
    const r = rig!;
    expect((await report('heartbeat', true)).status).toBe(202);
    expect(await r.cp('CP-401')).toMatchObject({ monitor_status: 'OK', state: 'ACTIVATED' });

    // Silence beyond --monitor-timeout-ms.
    await waitFor(async () => (await r.cp('CP-401'))?.monitor_status === 'DOWN', { timeoutMs: 15_000, intervalMs: 100, what: 'monitor DOWN' });
    expect((await r.cp('CP-401'))!.state).toBe('DISCONNECTED');
    const q1 = await r.request('driver-max', 'REQUEST', 'CP-401');
    expect(await r.update('driver-max', (u) => u.request_id === q1, 'answer with monitor down')).toMatchObject({ status: 'REJECTED', reason: 'monitor down' });

    // Heartbeats again (kept up for the rest of the test).
    const beat = setInterval(() => { void report('heartbeat', true).catch(() => undefined); }, 300);
    let faulty = false;
    try {
      await waitFor(async () => (await r.cp('CP-401'))?.state === 'ACTIVATED', { timeoutMs: 10_000, what: 'ACTIVATED with the monitor back' });
      const q2 = await r.request('driver-max', 'REQUEST', 'CP-401');
      const acc = await r.update('driver-max', (u) => u.request_id === q2 && u.status === 'ACCEPTED', 'ACCEPTED');
      const sessionId = String(acc.session_id);
      await r.update('driver-max', (u) => u.status === 'IN_PROGRESS' && u.session_id === sessionId && Number(u.kwh) > 0, 'IN_PROGRESS');

      clearInterval(beat);
      faulty = true;
      expect((await report('fault', false)).status).toBe(202);
      expect(await r.cp('CP-401')).toMatchObject({ state: 'FAULTY', monitor_status: 'KO' });
      const keepKo = setInterval(() => { void report('heartbeat', false).catch(() => undefined); }, 300);
      try {
        const final = await r.update('driver-max', (u) => u.session_id === sessionId && (u.status === 'COMPLETED' || u.status === 'INTERRUPTED'), 'final update after the fault');
        expect(final.status).toBe('INTERRUPTED');
        const t = final.ticket as Ticket;
        expect(t).toMatchObject({ reason: 'fault', interrupted: true });
        // Central told the CP to stop supplying, and billed what the CP metered.
        expect(r.of('central.commands', 'CP-401').some((c) => c.command === 'STOP_SUPPLY' && c.session_id === sessionId)).toBe(true);
        const end = r.of('cp.status', 'CP-401').find((m) => m.type === 'session_end' && m.session_id === sessionId)!;
        expect(t.kwh).toBeCloseTo(Number(end.kwh), 6);
        const q3 = await r.request('driver-max', 'REQUEST', 'CP-401');
        expect(await r.update('driver-max', (u) => u.request_id === q3, 'answer while faulty')).toMatchObject({ status: 'REJECTED', reason: 'CP faulty' });
      } finally { clearInterval(keepKo); }

      expect((await report('recovered', true)).status).toBe(202);
      expect(await r.cp('CP-401')).toMatchObject({ state: 'ACTIVATED', monitor_status: 'OK' });
    } finally {
      if (!faulty) clearInterval(beat);
    }
  }, 120_000);
});
