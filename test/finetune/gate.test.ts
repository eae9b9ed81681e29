// The promotion gate's rules, the frozen evaluation split, and growing a classifier head.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it } from 'vitest';
import { decide, type EnsembleScore, type GateRules } from '../../src/finetune/gate.js';
import { growHead } from '../../src/finetune/head.js';
import { splitPart, splitScore } from '../../src/finetune/split.js';
import { buildModel } from '../../src/learn/architectures.js';
import { createHash } from 'node:crypto';

const rules: GateRules = { maxAccuracyDrop: 0, maxRecallDrop: 0.02, minClassExamples: 10, minEvalImages: 20 };
const score = (accuracy: number, perClass: Record<string, [number, number]>): EnsembleScore => ({
  accuracy,
  count: Object.values(perClass).reduce((a, [, n]) => a + n, 0),
  perClass: Object.fromEntries(Object.entries(perClass).map(([k, [recall, support]]) => [k, { recall, support }])),
});

describe('decide', () => {
  it('promotes when accuracy holds and no class with enough images loses over 2 points', () => {
    const d = decide(score(0.9, { a: [0.9, 50], b: [0.9, 50], n: [0, 10] }), score(0.92, { a: [0.885, 50], b: [0.9, 50], n: [0.8, 10] }), rules);
    expect(d.promote).toBe(true);
    expect(d.reason).toContain('90.0% -> 92.0%');
  });

  it('rejects an accuracy drop, and a recall drop of a class with enough images, naming each', () => {
    const d = decide(score(0.9, { a: [0.9, 50], b: [0.9, 50], c: [1, 5] }), score(0.89, { a: [0.85, 50], b: [0.9, 50], c: [0, 5] }), rules);
    expect(d.promote).toBe(false);
    expect(d.failures).toHaveLength(2);
    expect(d.reason).toContain('accuracy would drop from 90.0% to 89.0%');
    expect(d.reason).toContain('recall of a would drop from 90.0% to 85.0% (50 images)');
    // c has too few images to be held to the recall rule.
    expect(d.classes.find((x) => x.name === 'c')!.checked).toBe(false);
  });

  it('rejects when the evaluation set is too small to judge', () => {
    expect(decide(score(0.5, { a: [0.5, 4] }), score(0.75, { a: [0.75, 4] }), rules).promote).toBe(false);
  });
});

describe('frozen evaluation split', () => {
  it('is fixed by the sha256 and close to the fraction', () => {
    const shas = Array.from({ length: 4000 }, (_, i) => createHash('sha256').update(String(i)).digest('hex'));
    const evalShare = shas.filter((s) => splitPart(s, 0.2) === 'eval').length / shas.length;
    expect(evalShare).toBeGreaterThan(0.18);
    expect(evalShare).toBeLessThan(0.22);
    expect(shas.map((s) => splitScore(s))).toEqual(shas.map((s) => splitScore(s)));
    // A frame in eval at 0.1 stays in eval at 0.2 (growing the fraction never moves eval frames to train).
    for (const s of shas) if (splitPart(s, 0.1) === 'eval') expect(splitPart(s, 0.2)).toBe('eval');
  });
});

describe('growHead', () => {
  it('keeps the old outputs\' logits and adds new classes that win nothing yet', async () => {
    await tf.setBackend('cpu');
    const model = buildModel('pw-tiny-32', { numClasses: 3, seed: 4 });
    const grown = await growHead(model, 2, 7);
    expect(grown.outputs[0]!.shape[1]).toBe(5);
    expect(grown.getLayer('logits').getWeights()[0]!.shape).toEqual([32, 5]);
    const x = tf.randomUniform([6, 32, 32, 1], 0, 1, 'float32', 3);
    const before = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    const after = (grown.predict(x) as tf.Tensor).arraySync() as number[][];
    for (let r = 0; r < 6; r++) {
      const oldArg = before[r]!.indexOf(Math.max(...before[r]!));
      const newArg = after[r]!.indexOf(Math.max(...after[r]!));
      expect(newArg).toBe(oldArg);
      // Ratios between old classes are unchanged: same old logits.
      expect(after[r]![0]! / after[r]![1]!).toBeCloseTo(before[r]![0]! / before[r]![1]!, 4);
    }
    tf.dispose(x);
    model.dispose();
    grown.dispose();
  });
});
