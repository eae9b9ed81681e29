// The command line as a technician uses it: exit codes and messages that name what to fix.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSince } from '../../src/commands/inspect.js';
import { REPO_ROOT } from '../helpers/daemon.js';
import { FIXTURE_DIR } from '../helpers/images.js';

const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });

function temp(name: string, text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'pw-cli-')), name);
  writeFileSync(file, text);
  return file;
}

describe('plankwatch CLI', () => {
  it('config validate: exit 0 for a good file, 2 with every bad key named for a bad one', () => {
    // validate checks the folders the daemon would create, as it would create them: a temporary one here.
    const good = run(['config', 'validate', temp('good.yaml', `ingest:\n  watchDir: ${path.join(mkdtempSync(path.join(tmpdir(), 'pw-cli-')), 'cam')}\n`)]);
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('valid');
    const bad = run(['config', 'validate', temp('bad.yaml', 'ingest:\n  watchDri: /cam\nclassify:\n  maxBatch: 0\n')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('PW_E_CONFIG_INVALID');
    expect(bad.stderr).toContain('ingest.watchDri: unknown key');
    expect(bad.stderr).toContain('classify.maxBatch: must be at least 1, got 0');
  });

  it('run refuses a bad config before touching anything, naming the key', () => {
    const r = run(['run', '--config', temp('bad.yaml', 'store:\n  countsWindowS: "soon"\n')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('store.countsWindowS: must be a number');
  });

  it('config defaults prints the shipped default.yaml', () => {
    const r = run(['config', 'defaults']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('watchDir: "data/incoming"');
  });

  it('every command has --help', () => {
    for (const cmd of ['run', 'classify', 'counts', 'status', 'config', 'average']) {
      const r = run([cmd, '--help']);
      expect(r.status, cmd).toBe(0);
      expect(r.stdout, cmd).toContain('Usage: plankwatch');
    }
  });

  it('average refuses versions of two different networks, naming both, and writes nothing', () => {
    const models = mkdtempSync(path.join(tmpdir(), 'pw-cli-models-'));
    const r = run(['average', 'models/vgg48/v1', 'models/vgg80/avg-v1-v2', '--data', 'test/fixtures/ndsb', '--member', 'x', '--version', 'y', '--models', models]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('plankwatch average: vgg80/avg-v1-v2 is a pw-vgg-80, vgg48/v1 a pw-vgg-48: only versions of one network can be averaged.');
    expect(spawnSync('ls', [models], { encoding: 'utf8' }).stdout).toBe('');
  });

  it('classify --json prints one object per file, and an error object for a bad file', () => {
    const image = path.join(FIXTURE_DIR, 'copepod_cyclopoid_oithona_eggs');
    const files = spawnSync('ls', [image], { encoding: 'utf8' }).stdout.trim().split('\n').slice(0, 3).map((f) => path.join(image, f));
    const r = run(['classify', '--json', ...files, path.join(REPO_ROOT, 'README.md')]);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(4);
    for (const line of lines.slice(0, 3)) {
      expect(typeof line.label).toBe('string');
      expect(line.probability as number).toBeGreaterThan(0);
      expect((line.topK as unknown[]).length).toBeGreaterThan(1);
    }
    expect(lines[3]).toMatchObject({ error: { code: 'PW_E_IMAGE_FORMAT' } });
    expect(r.status).toBe(1);
  });

  it('parses --since durations and ISO times', () => {
    expect(parseSince('30m', 1_000_000_000)).toBe(1_000_000_000 - 1_800_000);
    expect(parseSince('2d', 1e12)).toBe(1e12 - 2 * 86_400_000);
    expect(parseSince('2026-11-28T00:00:00Z')).toBe(Date.UTC(2026, 10, 28));
    expect(() => parseSince('yesterday')).toThrow(/--since/);
  });
});
