// Training recipes: the settings `plankwatch train` uses unless its options say otherwise. A
// network trained from scratch takes the plain one; one fine-tuned from a trained member (--from),
// on another camera or other classes, takes the transfer recipe:
// - head first: one epoch trains only the dense layers and the classifier (a new classifier
//   starts random; its first large gradients would otherwise wreck the trained convolutions);
// - then every layer at a quarter of the from-scratch rate, after a short linear warm-up;
// - augmentation for fine-tuning (augment.ts FINETUNE_AUGMENT);
// - square-root class weights (between accuracy and the rare classes' recall);
// - no early stopping: with --max-minutes the cosine decay follows the clock and ends with the
//   budget, so that the run stops at its lowest rate, where it is at its best.
import type { ClassWeighting } from './trainer.js';

export interface Recipe {
  name: 'plain' | 'transfer';
  learningRate: number;
  headEpochs: number;
  headLearningRate: number | undefined;
  warmupEpochs: number;
  /** An --augment spec. */
  augment: string;
  classWeights: ClassWeighting;
  patience: number;
  fitToTime: boolean;
}

export const PLAIN_RECIPE: Recipe = {
  name: 'plain',
  learningRate: 0.002,
  headEpochs: 0,
  headLearningRate: undefined,
  warmupEpochs: 0,
  augment: 'default',
  classWeights: 'balanced',
  patience: 5,
  fitToTime: false,
};

export const TRANSFER_RECIPE: Recipe = {
  name: 'transfer',
  learningRate: 0.0005,
  headEpochs: 1,
  headLearningRate: 0.002,
  warmupEpochs: 0.3,
  augment: 'finetune',
  classWeights: 'sqrt',
  patience: 0,
  fitToTime: true,
};
