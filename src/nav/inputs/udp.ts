// NMEA over UDP: unicast or broadcast datagrams, each holding one or more lines.
import { createSocket, type Socket } from 'node:dgram';
import { PlankwatchError } from '../../errors.js';
import { LineSplitter, type InputContext, type NavInput } from './lines.js';

export class UdpInput implements NavInput {
  readonly name: string;
  readonly source: string;
  private socket: Socket | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly ctx: InputContext,
  ) {
    this.source = `udp:${port}`;
    this.name = `nav ${this.source}`;
  }

  /** The port bound (useful with port 0). */
  get boundPort(): number {
    return this.socket?.address().port ?? this.port;
  }

  /** Binds the port (address reuse on, broadcasts accepted). Throws PW_E_NAV_INPUT. */
  async start(): Promise<void> {
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    const { handlers } = this.ctx;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (err) => reject(new PlankwatchError('PW_E_NAV_INPUT', `nav.udp.ports: cannot listen on ${this.host}:${this.port}: ${err.message}`, { cause: err })));
      socket.bind(this.port, this.host, () => resolve());
    });
    socket.setBroadcast(true);
    socket.on('error', (err) => handlers.state(this.source, false, err));
    socket.on('message', (msg) => {
      const at = Date.now();
      // A datagram holds whole lines: a partial one at its end is not continued by the next.
      const splitter = new LineSplitter((line) => handlers.line(line, at, this.source), () => handlers.overflow(this.source));
      splitter.push(`${msg.toString('latin1')}\n`);
    });
    this.socket = socket;
    handlers.state(this.source, true);
  }

  async stop(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
