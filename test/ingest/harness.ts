// A real Ingest on real temp folders, with handlers that record what they receive.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { Ingest, type IngestOptions, type IngestReject, type KnownAnswer } from '../../src/ingest/ingest.js';
import type { Logger } from '../../src/log.js';
import type { IncomingFile } from '../../src/types.js';

export { fixtureFiles, tempDir } from '../store/helpers.js';

/** Logs captured as parsed JSON lines. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

export function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function put(path: string, data: Buffer | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` until true or throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 8000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export interface Harness {
  ingest: Ingest;
  root: string;
  watchDir: string;
  archiveDir: string;
  quarantineDir: string;
  files: (IncomingFile & { emittedAt: number })[];
  rejects: IngestReject[];
  lines: Record<string, unknown>[];
}

export interface HarnessOptions extends Partial<Omit<IngestOptions, 'logger'>> {
  /** Called for each file; default: record only (the test finishes files itself). */
  onFile?: (file: IncomingFile, h: Harness) => void | Promise<void>;
  onReject?: (reject: IngestReject, h: Harness) => void | Promise<void>;
  isKnown?: (relPath: string, size: number, mtimeMs: number) => KnownAnswer;
}

/** Builds (does not start) an Ingest over `root/incoming`, archive and quarantine beside it. */
export function makeHarness(root: string, options: HarnessOptions = {}): Harness {
  const { onFile, onReject, isKnown, ...rest } = options;
  const { logger, lines } = captureLogger();
  const watchDir = rest.watchDir ?? join(root, 'incoming');
  const archiveDir = rest.archiveDir ?? join(root, 'archive');
  const quarantineDir = rest.quarantineDir ?? join(root, 'quarantine');
  const h = { root, watchDir, archiveDir, quarantineDir, files: [], rejects: [], lines } as unknown as Harness;
  h.ingest = new Ingest(
    {
      onProcessed: 'leave',
      stableMs: 200,
      pollMs: 25,
      rescanIntervalMs: 0,
      maxPending: 64,
      ...rest,
      watchDir,
      archiveDir,
      quarantineDir,
      logger,
    },
    {
      onFile: (file) => {
        h.files.push({ ...file, emittedAt: Date.now() });
        return onFile?.(file, h);
      },
      onReject: (reject) => {
        h.rejects.push(reject);
        return onReject?.(reject, h);
      },
      isKnown: (relPath, size, mtimeMs) => isKnown?.(relPath, size, mtimeMs) ?? false,
    },
  );
  return h;
}
