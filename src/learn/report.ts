// The evaluation report a scientist reads: report.md with the comparison table, the TTA cost
// beside its gain, a per-class table for the best variant, and confusion.png (rows: true class,
// columns: predicted; each row normalised, darker = more).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { EnsembleFile } from '../classify/meta.js';
import { choiceMembers, type EnsembleChoice, type FairEstimate } from './ensemble-search.js';
import type { EvaluationSummary, VariantResult } from './evaluate.js';
import type { Metrics } from './metrics.js';

/** Row-normalised confusion matrix as a grayscale PNG, `cell` pixels per class. */
export async function confusionPng(confusion: number[][], cell = 4): Promise<Buffer> {
  const k = confusion.length;
  const side = k * cell;
  const px = new Uint8Array(side * side).fill(255);
  for (let t = 0; t < k; t++) {
    const total = confusion[t]!.reduce((a, b) => a + b, 0);
    for (let p = 0; p < k; p++) {
      const f = total === 0 ? 0 : confusion[t]![p]! / total;
      const v = Math.round(255 * (1 - Math.sqrt(f)));
      for (let y = 0; y < cell; y++) for (let x = 0; x < cell; x++) px[(t * cell + y) * side + p * cell + x] = v;
    }
  }
  return sharp(Buffer.from(px), { raw: { width: side, height: side, channels: 1 } }).png().toBuffer();
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

function variantLabel(v: VariantResult): string {
  return `${v.name}${v.tta ? ' + TTA' : ''}`;
}

function perClassTable(metrics: Metrics, classes: string[]): string {
  const rows = classes
    .map((c, i) => ({ c, m: metrics.perClass[i]! }))
    .sort((a, b) => b.m.support - a.m.support)
    .map(({ c, m }) => `| ${c} | ${m.support} | ${m.precision.toFixed(3)} | ${m.recall.toFixed(3)} | ${m.f1.toFixed(3)} |`);
  return ['| class | images | precision | recall | F1 |', '|---|---:|---:|---:|---:|', ...rows].join('\n');
}

/** How much of the best sets' lead is choice on these images: the same search, chosen and scored on different halves. */
function fairParagraph(fair: FairEstimate, bestTop1: EnsembleChoice | undefined, bestLoss: EnsembleChoice | undefined): string {
  const lead = bestTop1 && bestLoss ? ` (chosen and scored on all of them: ${pct(bestTop1.top1)} and ${bestLoss.logLoss.toFixed(4)})` : '';
  return `**Expected on new images:** choosing the best set on a random half of the images and scoring it on the other half (${fair.halvings} seeded halvings, both ways) gives top-1 ${pct(fair.top1)} and log-loss ${fair.logLoss.toFixed(4)}${lead}. To tell whether new candidate members help, compare these figures with the same search's over the candidates without them, not the rows below.`;
}

function searchSection(search: NonNullable<EvaluationSummary['search']>): string[] {
  const budget = (search.budgetMacs / 1e6).toFixed(0);
  const table = (choices: EnsembleChoice[]) => [
    '| members ([views] where a member has other views than the image alone) | top-1 | log-loss | M multiply-adds per ROI |',
    '|---|---:|---:|---:|',
    ...choices.map((c) => `| ${choiceMembers(c)} | ${pct(c.top1)} | ${c.logLoss.toFixed(4)} | ${(c.macs / 1e6).toFixed(0)} |`),
  ];
  return [
    `## The best sets within ${budget} M multiply-adds per ROI`,
    '',
    `Every set of up to four of these members, each with one view or two, that costs at most ${budget} M multiply-adds per ROI (${search.sets} sets), scored by the ${search.rule} vote. A member with two views is written in ensemble.json with its own \`"tta"\`: the image and its quarter turn (\`["identity", "rot90"]\`), or its mirror image (\`["identity", "flipH"]\`) for a network invariant to quarter turns. The sets were chosen on the images they are scored on, so the best of them is slightly optimistic.`,
    ...(search.fair ? ['', fairParagraph(search.fair, search.byTop1[0], search.byLogLoss[0])] : []),
    '',
    '### By top-1',
    '',
    ...table(search.byTop1),
    '',
    '### By log-loss',
    '',
    ...table(search.byLogLoss),
  ];
}

export async function writeReport(
  dir: string,
  summary: EvaluationSummary,
  context: { ensemble: EnsembleFile; split: string; backend: string; transforms: string[] },
): Promise<void> {
  const best = [...summary.variants].sort((a, b) => a.metrics.logLoss - b.metrics.logLoss)[0]!;
  await writeFile(path.join(dir, 'confusion.png'), await confusionPng(best.metrics.confusion));
  const lines: string[] = [];
  lines.push(`# Evaluation of ensemble ${context.ensemble.version}`);
  lines.push('');
  lines.push(`${summary.count} held-out images (${context.split}), ${summary.classes.length} classes, backend ${context.backend}.`);
  const leaked = Object.entries(summary.leaks).filter(([, n]) => n > 0);
  lines.push(leaked.length ? `**Warning: some images were used in training:** ${leaked.map(([m, n]) => `${m}: ${n}`).join(', ')}.` : 'No evaluated image was used to train any member.');
  lines.push('');
  lines.push('| variant | top-1 | top-5 | log-loss | macro-F1 | ROIs/s (one thread) |');
  lines.push('|---|---:|---:|---:|---:|---:|');
  for (const v of summary.variants) {
    lines.push(`| ${variantLabel(v)} | ${pct(v.metrics.top1)} | ${pct(v.metrics.top5)} | ${v.metrics.logLoss.toFixed(4)} | ${v.metrics.macroF1.toFixed(4)} | ${v.imagesPerSecond.toFixed(0)} |`);
  }
  lines.push('');
  lines.push(`Best: ${summary.best}.`);
  lines.push('');
  lines.push(`Test-time augmentation averages the ${context.transforms.length} transforms ${context.transforms.join(', ')}; it costs ${context.transforms.length} forward passes per image:`);
  lines.push('');
  const names = [...new Set(summary.variants.map((v) => v.name))];
  for (const name of names) {
    const plain = summary.variants.find((v) => v.name === name && !v.tta);
    const tta = summary.variants.find((v) => v.name === name && v.tta);
    if (!plain || !tta) continue;
    lines.push(
      `- ${name}: top-1 ${pct(plain.metrics.top1)} → ${pct(tta.metrics.top1)}, log-loss ${plain.metrics.logLoss.toFixed(4)} → ${tta.metrics.logLoss.toFixed(4)}, ${plain.imagesPerSecond.toFixed(0)} → ${tta.imagesPerSecond.toFixed(0)} ROIs/s.`,
    );
  }
  if (summary.search) lines.push('', ...searchSection(summary.search));
  lines.push('');
  lines.push(`## Confusion matrix (${variantLabel(best)})`);
  lines.push('');
  lines.push('Rows are the true classes, columns the predicted ones, both in alphabetical order; each row is normalised and the grey level is the square root of the fraction, so that small confusions stay visible.');
  lines.push('');
  lines.push('![confusion matrix](confusion.png)');
  lines.push('');
  lines.push(`## Per class (${variantLabel(best)}), most frequent first`);
  lines.push('');
  lines.push(perClassTable(best.metrics, summary.classes));
  lines.push('');
  await writeFile(path.join(dir, 'report.md'), lines.join('\n'));
}
