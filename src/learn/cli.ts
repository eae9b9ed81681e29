// `plankwatch train`, `average` and `evaluate`: parse options, call the learn library, print.
import type { Command } from 'commander';
import { Option } from 'commander';
import { ARCHITECTURES } from './architectures.js';
import { DEFAULT_AUGMENT, FINETUNE_AUGMENT, NO_AUGMENT, type AugmentOptions } from './augment.js';
import { parseMix } from './mix.js';
import type { CameraProfile } from '../preprocess/camera.js';
import { readCategoryMap, type EcoTaxaFilter } from './ecotaxa-data.js';
import { PLAIN_RECIPE, TRANSFER_RECIPE } from './recipe.js';
import type { TrainingBackend } from '../engine/backend.js';
import { DEFAULT_PREPROCESS } from '../preprocess/prepare.js';
import { defaultNdsbDir } from './dataset.js';
import { progressReporter } from './progress.js';
import type { ClassWeighting } from './trainer.js';
import { isTtaTransform, TTA_TRANSFORMS, type TtaTransform } from './tta.js';

/** Run a command body; a failure prints one line (not the wasm runtime's rethrown stack) and sets exit code 1. */
function guarded(name: string, body: (opts: Record<string, unknown>) => Promise<void>): (opts: Record<string, unknown>) => Promise<void> {
  return async (opts) => {
    try {
      await body(opts);
    } catch (err) {
      process.stderr.write(`plankwatch ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  };
}

function parseTta(list: string): TtaTransform[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!isTtaTransform(n)) throw new Error(`--tta: unknown transform "${n}" (known: ${TTA_TRANSFORMS.join(', ')}).`);
  return names as TtaTransform[];
}

function num(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`Not a number: ${value}`);
  return n;
}

function parseAugment(spec: string | undefined): AugmentOptions {
  if (!spec || spec === 'default') return { ...DEFAULT_AUGMENT };
  if (spec === 'finetune') return { ...FINETUNE_AUGMENT };
  if (spec === 'none') return { ...NO_AUGMENT };
  const out: AugmentOptions = { ...DEFAULT_AUGMENT };
  for (const part of spec.split(',')) {
    const [k, v] = part.split('=');
    if (!k || v === undefined || !(k in out)) throw new Error(`--augment: unknown setting "${part}" (keys: ${Object.keys(out).join(', ')}).`);
    (out as unknown as Record<string, number | boolean>)[k] = k === 'flip' ? v === 'true' || v === '1' : num(v);
  }
  return out;
}

/** --polarity, --colour and --pixel-size: the camera the images come from. */
function cameraOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--polarity <p>', 'background of the images: bright-field (dark organisms on a light background, as NDSB), dark-field (light on dark), or auto (found per image from its border)').choices(['auto', 'bright-field', 'dark-field']).default('bright-field'))
    .addOption(new Option('--colour <c>', 'colour of the images: gray, or rgb (colour images, read as their luminance unless train --channels 3)').choices(['gray', 'rgb']).default('gray'))
    .option('--pixel-size <um>', 'micrometres per image pixel, recorded with the model (0: unknown)', num, 0);
}

function cameraFrom(opts: Record<string, unknown>): CameraProfile {
  return { polarity: opts.polarity as CameraProfile['polarity'], colour: opts.colour as CameraProfile['colour'], pixelSizeUm: opts.pixelSize as number };
}

/** --status, --category-map and --min-per-class: what an EcoTaxa export given to --data contributes. */
function ecotaxaOptions(cmd: Command, minPerClass: number): Command {
  return cmd
    .option('--status <list>', 'EcoTaxa export: annotation statuses to take, comma-separated (validated, dubious, predicted), or "any"', 'validated')
    .option('--category-map <file>', 'EcoTaxa export: lines "category<TAB>class" renaming categories (an empty class leaves the category out)')
    .option('--min-per-class <n>', 'EcoTaxa export: leave out classes with fewer images', num, minPerClass);
}

async function ecotaxaFrom(opts: Record<string, unknown>): Promise<EcoTaxaFilter> {
  const status = String(opts.status).trim().toLowerCase();
  return {
    statuses: status === 'any' ? 'any' : status.split(',').map((s) => s.trim()).filter(Boolean),
    categoryMap: opts.categoryMap ? await readCategoryMap(opts.categoryMap as string) : undefined,
    minPerClass: opts.minPerClass as number,
  };
}

/** Add `train`, `average` and `evaluate` to the plankwatch program. */
export function registerLearnCommands(program: Command): void {
  const train = program
    .command('train')
    .description('Train a new version of an ensemble member on labelled images (a folder per class, a CSV of path,label, or an EcoTaxa export).')
    .requiredOption('--data <dir|csv|zip>', 'labelled images: DIR/<class>/*.jpg (DIR/train/<class> accepted), a CSV with columns path,label, or an EcoTaxa export (its .zip, its folder or an ecotaxa_*.tsv); default: $PLANKWATCH_NDSB_DIR when set', defaultNdsbDir())
    .option('--member <name>', 'member name: the model is written to <models>/<member>/<version>/', 'cnn')
    .addOption(new Option('--arch <name>', 'architecture').choices(Object.keys(ARCHITECTURES)).default('pw-vgg-48'))
    .option('--models <dir>', 'model registry folder', 'models')
    .option('--version <name>', 'version folder name (default: a UTC timestamp)')
    .option('--seed <n>', 'seed for split, shuffling, augmentation, initialisation and dropout', num, 1)
    .option('--val-fraction <f>', 'fraction of each class held out for validation', num, 0.15)
    .option('--split <dir>', 'split folder to reuse or create (default <models>/splits/<data>-s<seed>-v<pct>)')
    .option('--epochs <n>', 'epochs', num, 30)
    .option('--batch-size <n>', 'images per step', num, 32)
    .option('--lr <rate>', `initial learning rate (Adam, cosine decay to 2%; default ${PLAIN_RECIPE.learningRate}, with the transfer recipe ${TRANSFER_RECIPE.learningRate} after the head-first epoch)`, num)
    .option('--lr-final <fraction>', 'the cosine schedule\'s last learning rate as a fraction of --lr (1: constant)', num, 0.02)
    .option('--average-from <epoch>', 'stochastic weight averaging: average the weights of every epoch from this one on, keep the average when its validation log-loss beats every epoch\'s (0: off)', num, 0)
    .option('--weight-decay <w>', 'L2 penalty on weights', num, 0)
    .addOption(new Option('--class-weights <rule>', `loss weight per class against imbalance (default ${PLAIN_RECIPE.classWeights}, with the transfer recipe ${TRANSFER_RECIPE.classWeights})`).choices(['balanced', 'sqrt', 'none']))
    .option('--mix <spec>', 'mix the images of each batch in pairs, their targets by the same share: "none", "mixup" (blended; default alpha=0.2) or "cutmix" (a box of one pasted into the other; default alpha=1), with settings, e.g. mixup,alpha=0.2 or cutmix,alpha=1,p=0.5 (p: share of the batches mixed)', 'none')
    .option('--augment <spec>', 'online augmentation: "default", "finetune" (the transfer recipe\'s), "none", or key=value list, e.g. rotate=180,flip=1,zoom=1.15,shear=8,shift=3,blur=0.1,brightness=0.15')
    .option('--patience <n>', `early stopping: epochs without validation log-loss improvement (0: off; default ${PLAIN_RECIPE.patience}, with the transfer recipe ${TRANSFER_RECIPE.patience})`, num)
    .option('--max-minutes <m>', 'stop after this much training time, keeping the best epoch (0: no limit); with the transfer recipe it also sets the schedule\'s length, so that the cosine decay ends with the budget', num, 0)
    .option('--resume', 'continue from the last checkpoint of the same member and --version', false)
    .addOption(new Option('--backend <name>', 'tensorflow (tfjs-node, when installed), wasm or cpu').choices(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'))
    .option('--from <dir>', 'transfer learning: start from this model version folder (new classifier if the classes differ)')
    .addOption(new Option('--schedule <kind>', 'the cosine decay\'s length: "epochs" (over --epochs; the plain recipe\'s default) or "time" (over --max-minutes, ending with the budget however fast the epochs go; the transfer recipe\'s default; needs --max-minutes)').choices(['epochs', 'time']))
    .addOption(new Option('--recipe <name>', 'with --from: "transfer" (the default: head-first epoch, warm-up, a lower learning rate, fine-tuning augmentation, a cosine decay over the time of --max-minutes) or "plain" (as without --from)').choices(['transfer', 'plain']))
    .option('--head-epochs <n>', `epochs training only the dense layers and the classifier before every layer learns (default 0, with the transfer recipe ${TRANSFER_RECIPE.headEpochs})`, num)
    .option('--warmup <epochs>', `linear learning-rate warm-up after the head-only epochs, in epochs (default 0, with the transfer recipe ${TRANSFER_RECIPE.warmupEpochs})`, num)
    .option('--freeze', 'with --from: train only the classifier head', false)
    .option('--unfreeze-top <n>', 'with --from --freeze: also train the top N convolution blocks', num, 0)
    .option('--init-from <dir>', 'start a new --arch from this model version folder: layers with the same name and weight shapes are copied (e.g. a 48 px model\'s convolutions into pw-vgg-64); a new square 3x3 convolution starts as the identity (pw-vgg-80 into pw-deep-80); not with --from')
    .option('--teacher <ensemble.json>', 'knowledge distillation: mix this ensemble\'s soft vote on each training image into its target (members must be trained on this run\'s split, never on its held-out images)')
    .option('--distill <share>', 'with --teacher: the teacher\'s share of each target, the rest is the label', num, 0.5)
    .addOption(new Option('--scale <rule>', 'how an organism is sized into the input: keep (never enlarged, so its size stays visible; the default) or fit (enlarged or shrunk to fill it: more detail of small organisms, no size); not with --from, which keeps its parent\'s').choices(['keep', 'fit']))
    .option('--dropout <rate>', 'dropout rate around the dense layer (default: the architecture\'s 0.5, or with --from the parent model\'s)', num)
    .option('--workers <n>', 'worker threads for data-parallel training, each computing the gradients of an equal share of every batch (--batch-size is the whole batch); 1: train on this thread', num, 1)
    .addOption(new Option('--channels <n>', 'input channels: 1 (gray: a colour camera\'s images read as their luminance) or 3 (R, G, B, with --colour rgb; --from a gray member repeats its first convolution over the three); default: the parent\'s with --from, else 1').choices(['1', '3']));
  ecotaxaOptions(cameraOptions(train), 10)
    .addHelpText(
      'after',
      `
Architectures:
${Object.values(ARCHITECTURES)
  .map((a) => `  ${a.name.padEnd(12)} ${a.description}`)
  .join('\n')}

Example (how the shipped member started):
  plankwatch train --data /data/ndsb --member vgg48 --arch pw-vgg-48 --version v1 --seed 1 --epochs 10 --class-weights none
  (models/README.md lists the exact commands of the shipped members)`,
    )
    .action(
      guarded('train', async (opts) => {
        const workers = opts.workers as number;
        const runTraining = workers > 1 ? (await import('./parallel/run.js')).runParallelTraining : (await import('./train-run.js')).runTraining;
        const reporter = progressReporter(process.stderr);
        const log = (line: string) => process.stderr.write(`${line}\n`);
        const recipe = opts.from && opts.recipe !== 'plain' ? TRANSFER_RECIPE : PLAIN_RECIPE;
        if (opts.from) log(`recipe: ${recipe.name}${recipe === TRANSFER_RECIPE ? ' (--recipe plain: as without --from)' : ''}`);
        const ecotaxa = await ecotaxaFrom(opts);
        const stop = stopOnSignal(log);
        const { dir, meta, result } = await runTraining({
          data: opts.data as string,
          member: opts.member as string,
          architecture: opts.arch as string,
          modelsDir: opts.models as string,
          version: opts.version as string | undefined,
          seed: opts.seed as number,
          validationFraction: opts.valFraction as number,
          split: opts.split as string | undefined,
          epochs: opts.epochs as number,
          batchSize: opts.batchSize as number,
          learningRate: (opts.lr as number | undefined) ?? recipe.learningRate,
          finalLearningRate: opts.lrFinal as number,
          averageFrom: opts.averageFrom as number,
          weightDecay: opts.weightDecay as number,
          classWeights: (opts.classWeights as ClassWeighting | undefined) ?? recipe.classWeights,
          augment: parseAugment((opts.augment as string | undefined) ?? recipe.augment),
          mix: parseMix(opts.mix as string),
          patience: (opts.patience as number | undefined) ?? recipe.patience,
          maxMinutes: opts.maxMinutes as number,
          resume: opts.resume as boolean,
          backend: opts.backend as TrainingBackend,
          from: opts.from as string | undefined,
          freeze: opts.freeze as boolean,
          unfreezeTop: opts.unfreezeTop as number,
          initFrom: opts.initFrom as string | undefined,
          dropout: opts.dropout as number | undefined,
          preprocess: opts.scale ? { ...DEFAULT_PREPROCESS, noUpscale: opts.scale === 'keep' } : undefined,
          teacher: opts.teacher as string | undefined,
          distill: opts.distill as number,
          camera: cameraFrom(opts),
          channels: opts.channels === undefined ? undefined : (Number(opts.channels) as 1 | 3),
          ecotaxa,
          headEpochs: (opts.headEpochs as number | undefined) ?? (opts.freeze ? 0 : recipe.headEpochs),
          headLearningRate: recipe.headLearningRate,
          warmupEpochs: (opts.warmup as number | undefined) ?? recipe.warmupEpochs,
          fitToTime: opts.schedule ? opts.schedule === 'time' : recipe.fitToTime,
          workers,
          command: ['plankwatch', ...process.argv.slice(2)].join(' '),
          hooks: { ...reporter, resume: opts.resume as boolean, stopRequested: stop.requested },
          log,
        }).finally(stop.remove);
        log(`${result.reason}; best epoch ${result.bestEpoch}`);
        const avg = result.average;
        if (avg) log(`average of epochs ${avg.fromEpoch}–${avg.toEpoch}: log-loss ${avg.validation?.logLoss.toFixed(4) ?? 'not validated'}, ${avg.kept ? 'kept' : 'not kept (an epoch was better)'}`);
        log(`wrote ${dir}: top1 ${meta.metrics.top1?.toFixed(4)} top5 ${meta.metrics.top5?.toFixed(4)} log-loss ${meta.metrics.logLoss?.toFixed(4)}`);
      }),
    );

  program
    .command('average')
    .description('Write a new version of a member whose weights are the mean of two or more versions of the same network (fine-tuned one from another); its batch norms are measured again on the training images and it is scored on the held-out ones.')
    .argument('<versions...>', 'model version folders, e.g. models/vgg80/v1 models/vgg80/v2')
    .requiredOption('--member <name>', 'member name: the model is written to <models>/<member>/<version>/')
    .requiredOption('--version <name>', 'version folder name for the average')
    .option('--weights <list>', 'weight of each version, comma-separated (default: equal)')
    .requiredOption('--data <dir|csv>', 'the labelled images the versions were trained on; default: $PLANKWATCH_NDSB_DIR when set', defaultNdsbDir())
    .option('--models <dir>', 'model registry folder', 'models')
    .addOption(new Option('--backend <name>', 'tensorflow (tfjs-node, when installed), wasm or cpu').choices(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'))
    .addHelpText('after', '\nExample:\n  plankwatch average models/vgg80/v1 models/vgg80/v2 --member vgg80 --version avg-v1-v2')
    .action((versions: string[], options: Record<string, unknown>) =>
      guarded('average', async (opts) => {
        const { runAverage } = await import('./average-run.js');
        const log = (line: string) => process.stderr.write(`${line}\n`);
        const weights = opts.weights === undefined ? undefined : String(opts.weights).split(',').map(num);
        const { dir, meta } = await runAverage({
          sources: versions,
          weights,
          data: opts.data as string,
          modelsDir: opts.models as string,
          member: opts.member as string,
          version: opts.version as string,
          backend: opts.backend as TrainingBackend,
          command: ['plankwatch', ...process.argv.slice(2)].join(' '),
          log,
        });
        log(`wrote ${dir}: top1 ${meta.metrics.top1?.toFixed(4)} top5 ${meta.metrics.top5?.toFixed(4)} log-loss ${meta.metrics.logLoss?.toFixed(4)}`);
      })(options),
    );

  const evaluate = program
    .command('evaluate')
    .description('Evaluate each ensemble member, soft, geometric and hard voting, with and without test-time augmentation, on held-out images; write JSON and a Markdown report.')
    .requiredOption('--data <dir|csv|zip>', 'labelled images (as for train, an EcoTaxa export included); default: $PLANKWATCH_NDSB_DIR when set', defaultNdsbDir())
    .option('--ensemble <file>', 'ensemble file naming members and voting rule', 'models/ensemble.json')
    .option('--models <dir>', 'model registry folder (default: the ensemble file\'s folder)')
    .option('--split <dir>', 'evaluate only the validation list of this split (default: the split recorded in the first member\'s meta.json)')
    .option('--all', 'evaluate every image in --data, not only a held-out split (refused if the members trained on any of them, unless --allow-leak)', false)
    .option('--allow-leak', 'evaluate even images that a member was trained on (flagged in the report)', false)
    .option('--tta <list>', `test-time transforms, comma-separated from ${TTA_TRANSFORMS.join(',')}`, 'identity,rot90,rot180,rot270,flipH,flipV')
    .option('--out <dir>', 'folder for evaluation.json, report.md and confusion.png', 'evaluation')
    .option('--limit <n>', 'evaluate at most n images (a stratified, seeded subset)', num, 0)
    .option('--budget <millions>', 'also rank every set of up to four of the members, each with one view (identity or rot45) or two (identity with rot90, or for a pw-p4 network flipH, or with rot45), that costs at most this many million multiply-adds per ROI', num, 0)
    .addOption(new Option('--backend <name>', 'onnx (ONNX Runtime on each member\'s model.onnx, as the daemon runs them; auto tries it first), else TensorFlow.js: tensorflow (tfjs-node, when installed), wasm or cpu').choices(['auto', 'onnx', 'tensorflow', 'wasm', 'cpu']).default('auto'))
    .option('--calibrate', 'write the temperature of the vote fitted on the evaluated images into the ensemble file as "temperature" (it is measured and reported either way)', false)
    .option('--save-probabilities', 'also write each member\'s probabilities on every evaluated image (probabilities.json and one float32 file per member) into --out', false);
  ecotaxaOptions(cameraOptions(evaluate), 1)
    .action(
      guarded('evaluate', async (opts) => {
        const { runEvaluation } = await import('./evaluate.js');
        const log = (line: string) => process.stderr.write(`${line}\n`);
        const summary = await runEvaluation({
          data: opts.data as string,
          ensemble: opts.ensemble as string,
          modelsDir: opts.models as string | undefined,
          split: opts.split as string | undefined,
          all: opts.all as boolean,
          allowLeak: opts.allowLeak as boolean,
          tta: parseTta(opts.tta as string),
          outDir: opts.out as string,
          limit: opts.limit as number,
          budgetMacs: (opts.budget as number) * 1e6,
          backend: opts.backend as TrainingBackend | 'onnx',
          calibrate: opts.calibrate as boolean,
          saveProbabilities: opts.saveProbabilities as boolean,
          camera: cameraFrom(opts),
          ecotaxa: await ecotaxaFrom(opts),
          log,
        });
        process.stdout.write(summary.table + '\n');
        process.stdout.write(`best: ${summary.best}\n`);
      }),
    );
}

/**
 * Ctrl-C (SIGINT) or SIGTERM during training: the first ends the run after the current batch,
 * as the time limit does (validated, checkpointed, the best epoch so far written as the new
 * version); a second exits at once, keeping the checkpoint of the last finished epoch.
 */
function stopOnSignal(log: (line: string) => void): { requested: () => boolean; remove: () => void } {
  let requested = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (requested) {
      log(`${signal} again: stopping now without writing a model; --resume continues from the last finished epoch`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    requested = true;
    log(`${signal}: stopping after this batch, then validating and writing the best epoch so far (${signal} again stops at once)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    requested: () => requested,
    remove: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
