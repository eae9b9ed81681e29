// Shared shapes that cross stage boundaries. Each stage owns its internals; only these travel.

/** A file that the ingest stage found complete in the watch folder, hashed and ready. */
export interface IncomingFile {
  /** Absolute path of the file as it lies in the watch folder. */
  path: string;
  /** Path relative to the watch folder, with forward slashes (stored in the database). */
  relPath: string;
  /** SHA-256 of the content, lowercase hex: the frame's identity. */
  sha256: string;
  bytes: number;
  /** When the file was first noticed (ms since epoch): latency is measured from here. */
  arrivedAt: number;
  /**
   * Modification time (whole ms since epoch) of the file when it was hashed. With relPath and
   * bytes it lets the store tell a rescan that this path is already done. Absent for files
   * that did not come through the watch folder (e.g. one-shot classification).
   */
  mtimeMs?: number;
}

/** Input spec of one ensemble member, read from its meta.json. */
export interface InputSpec {
  /** Square side in pixels. */
  size: number;
  /** 1: gray (a colour camera's images read as their luminance); 3: R, G, B. */
  channels: 1 | 3;
}

/** How raw pixels become the tensor a member sees; stored in meta.json, shared by training and inference. */
export interface PreprocessSpec {
  /** Gray level used for padding (NDSB: 255, white). */
  background: number;
  /** If true, never enlarge an image smaller than the input: pad it at its own scale. */
  noUpscale: boolean;
  /** If true, value = (255 - v) / 255 (organism bright on a zero background); else v / 255. */
  invert: boolean;
}

/** A decoded, padded, resized, normalised image for one input size. */
export interface PreparedImage {
  /** size*size*channels floats in row-major order, channels interleaved (NHWC). */
  pixels: Float32Array;
  size: number;
  /** Absent: 1 (gray). */
  channels?: 1 | 3;
}

/** What the preprocess stage hands to classify: one entry per distinct input of the ensemble (inputKey: size and preparation). */
export interface PreparedFrame {
  file: IncomingFile;
  width: number;
  height: number;
  /** Number of non-background pixels (organism area) in the original image, measured against its own border's level. */
  area: number;
  /** The same area in square micrometres, where camera.pixelSizeUm is known. */
  areaUm2?: number;
  /** The camera polarity the image came in (declared, or detected from its border with camera.polarity "auto"). */
  polarity?: 'bright-field' | 'dark-field';
  format: string;
  inputs: Map<string, PreparedImage>;
}

export interface ClassProb {
  label: string;
  probability: number;
}

export interface MemberPrediction {
  member: string;
  version: string;
  topK: ClassProb[];
}

export interface EnsemblePrediction {
  label: string;
  probability: number;
  /** Difference between the ensemble's first and second class probabilities (0..1). */
  margin: number;
  /** Fraction of members whose top class differs from the ensemble's label (0..1). */
  disagreement: number;
  /** Ensemble top-k. */
  topK: ClassProb[];
  members: MemberPrediction[];
  ensembleVersion: string;
}

export interface ClassifiedFrame {
  frame: PreparedFrame;
  prediction: EnsemblePrediction;
  /** ms since epoch when classification finished. */
  classifiedAt: number;
}

/** Reasons a file is quarantined; also its stable error code (see src/errors.ts). */
export type RejectCode =
  | 'PW_E_IMAGE_EMPTY'
  | 'PW_E_IMAGE_FORMAT'
  | 'PW_E_IMAGE_CORRUPT'
  | 'PW_E_IMAGE_TOO_LARGE'
  | 'PW_E_IMAGE_UNREADABLE'
  | 'PW_E_IMAGE_LINK'
  | 'PW_E_IMAGE_SPECIAL'
  | 'PW_E_FRAME_BIT_DEPTH'
  | 'PW_E_FRAME_BLANK';

/**
 * A stage with a lifetime, as the daemon runs it. The constructor only assigns; `start` opens,
 * connects, listens or loads; `stop` undoes it. A start that throws cleans up after itself: the
 * daemon stops only the parts that started, in reverse order of start.
 */
export interface Part {
  /** How logs name the part (`stopping <name> failed`). */
  readonly name: string;
  start(): Promise<unknown> | void;
  stop(): Promise<void> | void;
}
