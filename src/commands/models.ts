// `plankwatch models list | promote VERSION | rollback | archive | fetch | verify`: the model
// registry on disk. A running daemon notices the change of the ensemble file and swaps to it
// between two batches.
import { Option, type Command } from 'commander';
import { PlankwatchError } from '../errors.js';
import { fetchArchive, verifyArchive, verifyStore, writeArchive } from '../registry/archive.js';
import { ModelRegistry, type MemberVersion } from '../registry/registry.js';
import { configFrom } from './run.js';

function registryFrom(file: string | undefined): ModelRegistry {
  const config = configFrom(file);
  return new ModelRegistry({ modelsDir: config.classify.modelsDir, ensembleFile: config.classify.ensemble, baseModelsDir: config.classify.baseModelsDir });
}

export function registerModelsCommands(program: Command): void {
  const models = program.command('models').description('Model versions: list them, promote one, roll back to the previous ensemble; archive, fetch and verify versions kept elsewhere.');

  models
    .command('list')
    .description('The active ensemble, every ensemble version (promoted and fine-tuning candidates), every member version with its parent, and the promotion history.')
    .option('-c, --config <file>', 'YAML config file (for classify.modelsDir and classify.ensemble)')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const listing = await registryFrom(opts.config).list();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(listing)}\n`);
        return;
      }
      const out: string[] = [];
      out.push(`active ensemble: ${listing.active ? `${listing.active.version} (${listing.active.voting}: ${listing.active.members.map((m) => `${m.name}/${m.version}`).join(', ')})` : 'none'}`);
      out.push('', 'ensembles:');
      for (const e of listing.ensembles) out.push(`  ${e.active ? '*' : ' '} ${e.version.padEnd(34)} ${e.kind.padEnd(9)} ${e.members.join(', ')}`);
      out.push('', 'members:');
      for (const m of listing.members) {
        out.push(`  ${m.active ? '*' : ' '} ${`${m.name}/${m.version}`.padEnd(44)} ${String(m.classes).padStart(4)} classes  parent ${m.parent ?? '-'}  ${figure(m)}`);
        if (m.finetuneGate && !m.finetuneGate.promoted) out.push(`      not promoted (${m.finetuneGate.verdict}): ${m.finetuneGate.reason}`);
      }
      out.push(...setsNote(listing.members));
      if (listing.history.length > 0) {
        out.push('', 'history:');
        for (const h of listing.history.slice(-20)) out.push(`  ${h.at}  ${h.action.padEnd(8)} ${h.version}  (was ${h.previous ?? '-'})${h.reason ? `  ${h.reason}` : ''}`);
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });

  models
    .command('promote')
    .description('Make an ensemble version active (checksums verified first; atomic switch; the previous one stays for rollback). A running daemon swaps to it without restarting.')
    .argument('<version>', 'ensemble version (see `plankwatch models list`)')
    .option('-c, --config <file>', 'YAML config file')
    .action(async (version: string, opts: { config?: string }) => {
      const e = await registryFrom(opts.config).promote(version, 'promote', 'plankwatch models promote');
      process.stdout.write(`promoted ${e.version}: ${e.members.map((m) => `${m.name}/${m.version}`).join(', ')}\n`);
    });

  models
    .command('convert')
    .description('Write model.onnx (what ONNX Runtime runs) beside model.json in member versions that lack it, and record its checksum in meta.json. Without folders: every member of the active ensemble.')
    .argument('[dirs...]', 'member version folders (models/<member>/<version>)')
    .option('-c, --config <file>', 'YAML config file (for classify.modelsDir and classify.ensemble)')
    .option('--all', 'every member version under classify.modelsDir')
    .action(async (dirs: string[], opts: { config?: string; all?: boolean }) => {
      const config = configFrom(opts.config);
      const { convertMembers } = await import('../classify/onnx-convert.js');
      await convertMembers({ dirs, modelsDir: config.classify.modelsDir, ensembleFile: config.classify.ensemble, all: opts.all === true, log: (line) => process.stdout.write(`${line}\n`) });
    });

  models
    .command('import')
    .description('Register an ONNX classifier trained elsewhere (PyTorch, Keras through tf2onnx, ...) as a member version: model.onnx, its classes and how plankwatch prepares its input, in <classify.modelsDir>/<member>/<version>/ with checksums. Add it to an ensemble file and promote that to use it.')
    .argument('<file>', 'the .onnx file')
    .requiredOption('--classes <file>', 'text file: one class label per line, in the order of the model\'s outputs')
    .requiredOption('--member <name>', 'member name (the folder under classify.modelsDir)')
    .option('--version <name>', 'version folder name', 'v1')
    .option('--input <name>', 'the input to feed (default: the model\'s only input)')
    .option('--output <name>', 'the output to read (default: the model\'s only output)')
    .addOption(new Option('--layout <layout>', 'input layout (default: read from its shape: channels 1 or 3 first is nchw)').choices(['nchw', 'nhwc']))
    .option('--mean <m>', 'the model reads (pixel - mean) / std, plankwatch\'s prepared pixels being in [0, 1] (organisms bright on black unless --no-invert)', Number, 0)
    .option('--std <s>', 'see --mean', Number, 1)
    .addOption(new Option('--outputs <kind>', 'what the model gives (default: probabilities if its rows sum to 1 on test images, else logits, to which a softmax is applied)').choices(['probabilities', 'logits']))
    .option('--background <value>', 'gray value of the camera\'s background (0-255), used to pad images to a square', Number, 255)
    .option('--no-invert', 'keep dark organisms dark (by default the image is inverted so that the background is 0)')
    .addOption(new Option('--scale <how>', 'keep: small organisms keep their size (padded); fit: every organism is enlarged to fill the input').choices(['keep', 'fit']).default('keep'))
    .option('--architecture <text>', 'what the network is, for `models list` and meta.json', 'imported ONNX model')
    .option('-c, --config <file>', 'YAML config file (for classify.modelsDir)')
    .action(async (file: string, opts: { classes: string; member: string; version: string; input?: string; output?: string; layout?: 'nchw' | 'nhwc'; mean: number; std: number; outputs?: 'probabilities' | 'logits'; background: number; invert: boolean; scale: 'keep' | 'fit'; architecture: string; config?: string }) => {
      const config = configFrom(opts.config);
      const { importOnnx } = await import('../classify/onnx-import.js');
      const { dir, meta } = await importOnnx({
        file,
        classesFile: opts.classes,
        member: opts.member,
        version: opts.version,
        modelsDir: config.classify.modelsDir,
        input: opts.input,
        output: opts.output,
        layout: opts.layout,
        mean: opts.mean,
        std: opts.std,
        outputs: opts.outputs,
        background: opts.background,
        invert: opts.invert,
        noUpscale: opts.scale === 'keep',
        architecture: opts.architecture,
        command: `plankwatch models import ${process.argv.slice(4).join(' ')}`.trim(),
      });
      const io = meta.onnx!;
      process.stdout.write(
        `imported ${meta.name}/${meta.version} into ${dir}: ${meta.classes.length} classes, ${meta.input.size} px, ${io.layout} with ${io.channels} channel(s), (pixel - ${io.mean}) / ${io.std}, gives ${io.outputs}\n` +
          `add { "name": "${meta.name}", "version": "${meta.version}" } to the members of an ensemble file, then \`plankwatch evaluate --ensemble FILE\` and \`plankwatch models promote\`\n`,
      );
    });

  models
    .command('rollback')
    .description('Make the ensemble that was active before the current one active again.')
    .option('-c, --config <file>', 'YAML config file')
    .action(async (opts: { config?: string }) => {
      const e = await registryFrom(opts.config).rollback();
      process.stdout.write(`rolled back to ${e.version}: ${e.members.map((m) => `${m.name}/${m.version}`).join(', ')}\n`);
    });

  models
    .command('archive')
    .description('Write member versions into one tar file (gzipped for .tar.gz / .tgz) with a manifest of every file\'s SHA-256, to keep or move versions outside the store; `plankwatch models fetch` installs them. A version whose files do not match its meta.json is refused. Without --member: every version.')
    .requiredOption('--out <file>', 'the archive to write (.tar, .tar.gz or .tgz)')
    .option('--member <name>', 'a member (repeat for several); alone, every version of it', collect, [])
    .option('--version <name>', 'the version of the --member at the same position (repeat with it)', collect, [])
    .option('--models <dir>', 'take the versions from this folder (e.g. the models/ of an older checkout) instead of classify.modelsDir and classify.baseModelsDir')
    .option('-c, --config <file>', 'YAML config file (for classify.modelsDir and classify.baseModelsDir)')
    .action(async (opts: { out: string; member: string[]; version: string[]; models?: string; config?: string }, cmd: Command) => {
      if (opts.version.length > 0 && opts.version.length !== opts.member.length) cmd.error(`error: give one --version for each --member (${opts.member.length} members, ${opts.version.length} versions), or no --version for every version of each member`);
      const versions = opts.version.map((version, i) => ({ name: opts.member[i]!, version }));
      const searchPath = opts.models ? [opts.models] : registryFrom(opts.config).searchPath;
      const { manifest, bytes } = await writeArchive({ searchPath, versions, members: opts.member, out: opts.out });
      const files = manifest.versions.reduce((n, v) => n + Object.keys(v.files).length, 0);
      process.stdout.write(`wrote ${opts.out} (${mib(bytes)}, ${files} files): ${manifest.versions.map((v) => `${v.name}/${v.version}`).join(', ')}\n`);
    });

  models
    .command('fetch')
    .description('Install the member versions of an archive (written by `plankwatch models archive`; a file or an http(s) URL) into classify.modelsDir. Every file is checked against the manifest and each version\'s meta.json before anything is installed; a damaged archive installs nothing. Then name them in an ensemble file and promote it.')
    .argument('<source>', 'the archive: a .tar / .tar.gz file, or an http(s) URL')
    .option('--models <dir>', 'install into this folder instead of classify.modelsDir')
    .option('-c, --config <file>', 'YAML config file (for classify.modelsDir)')
    .action(async (source: string, opts: { models?: string; config?: string }) => {
      const modelsDir = opts.models ?? configFrom(opts.config).classify.modelsDir;
      const { installed, present } = await fetchArchive({ source, modelsDir });
      const out: string[] = [];
      if (installed.length > 0) out.push(`installed into ${modelsDir}: ${installed.join(', ')}`);
      if (present.length > 0) out.push(`already there with the same files: ${present.join(', ')}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });

  models
    .command('verify')
    .description('Check an archive (a file or an http(s) URL) against its manifest and meta.json checksums without installing it; without one, every installed member version (classify.modelsDir, then classify.baseModelsDir) against its meta.json. Exit status 2 when anything does not match.')
    .argument('[source]', 'the archive: a .tar / .tar.gz file, or an http(s) URL')
    .option('--models <dir>', 'without an archive: check this folder instead of classify.modelsDir and classify.baseModelsDir')
    .option('-c, --config <file>', 'YAML config file (for classify.modelsDir and classify.baseModelsDir)')
    .action(async (source: string | undefined, opts: { models?: string; config?: string }) => {
      if (source !== undefined) {
        const manifest = await verifyArchive(source);
        process.stdout.write(`${source}: ${manifest.versions.length} member versions verify: ${manifest.versions.map((v) => `${v.name}/${v.version}`).join(', ')}\n`);
        return;
      }
      const searchPath = opts.models ? [opts.models] : registryFrom(opts.config).searchPath;
      const check = await verifyStore(searchPath);
      if (check.problems.length > 0) {
        const bad = check.problems.map((p) => `${p.version} (${p.files.join(', ')})`).join('; ');
        throw new PlankwatchError('PW_E_MODEL_ARCHIVE', `Under ${searchPath.join(', ')}, ${check.problems.length} member version(s) do not match their meta.json checksums: ${bad}. ${check.verified.length} verify.`);
      }
      process.stdout.write(`${searchPath.join(', ')}: ${check.verified.length} member versions verify: ${check.verified.join(', ')}\n`);
    });
}

const collect = (value: string, previous: string[]) => [...previous, value];

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** "top1 75.3% on holdout … (3662 images)"; a fine-tuned member adds its parent's figure on the same images. */
function figure(m: MemberVersion): string {
  if (typeof m.metrics.top1 !== 'number') return '';
  const ev = m.evaluation;
  const size = ev?.size != null ? `${ev.size} images` : 'size not recorded';
  const parent = typeof m.metrics.parentTop1 === 'number' ? `; parent ${m.parent ?? '-'} ${pct(m.metrics.parentTop1)} on the same images` : '';
  return `top1 ${pct(m.metrics.top1)} on ${ev?.set ?? 'unrecorded'} (${size}${parent})`;
}

/** A warning when the listed figures come from different evaluation sets. */
function setsNote(members: MemberVersion[]): string[] {
  const sets = new Map<string, number>();
  for (const m of members) {
    if (typeof m.metrics.top1 !== 'number') continue;
    const key = `${m.evaluation?.set ?? 'unrecorded'} (${m.evaluation?.size ?? '?'} images)`;
    sets.set(key, (sets.get(key) ?? 0) + 1);
  }
  if (sets.size < 2) return [];
  const shown = [...sets].slice(0, 8).map(([set, n]) => `${set}: ${n} member${n > 1 ? 's' : ''}`);
  if (sets.size > 8) shown.push(`${sets.size - 8} more`);
  return [
    '',
    'note: these figures were measured on different evaluation sets and compare only within one set:',
    ...shown.map((line) => `  ${line}`),
    '  (a fine-tuned member also shows its parent on its own gate images)',
  ];
}
