// `plankwatch replay`: a recorded navigation file and a folder of images, played into a running
// daemon for tests, demos and benchmarks (see docs/navigation.md "Replay").
import type { Command } from 'commander';
import { PlankwatchError } from '../errors.js';
import { replay } from '../nav/replay.js';

const positive = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!(n > 0)) throw new PlankwatchError('PW_E_REPLAY', `${name} must be a number above 0 (got "${v}")`);
  return n;
};

export function registerReplayCommands(program: Command): void {
  program
    .command('replay')
    .description('Play a recorded NMEA/CTD file to the daemon\'s navigation input and copy images into its watch folder, named with the recording\'s time.')
    .option('--nav <file>', 'recorded NMEA 0183 / CTD lines, one per line')
    .option('--udp <host:port>', 'send the lines as UDP datagrams here (the daemon\'s nav.udp.ports)')
    .option('--tcp <port>', 'serve the lines on this TCP port, as a multiplexer (the daemon\'s nav.tcp.endpoints connects)', positive('--tcp'))
    .option('--speed <x>', 'recording seconds per second', positive('--speed'), 1)
    .option('--images <dir>', 'folder of images to copy (sorted by name)')
    .option('--into <dir>', 'watch folder to copy them into (ingest.watchDir)')
    .option('--rate <n>', 'images per second', positive('--rate'), 2)
    .option('--count <n>', 'copy this many images (cycling through the folder); default: each once', positive('--count'))
    .action(async (opts: { nav?: string; udp?: string; tcp?: number; speed: number; images?: string; into?: string; rate: number; count?: number }) => {
      if (opts.nav && !opts.udp && opts.tcp === undefined) throw new PlankwatchError('PW_E_REPLAY', '--nav needs --udp HOST:PORT or --tcp PORT');
      if (Boolean(opts.images) !== Boolean(opts.into)) throw new PlankwatchError('PW_E_REPLAY', '--images and --into go together');
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      process.once('SIGTERM', () => controller.abort());
      const r = await replay({
        ...(opts.nav ? { navFile: opts.nav } : {}),
        ...(opts.udp ? { udp: opts.udp } : {}),
        ...(opts.tcp !== undefined ? { tcpPort: opts.tcp } : {}),
        speed: opts.speed,
        ...(opts.images ? { imagesDir: opts.images } : {}),
        ...(opts.into ? { into: opts.into } : {}),
        rate: opts.rate,
        ...(opts.count !== undefined ? { count: Math.trunc(opts.count) } : {}),
        signal: controller.signal,
        onListening: (port) => process.stderr.write(`serving the recording on TCP port ${port}\n`),
      });
      const span = r.firstMs !== null && r.lastMs !== null ? ` (${new Date(r.firstMs).toISOString()} to ${new Date(r.lastMs).toISOString()})` : '';
      process.stdout.write(`replayed ${r.lines} lines${span} and ${r.images} images\n`);
    });
}
