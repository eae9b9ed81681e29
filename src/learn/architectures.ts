// Built-in network architectures for small grayscale plankton images, chosen by name.
// Every one is a plain tfjs-layers model (standard layers only), so the classify runtime loads it
// with tf.loadLayersModel and no custom layer registry. The last layer is a softmax named
// "probabilities"; the layer before it, "logits", is what training differentiates through.
import * as tfl from '@tensorflow/tfjs-layers';

export interface ArchitectureInfo {
  name: string;
  /** Input side in pixels. */
  inputSize: number;
  description: string;
  /** Convolution blocks: output channels of each 3x3 convolution, per resolution (then 2x2 max pool). */
  blocks: number[][];
  /** Width of the dense layer before the classifier (0: none). */
  dense: number;
  dropout: number;
  /**
   * 'p4': the weights are tied so that the network is exactly invariant to quarter turns of the
   * image (see rotation-ties.ts); training keeps the ties, the saved model is an ordinary one.
   */
  symmetry?: 'p4';
}

const P4_NOTE = 'Its weights are tied so that every feature is learned once and applied at all four quarter turns (a p4 group convolution): the network gives the same probabilities for an image and its quarter turns, at the cost of the plain network of the same widths.';

export const ARCHITECTURES: Record<string, ArchitectureInfo> = {
  'pw-vgg-96': {
    name: 'pw-vgg-96',
    inputSize: 96,
    description: 'VGG-style, 96 px: 8 conv3x3 (16-16, 32-32, 64-64, 128-128) with batch norm and leaky ReLU, dense 256. About 119 M multiply-adds.',
    blocks: [[16, 16], [32, 32], [64, 64], [128, 128]],
    dense: 256,
    dropout: 0.5,
  },
  'pw-deep-80': {
    name: 'pw-deep-80',
    inputSize: 80,
    description: 'Deeper VGG-style, 80 px: 10 conv3x3 (16-16, 32-32, 64-64-64, 128-128-128) with batch norm and leaky ReLU, dense 256. About 112 M multiply-adds. Started from a pw-vgg-80 model with --init-from, the two extra convolutions begin as the identity.',
    blocks: [[16, 16], [32, 32], [64, 64, 64], [128, 128, 128]],
    dense: 256,
    dropout: 0.5,
  },
  'pw-vgg-80': {
    name: 'pw-vgg-80',
    inputSize: 80,
    description: 'VGG-style, 80 px: 8 conv3x3 (16-16, 32-32, 64-64, 128-128) with batch norm and leaky ReLU, dense 256. About 82 M multiply-adds.',
    blocks: [[16, 16], [32, 32], [64, 64], [128, 128]],
    dense: 256,
    dropout: 0.5,
  },
  'pw-vgg-64': {
    name: 'pw-vgg-64',
    inputSize: 64,
    description: 'VGG-style, 64 px: 8 conv3x3 (16-16, 32-32, 64-64, 128-128) with batch norm and leaky ReLU, dense 256. About 52 M multiply-adds.',
    blocks: [[16, 16], [32, 32], [64, 64], [128, 128]],
    dense: 256,
    dropout: 0.5,
  },
  'pw-vgg-48': {
    name: 'pw-vgg-48',
    inputSize: 48,
    description: 'VGG-style, 48 px: 8 conv3x3 (16-16, 32-32, 64-64, 128-128) with batch norm and leaky ReLU, dense 256. About 29 M multiply-adds.',
    blocks: [[16, 16], [32, 32], [64, 64], [128, 128]],
    dense: 256,
    dropout: 0.5,
  },
  'pw-wide-48': {
    name: 'pw-wide-48',
    inputSize: 48,
    description: 'Wider VGG-style, 48 px: 8 conv3x3 (24-24, 48-48, 96-96, 160-160), batch norm, leaky ReLU, dense 384. About 58 M multiply-adds.',
    blocks: [[24, 24], [48, 48], [96, 96], [160, 160]],
    dense: 384,
    dropout: 0.5,
  },
  'pw-tiny-32': {
    name: 'pw-tiny-32',
    inputSize: 32,
    description: 'Tiny, 32 px: 3 conv3x3 (8, 16, 32), for tests and smoke runs. About 1 M multiply-adds.',
    blocks: [[8], [16], [32]],
    dense: 32,
    dropout: 0,
  },
};

/** A plain architecture's rotation-invariant twin: the same widths and cost, its weights tied. */
function rotationInvariant(plain: string, name: string, description: string): ArchitectureInfo {
  return { ...ARCHITECTURES[plain]!, name, description: `${description} ${P4_NOTE}`, symmetry: 'p4' };
}

for (const info of [
  rotationInvariant('pw-vgg-96', 'pw-p4-96', 'Rotation-invariant VGG-style, 96 px: the widths of pw-vgg-96 (4-4, 8-8, 16-16, 32-32 groups of 4 orientations), dense 256. About 119 M multiply-adds.'),
  rotationInvariant('pw-vgg-80', 'pw-p4-80', 'Rotation-invariant VGG-style, 80 px: the widths of pw-vgg-80 (4-4, 8-8, 16-16, 32-32 groups of 4 orientations), dense 256. About 82 M multiply-adds.'),
  rotationInvariant('pw-vgg-64', 'pw-p4-64', 'Rotation-invariant VGG-style, 64 px: the widths of pw-vgg-64, dense 256. About 52 M multiply-adds.'),
  rotationInvariant('pw-vgg-48', 'pw-p4-48', 'Rotation-invariant VGG-style, 48 px: the widths of pw-vgg-48, dense 256. About 29 M multiply-adds.'),
  rotationInvariant('pw-tiny-32', 'pw-p4-tiny-32', 'Tiny rotation-invariant, 32 px: 3 conv3x3 (8, 16, 32), for tests and smoke runs. About 1 M multiply-adds.'),
])
  ARCHITECTURES[info.name] = info;

/** True for an architecture whose networks give the same probabilities for an image and its quarter turns. */
export function quarterTurnInvariant(architecture: string): boolean {
  return ARCHITECTURES[architecture]?.symmetry === 'p4';
}

export interface BuildOptions {
  numClasses: number;
  seed: number;
  /** Leaky ReLU slope for negative inputs (Dieleman et al. used 1/3). */
  leak?: number;
  /** Dropout rate around the dense layer, instead of the architecture's own. */
  dropout?: number;
  /** Input channels: 1 (gray, the default) or 3 (R, G, B). */
  channels?: 1 | 3;
}

export function architectureInfo(name: string): ArchitectureInfo {
  const info = ARCHITECTURES[name];
  if (!info) throw new Error(`Unknown architecture "${name}". Known: ${Object.keys(ARCHITECTURES).join(', ')}.`);
  return info;
}

/** Build a fresh, seeded model of the named architecture. */
export function buildModel(name: string, options: BuildOptions): tfl.LayersModel {
  const info = architectureInfo(name);
  const leak = options.leak ?? 0.1;
  const dropout = options.dropout ?? info.dropout;
  let seed = options.seed;
  const init = () => tfl.initializers.heNormal({ seed: seed++ });
  const input = tfl.input({ shape: [info.inputSize, info.inputSize, options.channels ?? 1], name: 'image' });
  let x: tfl.SymbolicTensor = input;
  info.blocks.forEach((block, b) => {
    block.forEach((filters, c) => {
      const id = `b${b + 1}c${c + 1}`;
      x = tfl.layers.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(), name: `${id}_conv` }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.batchNormalization({ momentum: 0.9, name: `${id}_bn` }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.leakyReLU({ alpha: leak, name: `${id}_act` }).apply(x) as tfl.SymbolicTensor;
    });
    x = tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `b${b + 1}_pool` }).apply(x) as tfl.SymbolicTensor;
  });
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  if (info.dense > 0) {
    if (dropout > 0) x = tfl.layers.dropout({ rate: dropout, seed: seed++, name: 'dropout1' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.dense({ units: info.dense, kernelInitializer: init(), name: 'dense1' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.leakyReLU({ alpha: leak, name: 'dense1_act' }).apply(x) as tfl.SymbolicTensor;
    if (dropout > 0) x = tfl.layers.dropout({ rate: dropout, seed: seed++, name: 'dropout2' }).apply(x) as tfl.SymbolicTensor;
  }
  const logits = tfl.layers
    .dense({ units: options.numClasses, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }), name: 'logits' })
    .apply(x) as tfl.SymbolicTensor;
  const probabilities = tfl.layers.activation({ activation: 'softmax', name: 'probabilities' }).apply(logits) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: probabilities, name });
}

/**
 * Set the rate of every Dropout layer of a loaded model (fine-tuning a model that under-fits with
 * less dropout). A model built without dropout layers has none to change: returns how many changed.
 */
export function setDropoutRate(model: tfl.LayersModel, rate: number): number {
  if (!(rate >= 0 && rate < 1)) throw new Error(`Dropout rate must be at least 0 and below 1, got ${rate}.`);
  let changed = 0;
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Dropout') continue;
    (layer as unknown as { rate: number }).rate = rate;
    changed++;
  }
  return changed;
}

/** The rate of the model's first Dropout layer (null: it has none), as recorded in meta.json. */
export function dropoutRate(model: tfl.LayersModel): number | null {
  const layer = model.layers.find((l) => l.getClassName() === 'Dropout');
  return layer ? (layer as unknown as { rate: number }).rate : null;
}

/** The same model cut at its "logits" layer (shares weights): what the loss differentiates. */
export function logitsModel(model: tfl.LayersModel): tfl.LayersModel {
  return tfl.model({ inputs: model.inputs, outputs: model.getLayer('logits').output as tfl.SymbolicTensor });
}

/** Multiply-adds per image of the convolution and dense layers. */
export function countMacs(model: tfl.LayersModel): number {
  let macs = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'Conv2D') {
      const [kh, kw, ci, co] = layer.getWeights()[0]!.shape as [number, number, number, number];
      const out = layer.outputShape as number[];
      macs += out[1]! * out[2]! * kh * kw * ci * co;
    } else if (cls === 'Dense') {
      const [a, b] = layer.getWeights()[0]!.shape as [number, number];
      macs += a * b;
    }
  }
  return macs;
}
