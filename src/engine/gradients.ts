// Gradient functions for the ops that training uses.
//
// The CommonJS build of @tensorflow/tfjs-core that Node loads registers no gradients (the
// `@tensorflow/tfjs` umbrella package does that, and it is not a dependency here). These are the
// gradients of the kernels a plankwatch network records on the tape, written against the public
// API and following tfjs-core's own gradient definitions (Apache-2.0, Google LLC).
// Gradients already registered (tfjs-layers' bundle registers tfjs-core's) are left alone, except
// FAST_OVERRIDES: there the stock gradient tiles or broadcasts through kernels that are slow on
// wasm (FusedBatchNorm tiles 1/sqrt(var) to the activation's full shape; LeakyRelu broadcasts a
// `where`), and the version here computes the same values with cheap elementwise kernels.
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

type GradFunc = GradConfig['gradFunc'];

const { getReductionAxes, assertAndGetBroadcastShape } = tf.backend_util;

/** dy summed down to `shape` after a broadcast to `outShape`. */
function unbroadcast(res: Tensor, shape: number[], outShape: number[]): Tensor {
  const axes = getReductionAxes(shape, outShape);
  return tf.reshape(axes.length > 0 ? tf.sum(res, axes) : res, shape);
}

function binary(kernelName: string, der: (dy: Tensor, a: Tensor, b: Tensor) => [Tensor, Tensor]): GradConfig {
  return {
    kernelName,
    inputsToSave: ['a', 'b'],
    gradFunc: ((dy: Tensor, [a, b]: Tensor[]) => {
      const outShape = assertAndGetBroadcastShape(a!.shape, b!.shape);
      return {
        a: () => unbroadcast(der(dy, a!, b!)[0], a!.shape, outShape),
        b: () => unbroadcast(der(dy, a!, b!)[1], b!.shape, outShape),
      };
    }) as unknown as GradFunc,
  };
}

function unary(kernelName: string, der: (dy: Tensor, x: Tensor, attrs: NamedAttrMap) => Tensor, saveOutput = false): GradConfig {
  return {
    kernelName,
    inputsToSave: saveOutput ? [] : ['x'],
    outputsToSave: saveOutput ? [true] : undefined,
    gradFunc: ((dy: Tensor, [x]: Tensor[], attrs: NamedAttrMap) => ({ x: () => der(dy, x!, attrs) })) as unknown as GradFunc,
  };
}

function reductionAxes(axis: unknown, shape: number[]): number[] {
  return tf.util.parseAxisParam(axis as number | number[], shape);
}

function expandTo(dy: Tensor, x: Tensor, axes: number[]): Tensor {
  const expanded = x.shape.slice();
  for (const a of axes) expanded[a] = 1;
  return tf.mul(tf.reshape(dy, expanded), tf.ones(x.shape, 'float32'));
}

const configs: GradConfig[] = [
  binary('Add', (dy) => [dy, dy]),
  binary('Sub', (dy) => [dy, tf.neg(dy)]),
  binary('Multiply', (dy, a, b) => [tf.mul(dy, tf.cast(b, 'float32')), tf.mul(dy, tf.cast(a, 'float32'))]),
  binary('RealDiv', (dy, a, b) => [tf.div(dy, b), tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))]),
  binary('Maximum', (dy, a, b) => [tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')), tf.mul(dy, tf.cast(tf.less(a, b), 'float32'))]),
  binary('Minimum', (dy, a, b) => [tf.mul(dy, tf.cast(tf.lessEqual(a, b), 'float32')), tf.mul(dy, tf.cast(tf.greater(a, b), 'float32'))]),
  binary('SquaredDifference', (dy, a, b) => {
    const two = tf.mul(tf.scalar(2), tf.sub(a, b));
    return [tf.mul(dy, two), tf.mul(dy, tf.neg(two))];
  }),
  {
    kernelName: 'AddN',
    saveAllInputs: true,
    gradFunc: ((dy: Tensor, saved: Tensor[]) => Object.fromEntries(saved.map((_, i) => [i, () => tf.clone(dy)]))) as unknown as GradFunc,
  },
  unary('Neg', (dy) => tf.neg(dy)),
  unary('Identity', (dy) => tf.clone(dy)),
  unary('Cast', (dy) => tf.clone(dy)),
  unary('Square', (dy, x) => tf.mul(dy, tf.mul(tf.cast(x, 'float32'), 2))),
  unary('Sqrt', (dy, x) => tf.div(dy, tf.mul(tf.sqrt(tf.cast(x, 'float32')), 2))),
  unary('Rsqrt', (dy, x) => tf.div(dy, tf.mul(tf.pow(x, 1.5), -2))),
  unary('Log', (dy, x) => tf.div(dy, tf.cast(x, 'float32'))),
  unary('Exp', (dy, y) => tf.mul(dy, y), true),
  unary('Relu', (dy, x) => tf.mul(dy, tf.step(tf.cast(x, 'float32')))),
  unary('LeakyRelu', (dy, x, attrs) => tf.mul(dy, tf.step(x, attrs.alpha as number))),
  unary('Sigmoid', (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(tf.scalar(1), y))), true),
  unary('Tanh', (dy, y) => tf.mul(tf.sub(tf.scalar(1), tf.square(y)), dy), true),
  unary('ClipByValue', (dy, x, attrs) =>
    tf.where(tf.logicalAnd(tf.greaterEqual(x, attrs.clipValueMin as number), tf.lessEqual(x, attrs.clipValueMax as number)), dy, tf.zerosLike(dy)),
  ),
  unary('Reshape', (dy, x) => tf.reshape(dy, x.shape)),
  unary('ExpandDims', (dy, x) => tf.reshape(dy, x.shape)),
  unary('Squeeze', (dy, x) => tf.reshape(dy, x.shape)),
  unary('Transpose', (dy, _x, attrs) => {
    const perm = attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return tf.transpose(dy, inverse);
  }),
  unary('Sum', (dy, x, attrs) => expandTo(dy, x, reductionAxes(attrs.axis, x.shape))),
  unary('Mean', (dy, x, attrs) => {
    const axes = reductionAxes(attrs.axis, x.shape);
    const n = axes.reduce((p, a) => p * x.shape[a]!, 1);
    return tf.div(expandTo(dy, x, axes), n);
  }),
  {
    kernelName: 'Max',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: ((dy: Tensor, [x, y]: Tensor[], attrs: NamedAttrMap) => {
      const axes = reductionAxes(attrs.reductionIndices, x!.shape);
      const shape = x!.shape.slice();
      for (const a of axes) shape[a] = 1;
      const mask = tf.cast(tf.equal(x!, tf.reshape(y!, shape)), 'float32');
      return { x: () => tf.mul(mask, tf.reshape(dy, shape)) };
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'Softmax',
    outputsToSave: [true],
    gradFunc: ((dy: Tensor, [y]: Tensor[], attrs: NamedAttrMap) => {
      const dyTimesY = tf.mul(dy, y!);
      return { logits: () => tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [attrs.dim as number], true), y!)) };
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: ((dy: Tensor, [a, b]: Tensor[], attrs: NamedAttrMap) => {
      const ta = attrs.transposeA as boolean;
      const tb = attrs.transposeB as boolean;
      if (!ta && !tb) return { a: () => tf.matMul(dy, b!, false, true), b: () => tf.matMul(a!, dy, true, false) };
      if (!ta && tb) return { a: () => tf.matMul(dy, b!, false, false), b: () => tf.matMul(dy, a!, true, false) };
      if (ta && !tb) return { a: () => tf.matMul(b!, dy, false, true), b: () => tf.matMul(a!, dy, false, false) };
      return { a: () => tf.matMul(b!, dy, true, true), b: () => tf.matMul(dy, a!, true, true) };
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: ((dy: Tensor, [x, filter]: Tensor[], attrs: NamedAttrMap) => {
      const { strides, pad, dataFormat, dimRoundingMode } = attrs;
      const engine = tf.engine();
      return {
        x: () =>
          engine.runKernel('Conv2DBackpropInput', { dy, filter: filter! }, { strides, pad, dataFormat, dimRoundingMode, inputShape: x!.shape } as unknown as NamedAttrMap) as Tensor,
        filter: () =>
          engine.runKernel('Conv2DBackpropFilter', { x: x!, dy }, { strides, pad, dataFormat, dimRoundingMode, filterShape: filter!.shape } as unknown as NamedAttrMap) as Tensor,
      };
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'MaxPool',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: ((dy: Tensor, [x, y]: Tensor[], attrs: NamedAttrMap) => {
      const { filterSize, strides, pad, dimRoundingMode } = attrs;
      return {
        x: () => tf.engine().runKernel('MaxPoolGrad', { dy, input: x!, output: y! }, { filterSize, strides, pad, dimRoundingMode } as unknown as NamedAttrMap) as Tensor,
      };
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'AvgPool',
    inputsToSave: ['x'],
    gradFunc: ((dy: Tensor, [x]: Tensor[], attrs: NamedAttrMap) => {
      const { filterSize, strides, pad } = attrs;
      return { x: () => tf.engine().runKernel('AvgPoolGrad', { dy, input: x! }, { filterSize, strides, pad } as unknown as NamedAttrMap) as Tensor };
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'FusedBatchNorm',
    inputsToSave: ['x', 'mean', 'variance', 'scale'],
    gradFunc: ((dy: Tensor, [x, mean, variance, scale]: Tensor[], attrs: NamedAttrMap) => {
      const eps = attrs.varianceEpsilon as number;
      const scaleValue = scale ?? tf.scalar(1);
      const axes = getReductionAxes(mean!.shape, x!.shape);
      const reduce = (t: Tensor) => tf.reshape(mean!.rank === 1 ? tf.sum(t, axes) : t, mean!.shape);
      const inv = tf.rsqrt(tf.add(variance!, tf.scalar(eps)));
      const dyScaled = tf.mul(dy, scaleValue);
      const centred = tf.sub(x!, mean!);
      return {
        x: () => tf.reshape(tf.mul(dyScaled, inv), x!.shape),
        mean: () => reduce(tf.mul(tf.neg(inv), dyScaled)),
        variance: () => reduce(tf.mul(tf.mul(tf.mul(tf.pow(inv, 3), -0.5), centred), dyScaled)),
        scale: () => reduce(tf.mul(dy, tf.mul(centred, inv))),
        offset: () => reduce(dy),
      };
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: ((dy: Tensor, saved: Tensor[], attrs: NamedAttrMap) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0]!.shape)[0]!;
      const parts = tf.split(dy, saved.map((t) => t.shape[axis]!), axis);
      return Object.fromEntries(parts.map((t, i) => [i, () => t]));
    }) as unknown as GradFunc,
  },
  {
    kernelName: 'Pack',
    saveAllInputs: true,
    gradFunc: ((dy: Tensor, saved: Tensor[], attrs: NamedAttrMap) => {
      const parts = tf.unstack(dy, attrs.axis as number);
      return Object.fromEntries(parts.map((t, i) => [i, () => t]));
    }) as unknown as GradFunc,
  },
  unary('Slice', (dy, x, attrs) => {
    const begin = attrs.begin as number[];
    const size = attrs.size as number[];
    const paddings = x.shape.map((d, i) => [begin[i]!, d - begin[i]! - (size[i] === -1 ? d - begin[i]! : size[i]!)] as [number, number]);
    return tf.pad(dy, paddings);
  }),
  unary('PadV2', (dy, x, attrs) => {
    const paddings = attrs.paddings as [number, number][];
    return tf.slice(dy, paddings.map((p) => p[0]), x.shape);
  }),
];

const FAST_OVERRIDES = new Set(['FusedBatchNorm', 'LeakyRelu']);

let registered = false;

/** Register every gradient above that is not registered yet (idempotent). */
export function registerTrainingGradients(): void {
  if (registered) return;
  registered = true;
  for (const config of configs) {
    if (FAST_OVERRIDES.has(config.kernelName) || tf.getGradient(config.kernelName) == null) tf.registerGradient(config);
  }
}
