import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnsemble } from '../../src/classify/ensemble-loader.js';
import { PlankwatchError } from '../../src/errors.js';
import { removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from './helpers.js';

let dir: string;

beforeAll(async () => {
  dir = await tempModelsDir();
  await saveTinyMember(dir, { name: 'a', version: 'v1', classes: ['x', 'y', 'z'], size: 16, seed: 1 });
  await saveTinyMember(dir, { name: 'b', version: 'v2', classes: ['y', 'x', 'w'], size: 24, seed: 2 });
  await saveTinyMember(dir, { name: 'gone', version: 'v1', classes: ['x'], size: 16, seed: 3 });
  await rm(path.join(dir, 'gone', 'v1', 'weights.bin'));
  await saveTinyMember(dir, { name: 'nometa', version: 'v1', classes: ['x'], size: 16, seed: 4 });
  await rm(path.join(dir, 'nometa', 'v1', 'meta.json'));
  await saveTinyMember(dir, { name: 'tampered', version: 'v1', classes: ['x'], size: 16, seed: 5 });
  await writeFile(path.join(dir, 'tampered', 'v1', 'weights.bin'), Buffer.alloc(8));
});

afterAll(() => removeDir(dir));

async function loadError(promise: Promise<unknown>): Promise<PlankwatchError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PlankwatchError);
  expect((err as PlankwatchError).code).toBe('PW_E_MODEL_LOAD');
  return err as PlankwatchError;
}

describe('loadEnsemble', () => {
  it('validates members and returns aligned classes and the inputs preprocess must produce', async () => {
    const file = await writeEnsemble(dir, { version: 'e1', voting: 'soft', members: [{ name: 'a', version: 'v1' }, { name: 'b', version: 'v2', weight: 2 }] });
    const e = await loadEnsemble(file, dir);
    expect(e.classes).toEqual(['x', 'y', 'z', 'w']);
    expect(e.inputs.map((i) => i.size)).toEqual([16, 24]);
    expect(e.members.map((m) => m.weight)).toEqual([1, 2]);
    expect(e.tta).toEqual(['identity']);
    expect(e.members.map((m) => m.tta)).toEqual([['identity'], ['identity']]);
  });

  it('names a missing member folder', async () => {
    const err = await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [{ name: 'a', version: 'v9' }] }, dir));
    expect(err.message).toContain(path.join(dir, 'a', 'v9', 'meta.json'));
  });

  it('names a missing weights file', async () => {
    const err = await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [{ name: 'gone', version: 'v1' }] }, dir));
    expect(err.message).toContain(path.join(dir, 'gone', 'v1', 'weights.bin'));
    expect(err.message).toMatch(/missing/);
  });

  it('names a missing meta.json', async () => {
    const err = await loadError(loadEnsemble({ version: 'e', voting: 'hard', members: [{ name: 'nometa', version: 'v1' }] }, dir));
    expect(err.message).toContain(path.join(dir, 'nometa', 'v1', 'meta.json'));
  });

  it('detects a checksum mismatch', async () => {
    const err = await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [{ name: 'tampered', version: 'v1' }] }, dir));
    expect(err.message).toMatch(/checksum mismatch.*weights\.bin/);
  });

  it('names a missing or malformed ensemble file', async () => {
    const missing = path.join(dir, 'nope.json');
    expect((await loadError(loadEnsemble(missing, dir))).message).toContain(missing);
    const bad = await writeEnsemble(dir, { version: 'e', voting: 'mean' as 'soft', members: [{ name: 'a', version: 'v1' }] }, 'bad.json');
    expect((await loadError(loadEnsemble(bad, dir))).message).toMatch(/"voting" must be "soft", "geometric", "hard", not "mean"/);
    await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [] }, dir));
    await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [{ name: '../a', version: 'v1' }] }, dir));
    await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [{ name: 'a', version: 'v1' }], tta: ['rot30' as 'rot90'] }, dir));
    const memberTta = await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [{ name: 'a', version: 'v1', tta: ['identity', 'spin' as 'rot90'] }] }, dir));
    expect(memberTta.message).toMatch(/members\[0\]\.tta: unknown transform "spin"/);
    expect((await loadError(loadEnsemble({ version: 'e', voting: 'soft', members: [{ name: 'a', version: 'v1', tta: ['rot90', 'rot90'] }] }, dir))).message).toMatch(/twice/);
    for (const temperature of [0, -1, 50, '1.2' as unknown as number]) {
      const err = await loadError(loadEnsemble({ version: 'e', voting: 'geometric', members: [{ name: 'a', version: 'v1' }], temperature }, dir));
      expect(err.message).toMatch(/"temperature" must be a number from 0\.05 to 20/);
    }
  });
});
