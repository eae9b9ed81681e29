import { describe, expect, it } from 'vitest';
import { randomHalvings, searchEnsembles, type SearchCandidate } from '../../src/learn/ensemble-search.js';
import { computeMetrics } from '../../src/learn/metrics.js';
import { voteRows } from '../../src/learn/voting.js';
import { mulberry32 } from '../../src/learn/random.js';

const N = 200;
const K = 5;

/** Labels, and candidates whose probabilities are noise: no set is really better than another. */
function noise(count: number, seed: number): { labels: Int32Array; candidates: SearchCandidate[] } {
  const rng = mulberry32(seed);
  const labels = Int32Array.from({ length: N }, () => Math.floor(rng() * K));
  const rows = () => {
    const p = new Float32Array(N * K);
    for (let r = 0; r < N; r++) {
      let sum = 0;
      for (let c = 0; c < K; c++) sum += p[r * K + c] = rng() + 1e-3;
      for (let c = 0; c < K; c++) p[r * K + c]! /= sum;
    }
    return p;
  };
  const candidates = Array.from({ length: count }, (_, i) => ({
    name: `m${i}`,
    version: 'v1',
    macs: 10,
    probs: new Map([
      ['identity', rows()],
      ['rot90', rows()],
    ] as const),
  }));
  return { labels, candidates };
}

/** A set's vote as the daemon takes it: each member's views averaged, then the members. */
function vote(candidates: SearchCandidate[], members: { name: string; tta?: string[] }[]): Float32Array {
  const out = new Float32Array(N * K);
  for (const m of members) {
    const c = candidates.find((x) => x.name === m.name)!;
    const views = (m.tta ?? ['identity']).map((t) => c.probs.get(t as 'identity')!);
    for (const v of views) for (let i = 0; i < out.length; i++) out[i]! += v[i]! / views.length / members.length;
  }
  return out;
}

/** Top-1 and log-loss of the rows a mask selects. */
function scoreRows(p: Float32Array, labels: Int32Array, mask: Uint8Array, want: number) {
  const rows = [...mask.keys()].filter((r) => mask[r] === want);
  const sub = new Float32Array(rows.length * K);
  rows.forEach((r, i) => sub.set(p.subarray(r * K, (r + 1) * K), i * K));
  return computeMetrics(sub, Int32Array.from(rows, (r) => labels[r]!), K);
}

describe('ensemble search', () => {
  it('gives a member invariant to quarter turns its mirror image as the second view, scored from that view', () => {
    const { labels, candidates } = noise(2, 5);
    const mirrored = { ...candidates[1]!, secondView: 'flipH' as const, probs: new Map([...candidates[1]!.probs].map(([t, p]) => [t === 'rot90' ? 'flipH' : t, p] as const)) };
    const { choices } = searchEnsembles([candidates[0]!, mirrored], labels, K, 40, { halvings: 0 });
    const both = choices.filter((c) => c.members.length === 2 && c.members.every((m) => m.tta));
    expect(both).toHaveLength(1);
    expect(both[0]!.members.map((m) => m.tta!.join())).toEqual(['identity,rot90', 'identity,flipH']);
    const expected = computeMetrics(vote([candidates[0]!, candidates[1]!], [{ name: 'm0', tta: ['identity', 'rot90'] }, { name: 'm1', tta: ['identity', 'rot90'] }]), labels, K);
    expect(both[0]!.top1).toBeCloseTo(expected.top1, 10);
    expect(both[0]!.logLoss).toBeCloseTo(expected.logLoss, 6);
  });

  it('with diagonal views, also tries the 45° turn alone and beside the image, and writes a lone turn as the member\'s own view', () => {
    const { labels, candidates } = noise(2, 7);
    const rng = mulberry32(3);
    const turned = Float32Array.from(candidates[0]!.probs.get('identity')!, (p) => p + 0.01 * rng());
    const diag = candidates.map((c) => ({ ...c, diagonalViews: true, probs: new Map([...c.probs, ['rot45', turned] as const]) }));
    const { choices } = searchEnsembles(diag, labels, K, 1e9, { halvings: 0 });
    expect(choices).toHaveLength(4 + 4 + 4 * 4); // four options for each alone, and every pair
    const lone = choices.find((c) => c.members.length === 1 && c.members[0]!.name === 'm1' && c.members[0]!.tta?.join() === 'rot45');
    expect(lone).toBeDefined();
    expect(lone!.macs).toBe(10);
    expect(lone!.top1).toBeCloseTo(computeMetrics(turned, labels, K).top1, 10);
    const pair = choices.find((c) => c.members.length === 1 && c.members[0]!.name === 'm1' && c.members[0]!.tta?.join() === 'identity,rot45');
    expect(pair!.macs).toBe(20);
    expect(pair!.logLoss).toBeCloseTo(computeMetrics(vote(diag, [{ name: 'm1', tta: ['identity', 'rot45'] }]), labels, K).logLoss, 6);
    // the image alone is written without views
    expect(choices.some((c) => c.members.length === 1 && c.members[0]!.name === 'm0' && c.members[0]!.tta === undefined)).toBe(true);
  });

  it('by the geometric rule, scores each set as the live geometric vote of its members\' averaged views', () => {
    const { labels, candidates } = noise(3, 9);
    const { choices } = searchEnsembles(candidates, labels, K, 1e9, { halvings: 0, rule: 'geometric' });
    expect(choices).toHaveLength(26);
    for (const c of choices) {
      const perMember = c.members.map((m) => {
        const views = (m.tta ?? ['identity']).map((t) => candidates.find((x) => x.name === m.name)!.probs.get(t as 'identity')!);
        return views.length === 1 ? views[0]! : Float32Array.from(views[0]!, (v, i) => (v + views[1]![i]!) / 2);
      });
      const expected = computeMetrics(voteRows('geometric', perMember, K), labels, K);
      expect(c.top1).toBeCloseTo(expected.top1, 10);
      expect(c.logLoss).toBeCloseTo(expected.logLoss, 5);
    }
    // The two rules rank differently on the same probabilities.
    const soft = searchEnsembles(candidates, labels, K, 1e9, { halvings: 0 }).choices;
    expect(soft.map((c) => c.logLoss)).not.toEqual(choices.map((c) => c.logLoss));
  });

  it('halves the images the same way for the same seed, exactly in two', () => {
    const a = randomHalvings(11, 3, 7);
    expect(a.map((m) => m.reduce((s, v) => s + v, 0))).toEqual([5, 5, 5]);
    expect(randomHalvings(11, 3, 7)).toEqual(a);
    expect(a[0]).not.toEqual(a[1]);
    expect(randomHalvings(11, 3, 8)).not.toEqual(a);
  });

  it('estimates the best set on images it was not chosen on: the choice of one half scored on the other', () => {
    const { labels, candidates } = noise(4, 3);
    const { choices, fair } = searchEnsembles(candidates, labels, K, 1e9, { halvings: 1 });
    // 4 members, each with one view or two: 3^4 − 1 sets.
    expect(choices).toHaveLength(80);
    // The same estimate worked out here from each set's vote, for the one halving, both ways.
    const [mask] = randomHalvings(N, 1);
    const scored = choices.map((c) => {
      const p = vote(candidates, c.members);
      return [scoreRows(p, labels, mask!, 1), scoreRows(p, labels, mask!, 0)];
    });
    let top1 = 0;
    let loss = 0;
    for (const [pick, other] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const best = (key: (s: (typeof scored)[number][number]) => number) => scored.reduce((b, s) => (key(s[pick]!) > key(b[pick]!) ? s : b));
      top1 += best((s) => s.top1 - s.logLoss * 1e-9)[other]!.top1 / 2;
      loss += best((s) => -s.logLoss)[other]!.logLoss / 2;
    }
    expect(fair!.halvings).toBe(1);
    expect(fair!.top1).toBeCloseTo(top1, 10);
    expect(fair!.logLoss).toBeCloseTo(loss, 6);
  });

  it('on noise, the best set chosen on all the images looks better than the fair estimate says it is', () => {
    const { labels, candidates } = noise(6, 11);
    const { choices, fair } = searchEnsembles(candidates, labels, K, 1e9);
    const bestTop1 = Math.max(...choices.map((c) => c.top1));
    const bestLoss = Math.min(...choices.map((c) => c.logLoss));
    expect(fair!.halvings).toBe(4);
    // Chance is 1/K: the in-sample best is lifted well above it by choice alone, the fair estimate is not.
    expect(bestTop1 - fair!.top1).toBeGreaterThan(0.03);
    expect(Math.abs(fair!.top1 - 1 / K)).toBeLessThan(0.05);
    expect(fair!.logLoss).toBeGreaterThan(bestLoss);
  });

  it('gives no estimate when asked for no halvings', () => {
    const { labels, candidates } = noise(2, 5);
    expect(searchEnsembles(candidates, labels, K, 1e9, { halvings: 0 }).fair).toBeNull();
  });
});
