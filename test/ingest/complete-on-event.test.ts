// A complete JPEG is taken on the watch event that brings its last bytes, not at the next
// completeness poll; a file that is not complete yet (cut in its entropy-coded data, or paused
// right after an embedded thumbnail's end-of-image marker) is not taken before stableMs.
// Real folders, real inotify watches, real JPEGs.
import { closeSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixtureFiles, makeHarness, sha256Of, sleep, tempDir, waitFor, type Harness } from './harness.js';

const fx = fixtureFiles();

/** stableMs and pollMs far above what the event path needs: a file taken sooner than pollMs after its close was taken on the event. */
const STABLE_MS = 3000;
const POLL_MS = 250;

describe('a complete file is taken on its watch event', () => {
  let root: string;
  let cleanup: () => void;
  let h: Harness | undefined;

  beforeEach(() => {
    ({ dir: root, cleanup } = tempDir('complete-on-event'));
  });

  afterEach(async () => {
    await h?.ingest.stop();
    h = undefined;
    cleanup();
  });

  it('a JPEG written in place is emitted right after its writer closes it, not a poll later; half-written, it is not taken', async () => {
    h = makeHarness(root, { stableMs: STABLE_MS, pollMs: POLL_MS });
    await h.ingest.start();
    const data = readFileSync(fx[0]!);
    const path = join(h.watchDir, 'inplace.jpg');
    const half = Math.floor(data.length / 2);
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, data, 0, half);
      await waitFor(() => h!.ingest.stats().settling === 1, 4000, 'the half-written file noticed');
      await sleep(600); // several polls: cut in its scan data, it is not taken
      expect(h.files, 'a half-written JPEG was taken').toEqual([]);
      writeSync(fd, data, half, data.length - half);
    } finally {
      closeSync(fd);
    }
    const closedAt = Date.now();
    await waitFor(() => h!.files.length === 1, 4000, 'the complete file');
    const got = h.files[0]!;
    // By the poll alone it could not come before the next-but-one tick: at least POLL_MS after the close.
    expect(got.emittedAt - closedAt).toBeLessThan(POLL_MS / 2);
    expect(got.bytes).toBe(data.length);
    expect(got.sha256).toBe(sha256Of(path));
  });

  it('a JPEG renamed into the folder is emitted at once', async () => {
    h = makeHarness(root, { stableMs: STABLE_MS, pollMs: POLL_MS });
    await h.ingest.start();
    const tmp = join(h.watchDir, 'frame.jpg.part');
    writeFileSync(tmp, readFileSync(fx[1]!));
    await sleep(100);
    renameSync(tmp, join(h.watchDir, 'frame.jpg'));
    const renamedAt = Date.now();
    await waitFor(() => h!.files.length === 1, 4000, 'the renamed file');
    expect(h.files[0]!.emittedAt - renamedAt).toBeLessThan(POLL_MS / 2);
    expect(h.files[0]!.relPath).toBe('frame.jpg');
  });

  it('a JPEG paused right after an embedded thumbnail (ending FF D9 before its own scan) waits for stableMs', async () => {
    h = makeHarness(root, { stableMs: STABLE_MS, pollMs: 100 });
    await h.ingest.start();
    const main = readFileSync(fx[0]!);
    const thumbnail = readFileSync(fx[1]!); // a whole JPEG: ends with its own end-of-image marker
    const segment = Buffer.alloc(4);
    segment.writeUInt16BE(0xfffe, 0); // a comment segment carrying the thumbnail
    segment.writeUInt16BE(thumbnail.length + 2, 2);
    const head = Buffer.concat([main.subarray(0, 2), segment, thumbnail]);
    const data = Buffer.concat([head, main.subarray(2)]);
    expect(head.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
    const path = join(h.watchDir, 'with-thumbnail.jpg');
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, head);
      await waitFor(() => h!.ingest.stats().settling === 1, 4000, 'the paused file noticed');
      await sleep(900); // many polls, well short of stableMs
      expect(h.files, 'taken while paused after the thumbnail').toEqual([]);
      writeSync(fd, data, head.length, data.length - head.length);
    } finally {
      closeSync(fd);
    }
    const closedAt = Date.now();
    await waitFor(() => h!.files.length === 1, 4000, 'the complete file');
    expect(h.files[0]!.emittedAt - closedAt).toBeLessThan(STABLE_MS / 2);
    expect(h.files[0]!.bytes).toBe(data.length);
    expect(h.files[0]!.sha256).toBe(sha256Of(path));
  });
});
