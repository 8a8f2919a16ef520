import type { Socket } from 'node:net';

/**
 * Holds a socket's writes corked until the end of the event-loop turn, so every packet written
 * to it in one turn leaves in one writev. mqtt-packet corks only until the next tick, and aedes
 * delivers each bus message to a subscriber in a tick of its own, so central's connection took
 * one syscall per message (the gateway's biggest cost: bench:scale, CPU profile). A CP's socket,
 * written rarely, pays one setImmediate per turn it is written in.
 */
export function coalesceWrites(sock: Socket): void {
  // aedes waits for 'drain' once per message whose write found the buffer full: up to its
  // concurrency (1,000) on a busy consumer's socket, which is expected, not a leak warning.
  sock.setMaxListeners(4096);
  const write = sock.write;
  let held = false;
  const release = () => { held = false; if (!sock.destroyed) sock.uncork(); };
  sock.write = function coalesced(this: Socket, ...args: Parameters<Socket['write']>) {
    if (!held && !sock.destroyed) { held = true; sock.cork(); setImmediate(release); }
    return write.apply(this, args);
  } as Socket['write'];
}
