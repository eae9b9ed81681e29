// meta.json of one model version, and the ensemble file that names the active members.
import type { InputSpec, PreprocessSpec } from '../types.js';

export interface MemberMetrics {
  top1?: number;
  top5?: number;
  logLoss?: number;
  macroF1?: number;
  /** Number of held-out images the metrics were measured on. */
  evaluatedOn?: number;
  [key: string]: unknown;
}

/** models/<member>/<version>/meta.json */
export interface MemberMeta {
  /** Member name (the folder under models/). */
  name: string;
  /** Version folder name, e.g. "v1" or "2026-11-28T22-10-00Z". */
  version: string;
  /** Class labels in output order. */
  classes: string[];
  input: InputSpec;
  preprocessing: PreprocessSpec;
  /** Architecture name from the training library. */
  architecture: string;
  training: {
    command: string;
    seed: number;
    /** SHA-256 over the sorted list of (relative path, size) of the training data. */
    dataFingerprint: string;
    /** Path of the saved split (relative to the model folder or repository). */
    split?: string;
    epochs?: number;
    [key: string]: unknown;
  };
  metrics: MemberMetrics;
  parent?: string | null;
  /** SHA-256 of each file in the version folder except meta.json. */
  checksums?: Record<string, string>;
  createdAt: string;
  /**
   * The camera of the images it was trained on (absent: the NDSB camera, bright-field gray with
   * no pixel size recorded). Every image is read in the canonical form whatever its polarity;
   * see classify/camera-check.ts for what a member can serve.
   */
  camera?: MemberCamera;
  /**
   * How model.onnx reads and writes, for a model trained elsewhere (`plankwatch models import`);
   * absent: as plankwatch exports it ("image" [batch, size, size, 1], "probabilities").
   */
  onnx?: OnnxIo;
}

/** meta.json `camera`: the profile of the training images. */
export interface MemberCamera {
  /** Their polarity: declared, or "auto" (then `detected` counts each). */
  polarity: 'bright-field' | 'dark-field' | 'auto';
  colour: 'gray' | 'rgb';
  /** Micrometres per pixel; 0: unknown. */
  pixelSizeUm: number;
  /** With polarity "auto": how many training images were found to be of each polarity. */
  detected?: { 'bright-field': number; 'dark-field': number };
  /** Always "bright-field": the form every image is brought to before the member's preparation. */
  canonical: 'bright-field';
}

/** The tensors of an imported model.onnx, and how the prepared image becomes its input. */
export interface OnnxIo {
  input: string;
  output: string;
  /** nchw: [batch, channels, size, size]; nhwc: [batch, size, size, channels]. */
  layout: 'nchw' | 'nhwc';
  /** 3: the prepared gray image is repeated in three channels. */
  channels: 1 | 3;
  /** The model reads (prepared pixel - mean) / std; the prepared pixels are in [0, 1]. */
  mean: number;
  std: number;
  /** logits: a softmax is applied to what the model gives. */
  outputs: 'probabilities' | 'logits';
}

/** soft: mean of the members' probabilities; geometric: their normalised geometric mean; hard: majority of their top classes. */
export type VotingRule = 'soft' | 'geometric' | 'hard';

export const VOTING_RULES: readonly VotingRule[] = ['soft', 'geometric', 'hard'];

type TtaName = 'identity' | 'rot90' | 'rot180' | 'rot270' | 'flipH' | 'flipV' | 'rot45' | 'rot135' | 'rot225' | 'rot315';

/** models/ensemble.json: the active ensemble. */
export interface EnsembleFile {
  version: string;
  voting: VotingRule;
  /** A member's own `tta` replaces the ensemble's for that member (e.g. extra views for a cheap member only). */
  members: { name: string; version: string; weight?: number; tta?: TtaName[] }[];
  /** Optional test-time augmentation at inference: the transforms to average over. */
  tta?: TtaName[];
  /**
   * Temperature of the vote (default 1): its log-probabilities divided by it and renormalised,
   * fitted on held-out images by `plankwatch evaluate --calibrate`. Never changes the winner.
   */
  temperature?: number;
}
