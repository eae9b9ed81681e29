import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { EnsembleFile } from '../../src/classify/meta.js';
import { NO_AUGMENT } from '../../src/learn/augment.js';
import { runEvaluation, type EvaluateOptions } from '../../src/learn/evaluate.js';
import { runTraining } from '../../src/learn/train-run.js';

const FIXTURES = path.join('test', 'fixtures', 'ndsb');
let tmp = '';
let ensembleFile = '';
let threeFile = '';

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pw-eval-'));
  process.env.PLANKWATCH_CACHE_DIR = path.join(tmp, 'cache');
  const modelsDir = path.join(tmp, 'models');
  for (const [member, seed] of [['a', 1], ['b', 2], ['c', 3]] as const) {
    await runTraining({
      data: FIXTURES, member, architecture: 'pw-tiny-32', modelsDir, version: 'v1', seed: 5, split: path.join(modelsDir, 'splits', 'fixtures'),
      validationFraction: 0.25, epochs: 2 + seed, batchSize: 8, learningRate: 0.003, weightDecay: 0, classWeights: 'none',
      augment: NO_AUGMENT, patience: 0, maxMinutes: 0, resume: false, backend: 'wasm', command: 'plankwatch train (test)',
    });
  }
  const ensemble: EnsembleFile = { version: 'test', voting: 'soft', members: [{ name: 'a', version: 'v1' }, { name: 'b', version: 'v1' }] };
  ensembleFile = path.join(modelsDir, 'ensemble.json');
  await writeFile(ensembleFile, JSON.stringify(ensemble));
  threeFile = path.join(modelsDir, 'three.json');
  await writeFile(threeFile, JSON.stringify({ ...ensemble, members: [...ensemble.members, { name: 'c', version: 'v1' }] }));
});

const base = (): EvaluateOptions => ({
  data: FIXTURES, ensemble: ensembleFile, all: false, allowLeak: false, tta: ['identity', 'rot90', 'flipH'], outDir: path.join(tmp, 'eval'), limit: 0, backend: 'wasm',
});

describe('evaluate', () => {
  it('compares members, soft, geometric and hard voting, with and without TTA, on the held-out split only', async () => {
    const summary = await runEvaluation(base());
    expect(summary.count).toBe(24);
    const names = summary.variants.map((v) => `${v.name}${v.tta ? '+tta' : ''}`);
    expect(names).toEqual(['a/v1', 'a/v1+tta', 'b/v1', 'b/v1+tta', 'soft vote', 'soft vote+tta', 'geometric vote', 'geometric vote+tta', 'hard vote', 'hard vote+tta']);
    for (const v of summary.variants) {
      expect(v.metrics.top1).toBeGreaterThanOrEqual(0);
      expect(v.metrics.top5).toBeGreaterThanOrEqual(v.metrics.top1);
      expect(v.imagesPerSecond).toBeGreaterThan(0);
    }
    expect(summary.best).toMatch(/lowest log-loss/);
    expect(existsSync(path.join(tmp, 'eval', 'confusion.png'))).toBe(true);
    const report = await readFile(path.join(tmp, 'eval', 'report.md'), 'utf8');
    expect(report).toContain('No evaluated image was used to train any member.');
    const json = JSON.parse(await readFile(path.join(tmp, 'eval', 'evaluation.json'), 'utf8')) as { leaks: Record<string, number> };
    expect(json.leaks).toEqual({ 'a/v1': 0, 'b/v1': 0 });
  });

  it('refuses images a member was trained on, unless told to measure anyway', async () => {
    await expect(runEvaluation({ ...base(), all: true })).rejects.toThrow(/used to train/);
    const leaky = await runEvaluation({ ...base(), all: true, allowLeak: true, tta: ['identity'], outDir: path.join(tmp, 'eval-all') });
    expect(leaky.count).toBe(96);
    expect(leaky.leaks['a/v1']).toBe(72);
    expect(await readFile(path.join(tmp, 'eval-all', 'report.md'), 'utf8')).toContain('Warning');
  });

  it('with three members, scores the soft vote of every pair too, equal to that pair as an ensemble', async () => {
    const pair = await runEvaluation({ ...base(), outDir: path.join(tmp, 'eval-pair') });
    const three = await runEvaluation({ ...base(), ensemble: threeFile, outDir: path.join(tmp, 'eval-three') });
    const names = three.variants.map((v) => `${v.name}${v.tta ? '+tta' : ''}`);
    for (const set of ['a/v1 + b/v1', 'a/v1 + c/v1', 'b/v1 + c/v1']) {
      expect(names).toContain(`soft vote ${set}`);
      expect(names).toContain(`soft vote ${set}+tta`);
    }
    expect(names.filter((n) => n.startsWith('soft vote '))).toHaveLength(6);
    const ab = three.variants.find((v) => v.name === 'soft vote a/v1 + b/v1' && !v.tta)!;
    const abTta = three.variants.find((v) => v.name === 'soft vote a/v1 + b/v1' && v.tta)!;
    const whole = pair.variants.find((v) => v.name === 'soft vote' && !v.tta)!;
    const wholeTta = pair.variants.find((v) => v.name === 'soft vote' && v.tta)!;
    expect(ab.metrics.logLoss).toBeCloseTo(whole.metrics.logLoss, 6);
    expect(ab.metrics.top1).toBe(whole.metrics.top1);
    expect(abTta.metrics.logLoss).toBeCloseTo(wholeTta.metrics.logLoss, 6);
    expect(three.table).toContain('soft vote b/v1 + c/v1 + TTA');
    // evaluation.json keeps a smaller set's headline figures only; the members and the whole vote keep everything.
    type Row = { name: string; subset?: boolean; metrics: { top1: number; confusion?: number[][] } };
    const rows = (JSON.parse(await readFile(path.join(tmp, 'eval-three', 'evaluation.json'), 'utf8')) as { variants: Row[] }).variants;
    expect(rows.filter((r) => r.subset)).toHaveLength(6);
    expect(rows.filter((r) => r.subset).every((r) => r.metrics.confusion === undefined && r.metrics.top1 >= 0)).toBe(true);
    expect(rows.find((r) => r.name === 'soft vote')!.metrics.confusion).toHaveLength(rows.find((r) => r.name === 'a/v1')!.metrics.confusion!.length);
  });

  it('scores the ensemble with the views its file gives each member, as the daemon runs it', async () => {
    const views = ['identity', 'rot90', 'flipH'] as const;
    const write = async (name: string, members: EnsembleFile['members']) => {
      const file = path.join(tmp, 'models', name);
      await writeFile(file, JSON.stringify({ version: name, voting: 'soft', members } satisfies EnsembleFile));
      return runEvaluation({ ...base(), ensemble: file, outDir: path.join(tmp, `eval-${name}`) });
    };
    const configured = 'soft vote, views as in the ensemble file';
    // Every member with the evaluated transforms: the same as the soft vote with TTA.
    const all = await write('all-views.json', [{ name: 'a', version: 'v1', tta: [...views] }, { name: 'b', version: 'v1', tta: [...views] }]);
    const asConfigured = all.variants.find((v) => v.name === configured)!;
    expect(asConfigured.metrics.logLoss).toBeCloseTo(all.variants.find((v) => v.name === 'soft vote' && v.tta)!.metrics.logLoss, 5);
    // Views for one member only: between the plain vote and the vote with TTA for every member.
    const one = await write('one-views.json', [{ name: 'a', version: 'v1', tta: ['identity', 'rot90'] }, { name: 'b', version: 'v1' }]);
    const mixed = one.variants.find((v) => v.name === configured)!;
    const plain = one.variants.find((v) => v.name === 'soft vote' && !v.tta)!;
    expect(mixed.metrics.logLoss).not.toBeCloseTo(plain.metrics.logLoss, 5);
    // No views of its own anywhere: no such row.
    expect((await write('no-views.json', [{ name: 'a', version: 'v1' }, { name: 'b', version: 'v1' }])).variants.some((v) => v.name === configured)).toBe(false);
  });

  it('saves each member\'s probabilities, from which the reported figures follow', async () => {
    const out = path.join(tmp, 'eval-saved');
    const summary = await runEvaluation({ ...base(), tta: ['identity'], saveProbabilities: true, outDir: out });
    const saved = JSON.parse(await readFile(path.join(out, 'probabilities.json'), 'utf8')) as { images: string[]; labels: number[]; classes: string[]; members: { name: string; file: string }[] };
    expect(saved.images).toHaveLength(24);
    expect(saved.members.map((m) => m.name)).toEqual(['a', 'b']);
    const k = saved.classes.length;
    const rows = await Promise.all(saved.members.map(async (m) => new Float32Array((await readFile(path.join(out, m.file))).buffer.slice(0))));
    for (const probs of rows) expect(probs).toHaveLength(24 * k);
    // The soft vote's log-loss, recomputed from the files alone.
    let loss = 0;
    saved.labels.forEach((y, i) => (loss -= Math.log(Math.max(1e-15, (rows[0]![i * k + y]! + rows[1]![i * k + y]!) / 2))));
    expect(loss / 24).toBeCloseTo(summary.variants.find((v) => v.name === 'soft vote')!.metrics.logLoss, 4);
  });

  it('with a budget, ranks every affordable set of members with one or two views, scored as evaluate scores them', async () => {
    const two = await runEvaluation({ ...base(), tta: ['identity', 'rot90'], budgetMacs: 1e12, searchDiagonal: false, outDir: path.join(tmp, 'eval-budget') });
    const search = two.search!;
    // a or b alone with one view or two (4), both with one or two views each (4).
    expect(search.sets).toBe(8);
    expect(search.byTop1).toHaveLength(8);
    expect(search.byLogLoss.map((c) => c.logLoss)).toEqual(search.byLogLoss.map((c) => c.logLoss).sort((x, y) => x - y));
    expect(search.byTop1.map((c) => c.top1)).toEqual(search.byTop1.map((c) => c.top1).sort((x, y) => y - x));
    const set = (names: string[], views: number) =>
      search.byTop1.find((c) => c.members.map((m) => `${m.name}/${m.version}`).join(' + ') === names.join(' + ') && c.members.every((m) => (m.tta?.length ?? 1) === views))!;
    const row = (name: string, tta: boolean) => two.variants.find((v) => v.name === name && v.tta === tta)!.metrics;
    // Each set's figures are those of evaluate's own rows: one view is the plain row, two views its TTA row.
    for (const [names, views, expected] of [
      [['a/v1', 'b/v1'], 1, row('soft vote', false)],
      [['a/v1', 'b/v1'], 2, row('soft vote', true)],
      [['a/v1'], 2, row('a/v1', true)],
      [['b/v1'], 1, row('b/v1', false)],
    ] as const) {
      const c = set([...names], views);
      expect(c.logLoss).toBeCloseTo(expected.logLoss, 5);
      expect(c.top1).toBeCloseTo(expected.top1, 10);
      expect(c.members.every((m) => (views === 2 ? m.tta?.join() === 'identity,rot90' : m.tta === undefined))).toBe(true);
    }
    const one = set(['a/v1'], 1).macs;
    expect(set(['a/v1', 'b/v1'], 2).macs).toBe(4 * one);
    // Three members: 3·2 + 3·4 + 8 = 26 sets; below two forward passes only the three alone remain.
    const three = await runEvaluation({ ...base(), ensemble: threeFile, tta: ['identity'], budgetMacs: 1e12, searchDiagonal: false, outDir: path.join(tmp, 'eval-budget3') });
    expect(three.search!.sets).toBe(26);
    // The search replaces the table's rows for smaller sets.
    expect(three.variants.some((v) => v.name.startsWith('soft vote a/v1'))).toBe(false);
    const tight = await runEvaluation({ ...base(), ensemble: threeFile, tta: ['identity'], budgetMacs: 2 * one - 1, searchDiagonal: false, outDir: path.join(tmp, 'eval-tight') });
    expect(tight.search!.sets).toBe(3);
    expect(tight.search!.byTop1.every((c) => c.members.length === 1 && !c.members[0]!.tta)).toBe(true);
    const report = await readFile(path.join(tmp, 'eval-budget', 'report.md'), 'utf8');
    expect(report).toContain('## The best sets within');
    // The fair estimate (ensemble-search.test.ts checks its figures) is printed, reported and saved.
    expect(search.fair!.halvings).toBe(4);
    expect(report).toContain(`top-1 ${(search.fair!.top1 * 100).toFixed(2)}%`);
    expect(two.table).toContain('chosen on one half of the images and scored on the other');
    const saved = JSON.parse(await readFile(path.join(tmp, 'eval-budget', 'evaluation.json'), 'utf8'));
    expect(saved.search.fair).toEqual(search.fair);
  });

  it('with a budget, also tries each member\'s 45° turn, alone and beside the image, scored as evaluate scores those views', async () => {
    // TTA of the image and its 45° turn: a member's TTA row is then exactly that pair of views.
    const turned = await runEvaluation({ ...base(), tta: ['identity', 'rot45'], budgetMacs: 1e12, outDir: path.join(tmp, 'eval-diagonal') });
    const search = turned.search!;
    // each member alone with four view options (the image, the image and its quarter turn, the
    // turn alone, the image and the turn), and the 4·4 pairs
    expect(search.sets).toBe(24);
    const all = [...search.byTop1, ...search.byLogLoss];
    const alone = (name: string, tta: string | undefined) => all.find((c) => c.members.length === 1 && c.members[0]!.name === name && c.members[0]!.tta?.join() === tta);
    let checked = 0;
    for (const name of ['a', 'b']) {
      const pair = alone(name, 'identity,rot45');
      const plain = alone(name, undefined);
      if (!pair || !plain) continue; // not among the best ten either way
      const row = turned.variants.find((v) => v.name === `${name}/v1` && v.tta)!.metrics;
      expect(pair.top1).toBeCloseTo(row.top1, 10);
      expect(pair.logLoss).toBeCloseTo(row.logLoss, 5);
      expect(pair.macs).toBe(2 * plain.macs);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    expect(all.some((c) => c.members.some((m) => m.tta?.join() === 'rot45'))).toBe(true);
    expect(all.some((c) => c.members.some((m) => m.tta?.join() === 'identity,rot45'))).toBe(true);
  });
});
