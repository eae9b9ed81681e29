// `plankwatch replay`: plays a recorded NMEA/CTD file to a daemon's navigation input (UDP datagrams
// to it, or a TCP server it connects to, as a multiplexer would be), and copies a folder of images
// into a watch folder at a chosen rate, each named with the recording's time at that moment
// (YYYYMMDDTHHMMSS.mmmZ_<name>, which nav.time.filenamePattern reads by default).
import { createSocket } from 'node:dgram';
import { copyFile, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { PlankwatchError } from '../errors.js';
import { checkFrame, decodeNmea } from './nmea.js';
import { StreamClock } from './stream-clock.js';

export interface ReplayOptions {
  /** Recording: one sentence per line. */
  navFile?: string;
  /** host:port to send UDP datagrams to. */
  udp?: string;
  /** Port to serve the recording on (the daemon's nav.tcp.endpoints connects). */
  tcpPort?: number;
  /** Recording seconds per wall-clock second. Default 1. */
  speed?: number;
  /** Folder of images to copy (files sorted by name). */
  imagesDir?: string;
  /** Watch folder to copy them into. */
  into?: string;
  /** Images per wall-clock second. Default 2. */
  rate?: number;
  /** Copy at most this many images (cycling through the folder if it holds fewer). Default: each once. */
  count?: number;
  /** Time of the first image when there is no recording (ms since epoch). Default now. */
  startMs?: number;
  signal?: AbortSignal;
  /** Called when the TCP server listens (its port). */
  onListening?: (port: number) => void;
}

export interface ReplayResult {
  lines: number;
  images: number;
  /** Recording time span played (ms since epoch), null without times. */
  firstMs: number | null;
  lastMs: number | null;
}

/** Each line of a recording with the recording's time at it (the last timed sentence's); blank and # lines left out. */
export function timeline(text: string, now = Date.now()): { line: string; t: number | null }[] {
  // Blank lines and # comments (as in gpsd's test logs) are not played.
  const rows = text.split(/\r\n|\n|\r/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const decoded = rows.map((line) => {
    const frame = checkFrame(line, false);
    const o = frame.ok ? decodeNmea(frame.sentence, frame.body) : null;
    return { line, o: o && (o.kind === 'fix' || o.kind === 'date') ? o : null };
  });
  // Time-only sentences (GGA) before the first date (RMC, ZDA) take that date's day.
  const dated = decoded.find((d) => d.o && d.o.dateMs !== null)?.o;
  const clock = new StreamClock();
  let current: number | null = dated ? dated.dateMs! + dated.todMs : null;
  const out: { line: string; t: number | null }[] = [];
  for (const { line, o } of decoded) {
    if (o) {
      const t = clock.resolve(o.todMs, o.dateMs, current ?? now);
      clock.observe(t, o.dateMs !== null, t);
      current = t;
    }
    out.push({ line, t: o ? current : out.length > 0 ? out[out.length - 1]!.t : null });
  }
  // Lines before the first time take it.
  const first = out.find((l) => l.t !== null)?.t ?? null;
  for (const l of out) if (l.t === null) l.t = first;
  return out;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** The file-name stamp of an instant: 20261207T001512.345Z. */
export function stampOf(t: number): string {
  return new Date(t).toISOString().replace(/[-:]/g, '');
}

/** Runs a replay to its end (or until the signal aborts). Throws PW_E_REPLAY. */
export async function replay(o: ReplayOptions): Promise<ReplayResult> {
  const speed = o.speed ?? 1;
  const lines = o.navFile ? timeline(await readFile(o.navFile, 'latin1').catch((err: unknown) => fail(`cannot read ${o.navFile}`, err))) : [];
  const firstMs = lines.find((l) => l.t !== null)?.t ?? null;
  const lastMs = lines.at(-1)?.t ?? null;
  const sink = await openSink(o);
  const started = Date.now();
  const base = firstMs ?? o.startMs ?? started;
  /** The recording's time now. */
  const streamNow = () => base + (Date.now() - started) * speed;
  const result: ReplayResult = { lines: 0, images: 0, firstMs, lastMs };
  const playNav = async () => {
    for (const { line, t } of lines) {
      if (o.signal?.aborted) return;
      // A gap in the recording is played as it was, up to a minute of waiting at a time.
      if (t !== null) await sleep(Math.min(60_000, (t - base) / speed - (Date.now() - started)), o.signal);
      await sink.send(line);
      result.lines++;
    }
  };
  const playImages = async () => {
    if (!o.imagesDir || !o.into) return;
    const names = (await readdir(o.imagesDir).catch((err: unknown) => fail(`cannot read ${o.imagesDir}`, err))).filter((n) => /\.(jpe?g|png|tiff?)$/i.test(n)).sort();
    if (names.length === 0) fail(`${o.imagesDir} holds no JPEG, PNG or TIFF image`);
    await mkdir(o.into, { recursive: true });
    const count = o.count ?? names.length;
    const gapMs = 1000 / (o.rate ?? 2);
    for (let i = 0; i < count && !o.signal?.aborted; i++) {
      await sleep(i * gapMs - (Date.now() - started), o.signal);
      const name = names[i % names.length]!;
      const dest = path.join(o.into, `${stampOf(streamNow())}_${i}_${name}`);
      const tmp = `${dest}.part`;
      await copyFile(path.join(o.imagesDir, name), tmp).catch((err: unknown) => fail(`cannot copy ${name} into ${o.into}`, err));
      await rename(tmp, dest);
      result.images++;
    }
  };
  try {
    await Promise.all([playNav(), playImages()]);
  } finally {
    await sink.close();
  }
  return result;
}

function fail(what: string, err?: unknown): never {
  throw new PlankwatchError('PW_E_REPLAY', `${what}${err instanceof Error ? `: ${err.message}` : ''}`, { cause: err });
}

interface Sink {
  send(line: string): Promise<void>;
  close(): Promise<void>;
}

async function openSink(o: ReplayOptions): Promise<Sink> {
  if (o.udp) {
    const i = o.udp.lastIndexOf(':');
    const host = i > 0 ? o.udp.slice(0, i) : '127.0.0.1';
    const port = Number(o.udp.slice(i + 1));
    if (!Number.isInteger(port) || port <= 0 || port > 65535) fail(`--udp ${o.udp}: give host:port, e.g. 127.0.0.1:10110`);
    const socket = createSocket('udp4');
    socket.on('error', () => undefined);
    socket.bind(() => socket.setBroadcast(true));
    return {
      send: (line) => new Promise((resolve) => socket.send(`${line}\r\n`, port, host, () => resolve())),
      close: () => new Promise((resolve) => socket.close(() => resolve())),
    };
  }
  if (o.tcpPort !== undefined) {
    const clients = new Set<Socket>();
    const server: Server = createServer((s) => {
      clients.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => clients.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new PlankwatchError('PW_E_REPLAY', `cannot serve on port ${o.tcpPort}: ${err.message}`, { cause: err })));
      server.listen(o.tcpPort, () => resolve());
    });
    o.onListening?.((server.address() as { port: number }).port);
    // The recording starts once a daemon is connected (or at once when nothing will connect: no wait past 30 s).
    for (let waited = 0; clients.size === 0 && waited < 30_000 && !o.signal?.aborted; waited += 50) await sleep(50, o.signal);
    return {
      send: async (line) => {
        for (const c of clients) c.write(`${line}\r\n`);
      },
      close: () => {
        for (const c of clients) c.end();
        return new Promise((resolve) => server.close(() => resolve()));
      },
    };
  }
  return { send: async () => undefined, close: async () => undefined };
}
