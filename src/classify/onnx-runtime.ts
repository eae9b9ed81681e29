// ONNX Runtime (the onnxruntime-node package): loading it, choosing its execution provider, and
// one session per member. The only module that touches the package.
//
// onnxruntime-node's run() is synchronous in the calling thread (its intra-op pool works beside
// it), so the classify stage runs sessions in inference worker threads, never on the main thread,
// where each batch would stop the event loop. Its native addon registers itself when first
// loaded: loaded first by a worker thread, it cannot be loaded by any other thread of the process
// (Node reports "Module did not self-register"); loaded first by the main thread, every worker can
// load it too. preloadOnnxRuntime() does that before the workers start.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { PlankwatchError } from '../errors.js';
import { encodeModel, FLOAT } from './onnx-proto.js';
import { parseProviders, type OnnxProvider } from './onnx-providers.js';
import type { OnnxIo } from './meta.js';
import { ONNX_INPUT, ONNX_OUTPUT } from './onnx-export.js';

export const ONNX_PACKAGE = 'onnxruntime-node';

/** classify.onnxProviders and classify.onnxThreads. */
export interface OnnxSettings {
  /** "auto", or provider names in order separated by commas. */
  providers: string;
  /** Intra-op threads per session; 0: one per CPU core. */
  threads: number;
}

export const DEFAULT_ONNX_SETTINGS: OnnxSettings = { providers: 'auto', threads: 0 };

/** What startOnnxRuntime chose, for the log. */
export interface OnnxRuntimeInfo {
  version: string;
  provider: OnnxProvider;
  threads: number;
  /** Each provider tried before the one picked (or skipped), and why it was not picked. */
  passedOver: { provider: string; reason: string }[];
}

/** Provider libraries that onnxruntime-node loads from beside its addon when asked for the provider. */
const PROVIDER_LIBRARIES: Record<Exclude<OnnxProvider, 'cpu'>, Record<string, string>> = {
  cuda: { linux: 'libonnxruntime_providers_cuda.so', win32: 'onnxruntime_providers_cuda.dll' },
  tensorrt: { linux: 'libonnxruntime_providers_tensorrt.so', win32: 'onnxruntime_providers_tensorrt.dll' },
};

/**
 * Inference threads and intra-op threads per thread for ONNX Runtime, from classify.workers and
 * classify.onnxThreads (0: chosen here). By default one inference thread whose sessions use every
 * core: on 2 cores it classified as fast end to end as two threads of one intra-op thread each
 * (within the noise of a shared machine), with about 200 MiB less resident memory, as every
 * inference thread holds its own copy of the sessions (README "Performance").
 */
export function onnxLayout(workers: number, threads: number, cores = availableParallelism()): { workers: number; threads: number } {
  const w = workers > 0 ? Math.floor(workers) : threads > 0 ? Math.max(1, Math.floor(cores / threads)) : 1;
  const t = threads > 0 ? Math.floor(threads) : Math.max(1, Math.floor(cores / w));
  return { workers: w, threads: t };
}

const require = createRequire(import.meta.url);
let ort: typeof Ort | null = null;
let chosen: OnnxRuntimeInfo | null = null;
/** The settings `chosen` was made for. */
let chosenFor = '';

/** Parse classify.onnxProviders: the providers to try, in order. Throws PW_E_CONFIG_INVALID. */
export function providerOrder(setting: string): OnnxProvider[] {
  const { order, error } = parseProviders(setting);
  if (error) throw new PlankwatchError('PW_E_CONFIG_INVALID', `classify.onnxProviders: ${error}.`);
  return order;
}

/** Folder of the addon and the libraries beside it, or null when the package is not installed. */
function addonFolder(): string | null {
  try {
    const pkg = path.dirname(require.resolve(`${ONNX_PACKAGE}/package.json`));
    return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

/** Why a provider cannot be used here before even trying (its library is not installed), or null. */
function missingLibrary(provider: OnnxProvider): string | null {
  if (provider === 'cpu') return null;
  const lib = PROVIDER_LIBRARIES[provider][process.platform];
  const folder = addonFolder();
  if (!lib || !folder) return `no ${provider} build of ONNX Runtime for ${process.platform}-${process.arch}`;
  if (!existsSync(path.join(folder, lib))) return `${lib} is not installed beside ONNX Runtime (${folder}); see README "GPU and other execution providers"`;
  return null;
}

/**
 * Load onnxruntime-node in this thread and choose the first provider of the order that runs a
 * probe model. Throws PW_E_ONNX_RUNTIME when the package does not load or no provider runs.
 */
export async function startOnnxRuntime(settings: OnnxSettings = DEFAULT_ONNX_SETTINGS): Promise<OnnxRuntimeInfo> {
  const order = providerOrder(settings.providers);
  const threads = settings.threads > 0 ? Math.floor(settings.threads) : Math.max(1, availableParallelism());
  const key = `${order.join(',')}/${threads}`;
  if (chosen && chosenFor === key) return chosen;
  const runtime = await loadOrt();
  const passedOver: OnnxRuntimeInfo['passedOver'] = [];
  for (const provider of order) {
    const missing = missingLibrary(provider);
    if (missing) {
      passedOver.push({ provider, reason: missing });
      continue;
    }
    try {
      await probe(runtime, provider, threads);
    } catch (err) {
      passedOver.push({ provider, reason: err instanceof Error ? err.message : String(err) });
      continue;
    }
    chosen = { version: runtime.env.versions.common ?? 'unknown', provider, threads, passedOver };
    chosenFor = key;
    return chosen;
  }
  throw new PlankwatchError(
    'PW_E_ONNX_RUNTIME',
    `No ONNX Runtime execution provider of classify.onnxProviders "${settings.providers}" could run (${passedOver.map((p) => `${p.provider}: ${p.reason}`).join('; ')}).`,
  );
}

/**
 * Load the addon in the main thread (no session is made here), so that inference threads can
 * load it after. Throws PW_E_ONNX_RUNTIME.
 */
export async function preloadOnnxRuntime(): Promise<void> {
  await loadOrt();
}

async function loadOrt(): Promise<typeof Ort> {
  if (ort) return ort;
  if (!addonFolder()) {
    throw new PlankwatchError('PW_E_ONNX_RUNTIME', `The package ${ONNX_PACKAGE} is not installed (run \`npm ci\` in the plankwatch folder).`);
  }
  try {
    // The name in a variable: loaded at run time only, in the thread that runs inference.
    const name: string = ONNX_PACKAGE;
    const loaded = (await import(name)) as typeof Ort & { default?: typeof Ort };
    ort = loaded.InferenceSession ? loaded : loaded.default!;
    return ort;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const hint = /self-register/.test(why) ? ' (a worker thread of this process loaded its native addon first: then no other thread can; the main thread must load it first)' : '';
    throw new PlankwatchError('PW_E_ONNX_RUNTIME', `${ONNX_PACKAGE} could not be loaded: ${why}${hint}.`, { cause: err });
  }
}

function sessionOptions(provider: OnnxProvider, threads: number): Ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // No per-session memory arena: an arena keeps the largest batch's working memory for good, in
    // each session (about 200 MiB over the four shipped members at batches of 1 to 32); without
    // it, and without the per-batch-size memory plans, about 40-80 MiB stay after the same batches
    // (test/daemon/inference-memory.test.ts), at the same speed. Freed buffers go back to the C
    // allocator, which hands them to the next batch.
    enableCpuMemArena: false,
    enableMemPattern: false,
    // Pool threads sleep as soon as a batch is done instead of spinning: the cores are shared
    // with decoding and preparation, which run between batches.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

/** A one-node model (Softmax over [1, 2]) run once with the provider: whether it works here at all. */
async function probe(runtime: typeof Ort, provider: OnnxProvider, threads: number): Promise<void> {
  const bytes = encodeModel({
    irVersion: 7,
    opset: 13,
    producerName: 'plankwatch',
    producerVersion: '1',
    graphName: 'probe',
    nodes: [{ opType: 'Softmax', inputs: ['x'], outputs: ['y'], name: 'softmax', attributes: [{ name: 'axis', i: 1 }] }],
    initializers: [],
    inputs: [{ name: 'x', elemType: FLOAT, shape: [1, 2] }],
    outputs: [{ name: 'y', elemType: FLOAT, shape: [1, 2] }],
  });
  const session = await runtime.InferenceSession.create(bytes, sessionOptions(provider, threads));
  try {
    const out = await session.run({ x: new runtime.Tensor('float32', new Float32Array([0, 0]), [1, 2]) });
    const y = out.y?.data as Float32Array | undefined;
    if (!y || Math.abs(y[0]! - 0.5) > 1e-6) throw new Error('the probe model gave a wrong answer');
  } finally {
    await session.release();
  }
}

/** How plankwatch's own model.onnx reads and writes (onnx-export.ts). */
export const NATIVE_IO: OnnxIo = { input: ONNX_INPUT, output: ONNX_OUTPUT, layout: 'nhwc', channels: 1, mean: 0, std: 1, outputs: 'probabilities' };

/** How a member's model.onnx reads: meta.json `onnx` for an imported one, else plankwatch's own with the member's channels. */
export function memberIo(meta: { onnx?: OnnxIo; input: { channels: 1 | 3 } }): OnnxIo {
  return meta.onnx ?? (meta.input.channels === 3 ? { ...NATIVE_IO, channels: 3 } : NATIVE_IO);
}

/** Input and output shapes of a session as ONNX Runtime reports them (null: not a tensor). */
export interface SessionShapes {
  inputs: { name: string; shape: (number | string)[] | null }[];
  outputs: { name: string; shape: (number | string)[] | null }[];
}

/** One member's model.onnx in ONNX Runtime: prepared images in, probabilities out. */
export class OnnxSession {
  private constructor(
    private readonly session: Ort.InferenceSession,
    private readonly runtime: typeof Ort,
    readonly size: number,
    readonly numClasses: number,
    private readonly io: OnnxIo,
  ) {}

  /**
   * A session for the bytes of a model.onnx that reads [batch, size, size, 1] prepared images and
   * gives [batch, numClasses] probabilities, through `io` for a model trained elsewhere. Call
   * startOnnxRuntime first. Throws PW_E_MODEL_LOAD.
   */
  static async create(bytes: Uint8Array, id: string, size: number, numClasses: number, io: OnnxIo = NATIVE_IO): Promise<OnnxSession> {
    const session = await OnnxSession.open(bytes, id);
    const input = session.inputMetadata.find((m) => m.name === io.input);
    const output = session.outputMetadata.find((m) => m.name === io.output);
    const inShape = input?.isTensor ? input.shape : null;
    const outShape = output?.isTensor ? output.shape : null;
    const want = io.layout === 'nhwc' ? [size, size, io.channels] : [io.channels, size, size];
    const fixed = (d: number | string | undefined, n: number) => d === n || typeof d === 'string';
    const fits = inShape?.length === 4 && want.every((n, i) => fixed(inShape[i + 1], n)) && outShape?.length === 2 && fixed(outShape[1], numClasses);
    if (!fits) {
      await session.release();
      const layout = io.layout === 'nhwc' ? `[batch, ${size}, ${size}, ${io.channels}]` : `[batch, ${io.channels}, ${size}, ${size}]`;
      throw new PlankwatchError(
        'PW_E_MODEL_LOAD',
        `Member ${id}: model.onnx must read "${io.input}" ${layout} and give "${io.output}" [batch, ${numClasses}] as meta.json says; it reads ${JSON.stringify(inShape)} and gives ${JSON.stringify(outShape)}.`,
      );
    }
    return new OnnxSession(session, ort!, size, numClasses, io);
  }

  /** The inputs and outputs of a model.onnx, without checking them against anything. Throws PW_E_MODEL_LOAD. */
  static async shapes(bytes: Uint8Array, id: string): Promise<SessionShapes> {
    const session = await OnnxSession.open(bytes, id);
    try {
      const describe = (m: Ort.InferenceSession.ValueMetadata) => ({ name: m.name, shape: m.isTensor ? [...m.shape] : null });
      return { inputs: session.inputMetadata.map(describe), outputs: session.outputMetadata.map(describe) };
    } finally {
      await session.release();
    }
  }

  private static async open(bytes: Uint8Array, id: string): Promise<Ort.InferenceSession> {
    if (!ort || !chosen) throw new PlankwatchError('PW_E_INTERNAL', 'ONNX Runtime is not started in this thread');
    try {
      return await ort.InferenceSession.create(bytes, sessionOptions(chosen.provider, chosen.threads));
    } catch (err) {
      throw new PlankwatchError('PW_E_MODEL_LOAD', `Member ${id}: ONNX Runtime refused its model.onnx: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Probabilities of `count` prepared images (count * size * size floats, times 3 for a colour member): count * numClasses. */
  async run(pixels: Float32Array, count: number): Promise<Float32Array> {
    const { size, io } = this;
    const data = adaptInput(pixels, count, size * size, io);
    const dims = io.layout === 'nhwc' ? [count, size, size, io.channels] : [count, io.channels, size, size];
    const x = new this.runtime.Tensor('float32', data, dims);
    const out = await this.session.run({ [io.input]: x });
    const y = out[io.output]!;
    try {
      const values = y.data as Float32Array;
      return io.outputs === 'logits' ? softmaxRows(values, this.numClasses) : values;
    } finally {
      x.dispose();
    }
  }

  /**
   * The named outputs of `count` prepared images as the model gives them (no softmax), one array
   * each, e.g. the probabilities and the penultimate features of a graph that has both.
   */
  async outputs(pixels: Float32Array, count: number, names: readonly string[]): Promise<Float32Array[]> {
    const { size, io } = this;
    const data = adaptInput(pixels, count, size * size, io);
    const dims = io.layout === 'nhwc' ? [count, size, size, io.channels] : [count, io.channels, size, size];
    const x = new this.runtime.Tensor('float32', data, dims);
    try {
      // Every output is fetched: onnxruntime-node 1.23, asked for some of the outputs by name,
      // returned others (the first ones).
      const out = await this.session.run({ [io.input]: x });
      try {
        return names.map((n) => {
          const t = out[n];
          if (!t) throw new PlankwatchError('PW_E_INTERNAL', `the model has no output "${n}" (it has ${Object.keys(out).join(', ')})`);
          return Float32Array.from(t.data as Float32Array);
        });
      } finally {
        for (const t of Object.values(out)) t.dispose();
      }
    } finally {
      x.dispose();
    }
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The prepared images as the model reads them: normalised, and a gray image repeated into the
 * model's channels (prepared colour images, channels interleaved, keep theirs).
 */
function adaptInput(pixels: Float32Array, count: number, area: number, io: OnnxIo): Float32Array {
  const plain = io.mean === 0 && io.std === 1;
  const prepared = count > 0 ? pixels.length / (count * area) : 1;
  if (prepared === io.channels && io.layout === 'nhwc' && plain) return pixels;
  const scale = 1 / io.std;
  const out = new Float32Array(count * area * io.channels);
  for (let n = 0; n < count; n++) {
    for (let i = 0; i < area; i++) {
      for (let c = 0; c < io.channels; c++) {
        const v = (pixels[(n * area + i) * prepared + (prepared === 1 ? 0 : c)]! - io.mean) * scale;
        if (io.layout === 'nchw') out[(n * io.channels + c) * area + i] = v;
        else out[(n * area + i) * io.channels + c] = v;
      }
    }
  }
  return out;
}

/** Softmax of each row of k values, in a new array (the max is subtracted first). */
export function softmaxRows(values: Float32Array, k: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < values.length; r += k) {
    let max = -Infinity;
    for (let j = 0; j < k; j++) max = Math.max(max, values[r + j]!);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += out[r + j] = Math.exp(values[r + j]! - max);
    for (let j = 0; j < k; j++) out[r + j] = out[r + j]! / sum;
  }
  return out;
}
