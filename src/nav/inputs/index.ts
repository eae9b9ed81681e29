// The inputs named in nav.*: UDP ports, TCP servers, serial devices and followed files.
import { PlankwatchError } from '../../errors.js';
import { FileTailInput } from './file-tail.js';
import type { InputContext, NavInput } from './lines.js';
import { SerialInput } from './serial.js';
import { TcpInput } from './tcp.js';
import { UdpInput } from './udp.js';

export type { InputHandlers, NavInput } from './lines.js';
export { LineSplitter } from './lines.js';
export { UdpInput } from './udp.js';
export { TcpInput } from './tcp.js';

export interface InputsConfig {
  udp: { ports: string; host: string };
  tcp: { endpoints: string; reconnectMaxS: number };
  serial: { ports: string; baudRate: number };
  file: { paths: string; fromStart: boolean };
}

const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '');

function port(text: string, key: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new PlankwatchError('PW_E_CONFIG_INVALID', `${key}: "${text}" is not a port number (0-65535)`);
  return n;
}

/** One input per entry of the config. Throws PW_E_CONFIG_INVALID naming the key. */
export function createInputs(c: InputsConfig, ctx: InputContext): NavInput[] {
  const out: NavInput[] = [];
  for (const p of list(c.udp.ports)) out.push(new UdpInput(c.udp.host, port(p, 'nav.udp.ports'), ctx));
  for (const e of list(c.tcp.endpoints)) {
    const i = e.lastIndexOf(':');
    if (i <= 0) throw new PlankwatchError('PW_E_CONFIG_INVALID', `nav.tcp.endpoints: "${e}" should be host:port, e.g. 192.168.1.10:10110`);
    out.push(new TcpInput(e.slice(0, i).replace(/^\[|\]$/g, ''), port(e.slice(i + 1), 'nav.tcp.endpoints'), c.tcp.reconnectMaxS * 1000, ctx));
  }
  for (const p of list(c.serial.ports)) out.push(new SerialInput(p, c.serial.baudRate, c.tcp.reconnectMaxS * 1000, ctx));
  for (const p of list(c.file.paths)) out.push(new FileTailInput(p, c.file.fromStart, ctx));
  return out;
}
