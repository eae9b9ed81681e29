import { describe, expect, it } from 'vitest';
import { alignClasses, toUnion } from '../../src/classify/classes.js';
import type { LoadedEnsemble } from '../../src/classify/ensemble-loader.js';
import type { EnsembleFile, MemberMeta, VotingRule } from '../../src/classify/meta.js';
import { ensemblePrediction } from '../../src/classify/prediction.js';
import { GEOMETRIC_FLOOR, geometricVote, hardVote, softVote, vote } from '../../src/classify/voting.js';
import { voteRows } from '../../src/learn/voting.js';

const f = (...xs: number[]) => new Float32Array(xs);

describe('geometricVote', () => {
  it('takes the normalised geometric mean: a class one member rules out loses to one both support', () => {
    const probs = [f(0.9, 0.1, 0), f(0.02, 0.5, 0.48)];
    // The mean picks class 0 (0.46 against 0.30); the geometric mean picks class 1.
    expect(softVote(probs).index).toBe(0);
    const g = [Math.sqrt(0.9 * 0.02), Math.sqrt(0.1 * 0.5), Math.sqrt(GEOMETRIC_FLOOR * 0.48)];
    const z = g[0]! + g[1]! + g[2]!;
    const v = geometricVote(probs);
    expect(v.index).toBe(1);
    g.forEach((x, c) => expect(v.distribution[c]).toBeCloseTo(x / z, 6));
    expect(v.distribution.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });

  it('weights members as exponents, and equals the member itself for one member', () => {
    const probs = [f(0.6, 0.3, 0.1), f(0.2, 0.7, 0.1)];
    const v = geometricVote(probs, [3, 1]);
    const g = [0.6 ** 0.75 * 0.2 ** 0.25, 0.3 ** 0.75 * 0.7 ** 0.25, 0.1];
    const z = g[0]! + g[1]! + g[2]!;
    g.forEach((x, c) => expect(v.distribution[c]).toBeCloseTo(x / z, 6));
    expect(Array.from(geometricVote([f(0.6, 0.3, 0.1)]).distribution)).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.3, 6), expect.closeTo(0.1, 6)]);
  });

  it('is the rule vote() applies for "geometric", row by row in evaluation too', () => {
    const a = f(0.9, 0.1, 0, 0.2, 0.2, 0.6);
    const b = f(0.02, 0.5, 0.48, 0.1, 0.8, 0.1);
    expect(vote('geometric', [a.subarray(0, 3), b.subarray(0, 3)]).index).toBe(1);
    expect(vote('soft', [a.subarray(0, 3), b.subarray(0, 3)]).index).toBe(0);
    const rows = voteRows('geometric', [a, b], 3);
    for (const r of [0, 1]) {
      const one = geometricVote([a.subarray(r * 3, r * 3 + 3), b.subarray(r * 3, r * 3 + 3)]).distribution;
      expect(Array.from(rows.subarray(r * 3, r * 3 + 3))).toEqual(Array.from(one));
    }
  });
});

describe('softVote', () => {
  it('takes the mean of the members’ probabilities', () => {
    const v = softVote([f(0.6, 0.3, 0.1), f(0.2, 0.7, 0.1)]);
    expect(Array.from(v.distribution)).toEqual([expect.closeTo(0.4, 6), expect.closeTo(0.5, 6), expect.closeTo(0.1, 6)]);
    expect(v.index).toBe(1);
  });

  it('weights members', () => {
    const probs = [f(0.6, 0.3, 0.1), f(0.2, 0.7, 0.1)];
    const v = softVote(probs, [3, 1]);
    // 0.75 * member 0 + 0.25 * member 1
    expect(v.distribution[0]).toBeCloseTo(0.5, 6);
    expect(v.distribution[1]).toBeCloseTo(0.4, 6);
    expect(v.index).toBe(0);
  });

  it('rejects vectors of different lengths and bad weights', () => {
    expect(() => softVote([f(0.5, 0.5), f(1)])).toThrow(/align/);
    expect(() => softVote([f(1)], [0])).toThrow(/weights/);
    expect(() => softVote([])).toThrow();
  });
});

describe('hardVote', () => {
  it('follows the majority of top classes even against the mean', () => {
    // Members 0 and 1 narrowly prefer class 0; member 2 is sure of class 1: the mean favours 1.
    const probs = [f(0.51, 0.49, 0), f(0.51, 0.49, 0), f(0, 1, 0)];
    expect(softVote(probs).index).toBe(1);
    const v = hardVote(probs);
    expect(v.index).toBe(0);
    expect(v.votes[0]).toBeCloseTo(2 / 3, 6);
    expect(v.votes[1]).toBeCloseTo(1 / 3, 6);
  });

  it('breaks a tie by the mean probability', () => {
    // One vote each for classes 0 and 2; class 2 has the higher mean (0.45 vs 0.35).
    const probs = [f(0.5, 0.1, 0.4), f(0.2, 0.3, 0.5)];
    const v = hardVote(probs);
    expect(v.votes[0]).toBeCloseTo(0.5, 6);
    expect(v.votes[2]).toBeCloseTo(0.5, 6);
    expect(v.index).toBe(2);
  });

  it('counts weighted votes', () => {
    const probs = [f(0.9, 0.1), f(0.2, 0.8), f(0.3, 0.7)];
    expect(hardVote(probs).index).toBe(1);
    expect(hardVote(probs, [3, 1, 1]).index).toBe(0);
  });
});

describe('class alignment', () => {
  it('aligns members by label over the union of classes', () => {
    const { classes, maps } = alignClasses([
      ['a', 'b', 'c'],
      ['c', 'a', 'b', 'd'],
    ]);
    expect(classes).toEqual(['a', 'b', 'c', 'd']);
    expect(Array.from(maps[1]!)).toEqual([2, 0, 1, 3]);
    expect(Array.from(toUnion(f(0.1, 0.2, 0.3, 0.4), maps[1]!, 4))).toEqual(Array.from(f(0.2, 0.3, 0.1, 0.4)));
    expect(Array.from(toUnion(f(0.5, 0.25, 0.25), maps[0]!, 4))).toEqual([0.5, 0.25, 0.25, 0]);
  });
});

function ensembleOf(voting: VotingRule, members: { classes: string[]; weight?: number }[]): LoadedEnsemble {
  const file: EnsembleFile = {
    version: 'e1',
    voting,
    members: members.map((m, i) => ({ name: `m${i}`, version: 'v1', weight: m.weight })),
  };
  const { classes, maps } = alignClasses(members.map((m) => m.classes));
  return {
    file,
    classes,
    classMaps: maps,
    inputs: [],
    tta: ['identity'],
    members: members.map((m, i) => ({
      name: `m${i}`,
      version: 'v1',
      dir: '',
      weight: m.weight ?? 1,
      tta: ['identity'],
      meta: { classes: m.classes } as MemberMeta,
    })),
  };
}

describe('ensemblePrediction', () => {
  it('reports label, probability, margin, disagreement and top-k over aligned classes', () => {
    const e = ensembleOf('soft', [{ classes: ['copepod', 'diatom'] }, { classes: ['diatom', 'copepod', 'larvacean'] }, { classes: ['copepod', 'diatom'] }]);
    const p = ensemblePrediction(e, [f(0.7, 0.3), f(0.6, 0.1, 0.3), f(0.8, 0.2)], 2);
    // copepod: (0.7 + 0.1 + 0.8) / 3, diatom: (0.3 + 0.6 + 0.2) / 3, larvacean: 0.3 / 3
    expect(p.label).toBe('copepod');
    expect(p.probability).toBeCloseTo(1.6 / 3, 5);
    expect(p.margin).toBeCloseTo(0.5 / 3, 5);
    expect(p.disagreement).toBeCloseTo(1 / 3, 6);
    expect(p.topK.map((c) => c.label)).toEqual(['copepod', 'diatom']);
    expect(p.members[1]).toEqual({
      member: 'm1',
      version: 'v1',
      topK: [
        { label: 'diatom', probability: expect.closeTo(0.6, 6) },
        { label: 'larvacean', probability: expect.closeTo(0.3, 6) },
      ],
    });
    expect(p.ensembleVersion).toBe('e1');
  });

  it('hard voting: the majority label, margin 0 when the mean ranks another class first', () => {
    const e = ensembleOf('hard', [{ classes: ['a', 'b'] }, { classes: ['a', 'b'] }, { classes: ['a', 'b'] }]);
    const p = ensemblePrediction(e, [f(0.51, 0.49), f(0.51, 0.49), f(0, 1)], 2);
    expect(p.label).toBe('a');
    expect(p.probability).toBeCloseTo(1.02 / 3, 5);
    expect(p.margin).toBe(0);
    expect(p.disagreement).toBeCloseTo(1 / 3, 6);
    expect(p.topK[0]!.label).toBe('a');
  });

  it('geometric voting: label, probability and margin from the normalised geometric mean', () => {
    const e = ensembleOf('geometric', [{ classes: ['a', 'b', 'c'] }, { classes: ['a', 'b', 'c'] }]);
    const p = ensemblePrediction(e, [f(0.9, 0.1, 0), f(0.02, 0.5, 0.48)], 3);
    const g = [Math.sqrt(0.9 * 0.02), Math.sqrt(0.1 * 0.5), Math.sqrt(1e-10 * 0.48)];
    const z = g[0]! + g[1]! + g[2]!;
    expect(p.label).toBe('b');
    expect(p.probability).toBeCloseTo(g[1]! / z, 5);
    expect(p.margin).toBeCloseTo((g[1]! - g[0]!) / z, 5);
    expect(p.disagreement).toBeCloseTo(1 / 2, 6);
    expect(p.topK.map((c) => c.label)).toEqual(['b', 'a', 'c']);
  });
});
