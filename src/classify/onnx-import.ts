// `plankwatch models import`: a classifier trained elsewhere (PyTorch, Keras through tf2onnx, ...)
// as a member version: its model.onnx, its classes, how plankwatch's prepared image becomes its
// input (layout, channels, normalisation) and whether it gives logits, in meta.json, with
// checksums. It then joins an ensemble and runs like any other member, on ONNX Runtime.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { PlankwatchError } from '../errors.js';
import { DEFAULT_PREPROCESS } from '../preprocess/prepare.js';
import type { MemberMeta, OnnxIo } from './meta.js';
import { writeMeta } from './model-files.js';
import { ONNX_FILE } from './onnx-export.js';
import { OnnxSession, startOnnxRuntime } from './onnx-runtime.js';

export interface ImportOptions {
  /** The .onnx file. */
  file: string;
  /** Text file: one class label per line, in the model's output order. */
  classesFile: string;
  member: string;
  version: string;
  modelsDir: string;
  /** Input and output names (default: the model's only ones). */
  input?: string;
  output?: string;
  /** Default: read from the input's shape (channels 1 or 3 first: nchw). */
  layout?: 'nchw' | 'nhwc';
  /** The model reads (prepared pixel - mean) / std, prepared pixels being in [0, 1]. */
  mean: number;
  std: number;
  /** Default: probabilities if the model's rows on test images sum to 1, else logits. */
  outputs?: 'probabilities' | 'logits';
  /** How the image is prepared (background, inverted, organisms enlarged or not). */
  background: number;
  invert: boolean;
  noUpscale: boolean;
  /** Recorded in meta.json (e.g. "resnet18, PyTorch"). */
  architecture: string;
  command: string;
}

export interface ImportResult {
  dir: string;
  meta: MemberMeta;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function importError(detail: string): PlankwatchError {
  return new PlankwatchError('PW_E_MODEL_IMPORT', detail);
}

/** Check the model with ONNX Runtime (in this thread), then write <modelsDir>/<member>/<version>/. Throws PW_E_MODEL_IMPORT. */
export async function importOnnx(o: ImportOptions): Promise<ImportResult> {
  if (!NAME.test(o.member) || !NAME.test(o.version)) throw importError(`--member and --version must be folder names (letters, digits, "_", ".", "-"), not "${o.member}" and "${o.version}"`);
  const dir = path.join(o.modelsDir, o.member, o.version);
  if (existsSync(dir)) throw importError(`${dir} already exists: choose another --version`);
  let bytes: Buffer;
  let classes: string[];
  try {
    bytes = await readFile(o.file);
    classes = (await readFile(o.classesFile, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '');
  } catch (err) {
    throw importError(`cannot read ${(err as NodeJS.ErrnoException).path ?? o.file}: ${(err as Error).message}`);
  }
  if (classes.length < 2) throw importError(`${o.classesFile} must list at least two classes, one per line`);
  if (new Set(classes).size !== classes.length) throw importError(`${o.classesFile} lists a class twice`);
  if (!(o.std > 0) || !Number.isFinite(o.mean)) throw importError('--std must be above 0 and --mean a number');

  await startOnnxRuntime({ providers: 'cpu', threads: 1 });
  const id = `${o.member}/${o.version}`;
  const shapes = await OnnxSession.shapes(bytes, id).catch((err: unknown) => {
    throw importError(`ONNX Runtime cannot read ${o.file}: ${(err as Error).message}`);
  });
  const input = pick(shapes.inputs, o.input, 'input');
  const output = pick(shapes.outputs, o.output, 'output');
  const dims = input.shape;
  if (!dims || dims.length !== 4) throw importError(`input "${input.name}" must be a batch of images, [batch, channels, size, size] or [batch, size, size, channels]; it is ${JSON.stringify(dims)}`);
  const layout = o.layout ?? (dims[1] === 1 || dims[1] === 3 ? 'nchw' : 'nhwc');
  const [channels, h, w] = layout === 'nchw' ? [dims[1], dims[2], dims[3]] : [dims[3], dims[1], dims[2]];
  if (channels !== 1 && channels !== 3) throw importError(`input "${input.name}" ${JSON.stringify(dims)} read as ${layout}: it must have 1 or 3 channels (give --layout if it is the other one)`);
  if (typeof h !== 'number' || h !== w) throw importError(`input "${input.name}" ${JSON.stringify(dims)}: plankwatch prepares square images of a fixed size; the model's must be fixed and square`);
  const out = output.shape;
  if (!out || out.length !== 2 || (typeof out[1] === 'number' && out[1] !== classes.length)) {
    throw importError(`output "${output.name}" ${JSON.stringify(out)} must be [batch, ${classes.length}], one value per class of ${o.classesFile}`);
  }
  const io: OnnxIo = { input: input.name, output: output.name, layout, channels, mean: o.mean, std: o.std, outputs: o.outputs ?? 'probabilities' };

  // Run it on a few test images (a ramp, its mirror, flat grey): it must work through the adapter,
  // and what it gives decides between probabilities and logits unless --outputs says.
  const session = await OnnxSession.create(bytes, id, h, classes.length, io).catch((err: unknown) => {
    throw importError((err as Error).message);
  });
  const area = h * h;
  const test = new Float32Array(3 * area);
  for (let i = 0; i < area; i++) {
    test[i] = i / (area - 1);
    test[area + i] = 1 - i / (area - 1);
    test[2 * area + i] = 0.5;
  }
  let rows: Float32Array;
  try {
    rows = await session.run(test, 3);
  } catch (err) {
    throw importError(`${o.file} did not run on test images: ${(err as Error).message}`);
  } finally {
    await session.release();
  }
  if (rows.some((v) => !Number.isFinite(v))) throw importError(`${o.file} gives values that are not finite on test images`);
  if (!o.outputs) {
    const sums = [0, 1, 2].map((r) => rows.subarray(r * classes.length, (r + 1) * classes.length).reduce((a, b) => a + b, 0));
    const probabilities = rows.every((v) => v >= 0) && sums.every((sum) => Math.abs(sum - 1) < 1e-3);
    io.outputs = probabilities ? 'probabilities' : 'logits';
  }

  const meta: MemberMeta = {
    name: o.member,
    version: o.version,
    classes,
    input: { size: h, channels: 1 },
    preprocessing: { ...DEFAULT_PREPROCESS, background: o.background, invert: o.invert, noUpscale: o.noUpscale },
    architecture: o.architecture,
    training: {
      command: o.command,
      seed: 0,
      dataFingerprint: 'unknown (trained elsewhere)',
      importedFrom: { file: path.basename(o.file), sha256: createHash('sha256').update(bytes).digest('hex') },
    },
    metrics: {},
    parent: null,
    createdAt: new Date().toISOString(),
    onnx: io,
  };
  await mkdir(dir, { recursive: true });
  try {
    await copyFile(o.file, path.join(dir, ONNX_FILE));
    return { dir, meta: await writeMeta(dir, meta) };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function pick<T extends { name: string }>(list: T[], name: string | undefined, what: 'input' | 'output'): T {
  if (name) {
    const found = list.find((x) => x.name === name);
    if (!found) throw importError(`the model has no ${what} "${name}" (it has ${list.map((x) => `"${x.name}"`).join(', ')})`);
    return found;
  }
  if (list.length !== 1) throw importError(`the model has ${list.length} ${what}s (${list.map((x) => `"${x.name}"`).join(', ')}): name one with --${what}`);
  return list[0]!;
}
