// The daemon's resident memory after a burst: ONNX Runtime's per-session memory arena kept, for
// each of the ensemble's members, the largest batch's working memory for good (about 200 MiB
// over the four shipped members), which took the daemon past 512 MiB and never gave it back.
// A child process (its own, clean resident set) runs the shipped members through the same
// session settings as the daemon's inference thread.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('inference memory', () => {
  it('running batches of every size through the shipped members keeps little memory past the last batch', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'inference-memory.ts')], { encoding: 'utf8', timeout: 120_000 });
    const { loadedMiB, ranMiB } = JSON.parse(out.trim().split('\n').at(-1)!) as { loadedMiB: number; ranMiB: number };
    // Measured on the 2-core machine: +199 to +210 MiB with the arenas, +38 to +84 MiB without.
    expect(ranMiB - loadedMiB).toBeLessThan(150);
  }, 150_000);
});
