import net from 'node:net';

/** A port the OS just gave us on `host` (bound to 0 and released), for components given port 0. */
export function allocatePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Fails with a clear message when `port` is taken on `host`. */
export function assertPortFree(host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`${what} port ${port} on ${host} is not free (${err.code})`)));
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}
