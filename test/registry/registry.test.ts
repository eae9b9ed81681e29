// The model registry on disk with real (tiny, untrained) model folders: listing, atomic promotion
// that verifies checksums first, previous ensembles kept, rollback walking the history back, and
// the watcher noticing a promotion made by another process.
import { existsSync, readdirSync } from 'node:fs';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { PlankwatchError } from '../../src/errors.js';
import { ModelRegistry, previousVersion, type HistoryEntry } from '../../src/registry/registry.js';
import { EnsembleWatcher } from '../../src/registry/watch.js';
import { removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';

let dir = '';
let registry: ModelRegistry;
const e = (version: string, member: string): EnsembleFile => ({ version, voting: 'soft', members: [{ name: 'm', version: member }] });

beforeEach(async () => {
  dir = await tempModelsDir();
  for (const v of ['v1', 'v2', 'v3']) await saveTinyMember(dir, { name: 'm', version: v, classes: ['a', 'b'], size: 16, seed: 1 });
  await writeEnsemble(dir, e('E1', 'v1'));
  registry = new ModelRegistry({ modelsDir: dir, ensembleFile: path.join(dir, 'ensemble.json') });
});
afterEach(async () => removeDir(dir));

describe('ModelRegistry', () => {
  it('promotes atomically, keeps the previous ensemble file, and rolls back step by step', async () => {
    await registry.promote(e('E2', 'v2'));
    expect((await registry.active())!.version).toBe('E2');
    expect(existsSync(path.join(dir, 'ensembles', 'E1.json'))).toBe(true);
    await registry.promote(e('E3', 'v3'));
    // No temporary file is left beside the ensemble file.
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect((await registry.rollback()).version).toBe('E2');
    expect((await registry.rollback()).version).toBe('E1');
    await expect(registry.rollback()).rejects.toMatchObject({ code: 'PW_E_MODEL_NOT_FOUND' });
    const listing = await registry.list();
    expect(listing.active!.version).toBe('E1');
    expect(listing.ensembles.map((x) => x.version).sort()).toEqual(['E1', 'E2', 'E3']);
    expect(listing.members.filter((m) => m.active).map((m) => m.version)).toEqual(['v1']);
    expect(listing.history.map((h) => `${h.action}:${h.version}`)).toEqual(['promote:E2', 'promote:E3', 'rollback:E2', 'rollback:E1']);
    // Promote by name, from the kept files.
    expect((await registry.promote('E3')).members[0]!.version).toBe('v3');
  });

  it('refuses a candidate whose member fails its checksums and leaves the active ensemble', async () => {
    await appendFile(path.join(dir, 'm', 'v2', 'weights.bin'), Buffer.from([1, 2, 3]));
    const err = await registry.promote(e('E2', 'v2')).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(PlankwatchError);
    expect((err as PlankwatchError).code).toBe('PW_E_MODEL_PROMOTE');
    expect((err as PlankwatchError).message).toContain('checksum');
    expect((await registry.active())!.version).toBe('E1');
    await expect(registry.promote('nope')).rejects.toMatchObject({ code: 'PW_E_MODEL_NOT_FOUND' });
  });

  it('stores candidates apart and can promote one by version', async () => {
    await registry.saveCandidate(e('C1', 'v2'));
    const listing = await registry.list();
    expect(listing.ensembles.find((x) => x.version === 'C1')!.kind).toBe('candidate');
    expect((await registry.promote('C1')).version).toBe('C1');
    expect(JSON.parse(await readFile(path.join(dir, 'ensemble.json'), 'utf8')).version).toBe('C1');
  });

  it('previousVersion follows promotions, skipping rollbacks', () => {
    const h = (version: string, action: HistoryEntry['action'], previous: string | null): HistoryEntry => ({ version, action, previous, at: '' });
    const history = [h('A', 'promote', 'Z'), h('B', 'finetune', 'A'), h('A', 'rollback', 'B')];
    expect(previousVersion(history, 'B')).toBe('A');
    expect(previousVersion(history, 'A')).toBe('Z');
    expect(previousVersion(history, 'Z')).toBeNull();
  });
});

describe('EnsembleWatcher', () => {
  it('reports a promotion made by another process once, and not the ones acknowledged', async () => {
    const seen: string[] = [];
    const watcher = new EnsembleWatcher({ file: path.join(dir, 'ensemble.json'), intervalMs: 50, initialVersion: 'E1', onChange: (x) => void seen.push(x.version), onError: () => undefined });
    await watcher.start();
    try {
      await watcher.check();
      expect(seen).toEqual([]);
      await new ModelRegistry({ modelsDir: dir, ensembleFile: path.join(dir, 'ensemble.json') }).promote(e('E2', 'v2'));
      await watcher.check();
      await watcher.check();
      expect(seen).toEqual(['E2']);
      watcher.acknowledge('E3');
      await writeFile(path.join(dir, 'ensemble.json'), JSON.stringify(e('E3', 'v3')));
      await watcher.check();
      expect(seen).toEqual(['E2']);
    } finally {
      watcher.stop();
    }
  });
});
