import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

/**
 * Where the chaos network's hosts live. Loopback: every component on 127.0.0.1 in this
 * namespace, no links to cut. Namespaces (root only): three hosts — `core` (Kafka, gateway,
 * central), `cps` (engines and monitors), `drivers` — each a network namespace with a veth
 * into a bridge in a hub namespace, plus one for the harness itself (never cut). Cutting a
 * link sets the host's bridge port down: its packets are dropped, as with a pulled cable.
 * Namespace names start with CHAOS_NETNS_PREFIX (default `evchaos-`).
 */

export type Host = 'core' | 'cps' | 'drivers';
const HOSTS: readonly Host[] = ['core', 'cps', 'drivers'];

export interface Topology {
  describe: string;
  links: string[];
  nsOf(h: Host): string | undefined;
  addressOf(h: Host): string;
  /** Makes Kafka (the mock advertises 127.0.0.1 only) reachable from every host; returns the bootstrap list to hand out. */
  exposeKafka(bootstrap: string[]): Promise<string[]>;
  cut(link: string): Promise<void>;
  restore(link: string): Promise<void>;
  destroy(): Promise<void>;
  destroySync(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export async function createTopology(wantNetns: boolean, _dir: string): Promise<Topology> {
  if (!wantNetns || process.getuid?.() !== 0) {
    return {
      describe: wantNetns ? 'loopback (network namespaces need root)' : 'loopback',
      links: [], nsOf: () => undefined, addressOf: () => '127.0.0.1', exposeKafka: async (b) => b,
      cut: async () => { throw new Error('no links on loopback'); }, restore: async () => undefined,
      destroy: async () => undefined, destroySync: () => undefined,
    };
  }
  const p = process.env.CHAOS_NETNS_PREFIX ?? 'evchaos-';
  const hub = `${p}hub`;
  const subnet = 10 + (process.pid % 200);
  const addr: Record<Host | 'harness', string> = { core: `10.231.${subnet}.1`, cps: `10.231.${subnet}.2`, drivers: `10.231.${subnet}.3`, harness: `10.231.${subnet}.254` };
  const made: string[] = [];
  // Interface names are at most 15 characters: a short tag per run, `<tag><n>` in the host and `<tag><n>b` on the bridge.
  const tag = `evc${process.pid % 10_000}`;
  const linkOf = (h: Host) => `${tag}${HOSTS.indexOf(h)}`;
  const harnessLink = `${tag}h`;
  const forwarders: ChildProcess[] = [];
  const destroySync = () => {
    for (const f of forwarders) { try { f.kill('SIGKILL'); } catch { /* gone */ } }
    try { ip('link', 'del', harnessLink); } catch { /* gone */ }
    for (const ns of made.reverse()) { try { ip('netns', 'del', ns); } catch { /* gone */ } }
    made.length = 0;
  };
  try {
    for (const ns of [hub, ...HOSTS.map((h) => `${p}${h}`)]) { try { ip('netns', 'del', ns); } catch { /* not there */ } ip('netns', 'add', ns); made.push(ns); }
    ip('-n', hub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', hub, 'link', 'set', 'br0', 'up');
    const plug = (name: string, peerNs: string | null, address: string) => {
      // veth: `<name>` in the host (or here), `<name>-hub` on the bridge.
      ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}b`);
      ip('link', 'set', `${name}b`, 'netns', hub);
      ip('-n', hub, 'link', 'set', `${name}b`, 'master', 'br0');
      ip('-n', hub, 'link', 'set', `${name}b`, 'up');
      if (peerNs) { ip('link', 'set', name, 'netns', peerNs); ip('-n', peerNs, 'addr', 'add', `${address}/24`, 'dev', name); ip('-n', peerNs, 'link', 'set', name, 'up'); ip('-n', peerNs, 'link', 'set', 'lo', 'up'); }
      else { ip('addr', 'add', `${address}/24`, 'dev', name); ip('link', 'set', name, 'up'); }
    };
    for (const h of HOSTS) plug(linkOf(h), `${p}${h}`, addr[h]);
    plug(harnessLink, null, addr.harness);
  } catch (err) {
    destroySync();
    throw new Error(`could not build the network namespaces: ${(err as Error).message}`);
  }
  const socat = (ns: string, listen: string, target: string) => {
    const c = spawn('ip', ['netns', 'exec', ns, 'socat', `TCP-LISTEN:${listen},fork,reuseaddr`, `TCP:${target}`], { stdio: 'ignore', detached: false });
    forwarders.push(c);
  };
  return {
    describe: `network namespaces ${HOSTS.map((h) => `${h} ${addr[h]}`).join(', ')} (links cut and restored)`,
    links: HOSTS.map((h) => `${h}`),
    nsOf: (h) => `${p}${h}`,
    addressOf: (h) => addr[h],
    async exposeKafka(bootstrap) {
      // The mock binds and advertises 127.0.0.1:<port> in core: forward core's address to it, and
      // 127.0.0.1:<port> on every other host (and here) to core's address, so the advertised address works everywhere.
      for (const b of bootstrap) {
        const port = b.slice(b.lastIndexOf(':') + 1);
        socat(`${p}core`, `${port},bind=${addr.core}`, `127.0.0.1:${port}`);
        for (const h of ['cps', 'drivers'] as const) socat(`${p}${h}`, `${port},bind=127.0.0.1`, `${addr.core}:${port}`);
      }
      await new Promise((r) => setTimeout(r, 500));
      return bootstrap;
    },
    async cut(link) { ip('-n', hub, 'link', 'set', `${linkOf(link as Host)}b`, 'down'); },
    async restore(link) { ip('-n', hub, 'link', 'set', `${linkOf(link as Host)}b`, 'up'); },
    async destroy() { destroySync(); },
    destroySync,
  };
}
