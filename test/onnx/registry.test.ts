// model.onnx under the registry's guarantees: promotion verifies it with the other files, a
// rollback to a version whose model.onnx changed is refused, and a running classifier on ONNX
// Runtime hot-swaps to what was promoted and back to what was rolled back to.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Classifier } from '../../src/classify/classifier.js';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { convertVersion } from '../../src/classify/onnx-convert.js';
import { ModelRegistry } from '../../src/registry/registry.js';
import { silentLogger } from '../../src/log.js';
import { fixtureImages, prepareFixtures, removeDir, saveTinyMember, tempModelsDir, writeEnsemble } from '../classify/helpers.js';
import { DEFAULT_PREPROCESS } from '../../src/preprocess/prepare.js';

let dir = '';
const e = (version: string, member: string): EnsembleFile => ({ version, voting: 'soft', members: [{ name: 'm', version: member }] });

beforeAll(async () => {
  dir = await tempModelsDir();
  for (const [v, seed] of [['v1', 1], ['v2', 2]] as const) {
    await saveTinyMember(dir, { name: 'm', version: v, classes: ['a', 'b', 'c'], size: 16, seed });
    await convertVersion(path.join(dir, 'm', v));
  }
  await writeEnsemble(dir, e('E1', 'v1'));
});
afterAll(async () => removeDir(dir));

describe('model.onnx in the registry', () => {
  it('promotion and rollback verify model.onnx; the classifier swaps with them', async () => {
    const ensembleFile = path.join(dir, 'ensemble.json');
    const registry = new ModelRegistry({ modelsDir: dir, ensembleFile });
    const frames = (await prepareFixtures(await fixtureImages(), [{ size: 16, spec: DEFAULT_PREPROCESS }])).slice(0, 8);
    const c = new Classifier({ ensembleFile, modelsDir: dir, backend: 'onnx', workers: 1, maxBatch: 8, maxWaitMs: 2, topK: 3, logger: silentLogger() });
    await c.start();
    try {
      const v1 = await Promise.all(frames.map((f) => c.classify(f)));

      // v2's model.onnx changed after meta.json: promotion refuses it and E1 stays.
      const file = path.join(dir, 'm', 'v2', 'model.onnx');
      const good = await readFile(file);
      const changed = Buffer.from(good);
      changed[changed.length - 9] ^= 0x40;
      await writeFile(file, changed);
      await expect(registry.promote(e('E2', 'v2'))).rejects.toMatchObject({ code: 'PW_E_MODEL_PROMOTE', message: expect.stringMatching(/model\.onnx/) });
      expect((await registry.active())!.version).toBe('E1');

      await writeFile(file, good);
      await registry.promote(e('E2', 'v2'));
      await c.swapEnsemble(ensembleFile);
      const v2 = await Promise.all(frames.map((f) => c.classify(f)));
      expect(v2.every((p) => p.ensembleVersion === 'E2')).toBe(true);
      expect(v2.some((p, i) => Math.abs(p.probability - v1[i]!.probability) > 1e-6)).toBe(true);

      // Rolling back to E1 while v1's model.onnx is damaged is refused; once whole, it works.
      const v1File = path.join(dir, 'm', 'v1', 'model.onnx');
      const v1Good = await readFile(v1File);
      await writeFile(v1File, v1Good.subarray(0, v1Good.length - 100));
      await expect(registry.rollback()).rejects.toMatchObject({ code: 'PW_E_MODEL_PROMOTE' });
      expect((await registry.active())!.version).toBe('E2');
      await writeFile(v1File, v1Good);
      expect((await registry.rollback()).version).toBe('E1');
      await c.swapEnsemble(ensembleFile);
      const back = await Promise.all(frames.map((f) => c.classify(f)));
      back.forEach((p, i) => {
        expect(p.ensembleVersion).toBe('E1');
        expect(Math.abs(p.probability - v1[i]!.probability)).toBeLessThan(1e-7);
      });
    } finally {
      await c.stop();
    }
  });
});
