// A listener on a Unix datagram socket, standing in for systemd's NOTIFY_SOCKET. Node has no Unix
// datagram sockets, so a few lines of Python (present wherever systemd is) receive the messages.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    data = s.recv(65536).decode()
    print(data.replace("\\n", "|"), flush=True)
`;

export interface NotifySocket {
  path: string;
  messages: string[];
  close(): void;
}

export async function notifySocket(): Promise<NotifySocket> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pw-notify-'));
  const socketPath = path.join(dir, 'notify.sock');
  const child: ChildProcess = spawn('python3', ['-c', LISTENER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line === 'listening') resolve();
        else messages.push(line);
      }
    });
    child.once('exit', (code) => reject(new Error(`notify listener exited ${code}`)));
  });
  return { path: socketPath, messages, close: () => child.kill() };
}
