// Options for a short training run of the tiny architecture on the committed fixture images.
import path from 'node:path';
import { NO_AUGMENT } from '../../src/learn/augment.js';
import type { TrainRunOptions } from '../../src/learn/train-run.js';

export const FIXTURES = path.join('test', 'fixtures', 'ndsb');

export function tinyTrainOptions(modelsDir: string, command: string): TrainRunOptions {
  return {
    data: FIXTURES,
    member: 'tiny',
    architecture: 'pw-tiny-32',
    modelsDir,
    seed: 3,
    validationFraction: 0.25,
    epochs: 6,
    batchSize: 8,
    learningRate: 0.003,
    weightDecay: 0,
    classWeights: 'balanced',
    augment: NO_AUGMENT,
    patience: 0,
    maxMinutes: 0,
    resume: false,
    backend: 'wasm',
    command,
  };
}
