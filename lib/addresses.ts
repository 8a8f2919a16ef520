import os from 'node:os';

/**
 * The URLs a listener is reachable at. Bound to a wildcard (0.0.0.0, ::), that is every
 * interface's address, not `localhost`: what a user on another machine needs to type.
 */
export function reachableUrls(scheme: string, host: string, port: number, path = ''): string[] {
  const wildcard = host === '0.0.0.0' || host === '::' || host === '';
  if (!wildcard) return [`${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}${path}`];
  const v6 = host === '::';
  const addrs = Object.values(os.networkInterfaces()).flat()
    .filter((a): a is os.NetworkInterfaceInfo => !!a && (a.family === 'IPv4' || (v6 && a.family === 'IPv6' && !a.address.startsWith('fe80'))))
    .sort((a, b) => Number(a.internal) - Number(b.internal) || (a.family === b.family ? 0 : a.family === 'IPv4' ? -1 : 1));
  const urls = addrs.map((a) => `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${port}${path}`);
  return urls.length ? urls : [`${scheme}://127.0.0.1:${port}${path}`];
}
