// `plankwatch train --schedule`: the cosine decay over the epochs (the plain recipe's default) or
// over --max-minutes, as the run's meta.json records it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/daemon.js';

const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');
const work = mkdtempSync(path.join(tmpdir(), 'pw-train-schedule-'));

function train(version: string, extra: string[]): { status: number | null; stderr: string; training: Record<string, unknown> } {
  const models = path.join(work, 'models');
  const args = ['train', '--data', 'test/fixtures/ndsb', '--member', 'tiny', '--arch', 'pw-tiny-32', '--version', version, '--models', models, '--epochs', '1', '--batch-size', '16', '--seed', '3', '--backend', 'wasm', ...extra];
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, PLANKWATCH_CACHE_DIR: path.join(work, 'cache') }, timeout: 240_000 });
  const meta = r.status === 0 ? (JSON.parse(readFileSync(path.join(models, 'tiny', version, 'meta.json'), 'utf8')) as { training: Record<string, unknown> }) : { training: {} };
  return { status: r.status, stderr: r.stderr, training: meta.training };
}

describe('train --schedule', () => {
  it('time: the decay follows --max-minutes; epochs (the default without --from): it follows --epochs', () => {
    const timed = train('timed', ['--schedule', 'time', '--max-minutes', '30']);
    expect(timed.status, timed.stderr).toBe(0);
    expect(timed.training.schedule).toBe('cosine over the time budget');
    expect(timed.training.maxMinutes).toBe(30);
    const plain = train('plain', ['--max-minutes', '30']);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.training.schedule).toBeUndefined();
  }, 300_000);

  it('refuses a schedule it does not know', () => {
    const bad = train('bad', ['--schedule', 'weekly']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--schedule/);
  });
});
