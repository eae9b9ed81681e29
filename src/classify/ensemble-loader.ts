// Reading and validating an ensemble before any tensor is made: the ensemble file, each member's
// folder, model.json, its weight files, meta.json and checksums. Every failure is a
// PW_E_MODEL_LOAD naming the file at fault.
import { existsSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PlankwatchError } from '../errors.js';
import { inputKey } from '../preprocess/prepare.js';
import type { PreprocessSpec } from '../types.js';
import type { CameraProfile } from '../preprocess/index.js';
import { checkCamera } from './camera-check.js';
import { alignClasses } from './classes.js';
import { VOTING_RULES, type EnsembleFile, type MemberMeta } from './meta.js';
import { readMeta, verifyChecksums } from './model-files.js';
import { ONNX_FILE } from './onnx-export.js';
import { TTA_TRANSFORMS, type TtaTransform } from './tta.js';

export interface LoadedMember {
  name: string;
  /** Version folder named by the ensemble file. */
  version: string;
  /** models/<name>/<version> */
  dir: string;
  meta: MemberMeta;
  /** Voting weight (1 unless the ensemble file says otherwise). */
  weight: number;
  /** The views this member averages: its own "tta", else the ensemble's, else the image as it is. */
  tta: TtaTransform[];
  /** The prepared input it reads: inputKey of its size and preprocessing. */
  inputKey: string;
}

/** A validated ensemble: everything the classifier needs except the tensors themselves. */
export interface LoadedEnsemble {
  file: EnsembleFile;
  members: LoadedMember[];
  /** Union of the members' class lists. */
  classes: string[];
  /** Per member, union index of each of its classes. */
  classMaps: Int32Array[];
  /** Distinct inputs the preprocess stage must produce, one per size, preparation and channels (inputKey; channels absent: 1). */
  inputs: { key: string; size: number; spec: PreprocessSpec; channels?: 3 }[];
  tta: TtaTransform[];
}

/**
 * Validate an ensemble: `file` is the path of an ensemble.json or its parsed content; members are
 * looked up as `<modelsDir>/<name>/<version>/`, in the first of several folders that holds it when
 * `modelsDir` is a list (a writable store, then the shipped models). Throws PlankwatchError
 * PW_E_MODEL_LOAD, or PW_E_CAMERA_PROFILE when `camera` is given and a member cannot serve it.
 */
export async function loadEnsemble(file: string | EnsembleFile, modelsDir: string | readonly string[], camera?: CameraProfile): Promise<LoadedEnsemble> {
  const ensemble = typeof file === 'string' ? await readEnsembleFile(file) : file;
  const where = typeof file === 'string' ? file : `ensemble "${String(ensemble.version)}"`;
  checkEnsembleShape(ensemble, where);
  const folders = typeof modelsDir === 'string' ? [modelsDir] : modelsDir;

  const members: LoadedMember[] = [];
  for (const m of ensemble.members) {
    const candidates = folders.map((f) => path.join(f, m.name, m.version));
    const dir = candidates.find((d) => existsSync(d)) ?? candidates[0]!;
    const meta = await readMemberFiles(dir, `${m.name}/${m.version}`);
    members.push({ name: m.name, version: m.version, dir, meta, weight: m.weight ?? 1, tta: memberViews(ensemble, m), inputKey: inputKey(meta.input.size, meta.preprocessing, meta.input.channels) });
  }

  // With the camera known, a member that cannot serve it is refused (PW_E_CAMERA_PROFILE) before any tensor is made.
  if (camera) checkCamera(members, camera);
  const { classes, maps } = alignClasses(members.map((m) => m.meta.classes));
  const byKey = new Map<string, { key: string; size: number; spec: PreprocessSpec; channels?: 3 }>();
  for (const m of members) {
    if (!byKey.has(m.inputKey)) byKey.set(m.inputKey, { key: m.inputKey, size: m.meta.input.size, spec: { ...m.meta.preprocessing }, ...(m.meta.input.channels === 3 ? { channels: 3 as const } : {}) });
  }
  const inputs = [...byKey.values()].sort((a, b) => a.size - b.size || a.key.localeCompare(b.key));
  return { file: ensemble, members, classes, classMaps: maps, inputs, tta: ensembleViews(ensemble) };
}

/** The views every member averages unless it names its own: the file's "tta", else the image as it is. */
function ensembleViews(ensemble: EnsembleFile): TtaTransform[] {
  return ensemble.tta?.length ? [...ensemble.tta] : ['identity'];
}

/** The views one member averages: its own "tta", else the ensemble's. The daemon and `evaluate` both ask here. */
export function memberViews(ensemble: EnsembleFile, member: EnsembleFile['members'][number]): TtaTransform[] {
  return member.tta?.length ? [...member.tta] : ensembleViews(ensemble);
}

export async function readEnsembleFile(file: string): Promise<EnsembleFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw loadError(`Cannot read the ensemble file ${file}: ${reason(err)}`, err);
  }
  try {
    return JSON.parse(text) as EnsembleFile;
  } catch (err) {
    throw loadError(`The ensemble file ${file} is not valid JSON: ${reason(err)}`, err);
  }
}

function checkEnsembleShape(e: EnsembleFile, where: string): void {
  const bad = (what: string): never => {
    throw loadError(`${where}: ${what}`);
  };
  if (typeof e !== 'object' || e === null) bad('not a JSON object');
  if (typeof e.version !== 'string' || e.version === '') bad('"version" must be a non-empty string');
  if (!VOTING_RULES.includes(e.voting)) bad(`"voting" must be ${VOTING_RULES.map((r) => `"${r}"`).join(', ')}, not ${JSON.stringify(e.voting)}`);
  if (!Array.isArray(e.members) || e.members.length === 0) bad('"members" must list at least one member');
  const seen = new Set<string>();
  for (const [i, m] of e.members.entries()) {
    if (typeof m?.name !== 'string' || !m.name || typeof m.version !== 'string' || !m.version) {
      bad(`members[${i}] needs a "name" and a "version"`);
    }
    if (m.name.includes('..') || m.version.includes('..') || path.isAbsolute(m.name) || path.isAbsolute(m.version)) {
      bad(`members[${i}] name and version must be folder names under the models folder`);
    }
    if (m.weight !== undefined && !(typeof m.weight === 'number' && Number.isFinite(m.weight) && m.weight > 0)) {
      bad(`members[${i}].weight must be a positive number`);
    }
    if (m.tta !== undefined) checkTta(m.tta, `members[${i}].tta`, bad);
    const key = `${m.name}/${m.version}`;
    if (seen.has(key)) bad(`member ${key} is listed twice`);
    seen.add(key);
  }
  if (e.tta !== undefined) checkTta(e.tta, '"tta"', bad);
  if (e.temperature !== undefined && !(typeof e.temperature === 'number' && e.temperature >= 0.05 && e.temperature <= 20)) {
    bad(`"temperature" must be a number from 0.05 to 20 (1: the vote as it is), not ${JSON.stringify(e.temperature)}`);
  }
}

function checkTta(tta: unknown, key: string, bad: (what: string) => never): void {
  if (!Array.isArray(tta)) bad(`${key} must be a list of transforms`);
  for (const t of tta as unknown[]) if (!TTA_TRANSFORMS.includes(t as TtaTransform)) bad(`${key}: unknown transform ${JSON.stringify(t)} (known: ${TTA_TRANSFORMS.join(', ')})`);
  if (new Set(tta as unknown[]).size !== (tta as unknown[]).length) bad(`${key} lists a transform twice`);
}

/** Check one member folder; returns its meta.json. */
async function readMemberFiles(dir: string, id: string): Promise<MemberMeta> {
  const metaFile = path.join(dir, 'meta.json');
  let meta: MemberMeta;
  try {
    meta = await readMeta(dir);
  } catch (err) {
    throw loadError(`Member ${id}: cannot read ${metaFile}: ${reason(err)}`, err);
  }
  if (!Array.isArray(meta.classes) || meta.classes.length === 0 || meta.classes.some((c) => typeof c !== 'string')) {
    throw loadError(`Member ${id}: ${metaFile} must list its classes`);
  }
  if (new Set(meta.classes).size !== meta.classes.length) throw loadError(`Member ${id}: ${metaFile} lists a class twice`);
  const size = meta.input?.size;
  // 3: a member trained here on R, G and B (train --channels 3); an imported model.onnx reads gray (meta.json "onnx" repeats it).
  if (!Number.isInteger(size) || size <= 0 || !(meta.input.channels === 1 || (meta.input.channels === 3 && meta.onnx === undefined))) {
    throw loadError(`Member ${id}: ${metaFile} "input" must be { size: positive integer, channels: 1 or 3 (3 only for a member trained with --channels 3) }`);
  }
  const p = meta.preprocessing;
  if (!p || typeof p.background !== 'number' || typeof p.noUpscale !== 'boolean' || typeof p.invert !== 'boolean') {
    throw loadError(`Member ${id}: ${metaFile} "preprocessing" needs background, noUpscale and invert`);
  }

  const io = meta.onnx;
  if (io !== undefined) {
    const good =
      typeof io === 'object' && io !== null && typeof io.input === 'string' && typeof io.output === 'string' && (io.layout === 'nchw' || io.layout === 'nhwc') &&
      (io.channels === 1 || io.channels === 3) && Number.isFinite(io.mean) && Number.isFinite(io.std) && io.std > 0 && (io.outputs === 'probabilities' || io.outputs === 'logits');
    if (!good) throw loadError(`Member ${id}: ${metaFile} "onnx" needs input, output, layout (nchw or nhwc), channels (1 or 3), mean, std (> 0) and outputs (probabilities or logits)`);
  }
  const modelFile = path.join(dir, 'model.json');
  // A model imported as model.onnx alone (meta.json "onnx") has no model.json: its model.onnx,
  // which must be in the checksums, is all there is.
  const onnxOnly = meta.onnx !== undefined && !existsSync(modelFile);
  if (onnxOnly && !meta.checksums?.[ONNX_FILE]) throw loadError(`Member ${id}: ${metaFile} lists no checksum for ${path.join(dir, ONNX_FILE)}`);
  let model: { format?: string; weightsManifest?: { paths: string[] }[] } = {};
  try {
    if (!onnxOnly) model = JSON.parse(await readFile(modelFile, 'utf8')) as typeof model;
  } catch (err) {
    throw loadError(`Member ${id}: cannot read ${modelFile}: ${reason(err)}`, err);
  }
  if (model.format !== undefined && model.format !== 'layers-model') {
    throw loadError(`Member ${id}: ${modelFile} is a "${model.format}"; only TensorFlow.js layers models are supported`);
  }
  for (const group of model.weightsManifest ?? []) {
    for (const p of group.paths) {
      const weightsFile = path.join(dir, p);
      try {
        await access(weightsFile);
      } catch (err) {
        throw loadError(`Member ${id}: weights file ${weightsFile} named in ${modelFile} is missing`, err);
      }
    }
  }
  for (const name of Object.keys(meta.checksums ?? {})) {
    try {
      await access(path.join(dir, name));
    } catch (err) {
      throw loadError(`Member ${id}: ${path.join(dir, name)} listed in the checksums of ${metaFile} is missing`, err);
    }
  }
  // model.onnx is what the ONNX backend runs: one that meta.json does not vouch for is refused
  // (a version without it is converted from model.json at load instead).
  if (!meta.checksums?.[ONNX_FILE] && existsSync(path.join(dir, ONNX_FILE))) {
    throw loadError(`Member ${id}: ${path.join(dir, ONNX_FILE)} is not covered by the checksums in ${metaFile} (written after it?); remove it, or run \`plankwatch models convert ${dir}\` to write it again with its checksum`);
  }
  const bad = await verifyChecksums(dir, meta);
  if (bad.length > 0) {
    throw loadError(`Member ${id}: checksum mismatch for ${bad.map((b) => path.join(dir, b)).join(', ')} (file changed or truncated since meta.json was written)`);
  }
  return meta;
}

function loadError(detail: string, cause?: unknown): PlankwatchError {
  return new PlankwatchError('PW_E_MODEL_LOAD', detail, cause === undefined ? undefined : { cause });
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file';
  return err instanceof Error ? err.message : String(err);
}
