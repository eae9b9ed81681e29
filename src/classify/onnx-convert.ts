// Converting member versions that predate model.onnx: write it beside model.json and record its
// checksum in meta.json, once. The version's other files must still match their checksums (a
// changed model is never blessed with a fresh one).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PlankwatchError } from '../errors.js';
import { readMeta, verifyChecksums, writeMeta } from './model-files.js';
import { ONNX_FILE, writeOnnxForFolder } from './onnx-export.js';

export interface ConvertResult {
  dir: string;
  /** False when the version already had a model.onnx covered by its checksums. */
  written: boolean;
  sha256: string;
}

/** Give one member version folder its model.onnx. Throws PW_E_MODEL_LOAD or PW_E_ONNX_EXPORT. */
export async function convertVersion(dir: string): Promise<ConvertResult> {
  const meta = await readMeta(dir).catch((err: unknown) => {
    throw new PlankwatchError('PW_E_MODEL_LOAD', `Cannot read ${path.join(dir, 'meta.json')}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  });
  const id = `${meta.name}/${meta.version}`;
  const recorded = meta.checksums?.[ONNX_FILE];
  const present = existsSync(path.join(dir, ONNX_FILE));
  if (recorded && present && (await verifyChecksums(dir, meta)).length === 0) return { dir, written: false, sha256: recorded };
  const { [ONNX_FILE]: _onnx, ...others } = meta.checksums ?? {};
  const changed = await verifyChecksums(dir, { ...meta, checksums: others });
  if (changed.length > 0) {
    throw new PlankwatchError('PW_E_MODEL_LOAD', `Member ${id}: ${changed.map((n) => path.join(dir, n)).join(', ')} no longer match the checksums in meta.json; not converting a changed model.`);
  }
  const sha256 = await writeOnnxForFolder(dir, id);
  const { checksums: _old, ...rest } = meta;
  await writeMeta(dir, rest);
  return { dir, written: true, sha256 };
}

/**
 * `plankwatch models convert`: the given version folders, else every member of the ensemble
 * file, else (all) every version folder under the models folder. Loads TensorFlow.js's cpu
 * backend in this thread to read the weights.
 */
export async function convertMembers(options: { dirs: string[]; modelsDir: string; ensembleFile: string; all: boolean; log: (line: string) => void }): Promise<ConvertResult[]> {
  const { initBackend } = await import('./backend.js');
  await initBackend(['cpu']);
  let dirs = options.dirs;
  if (dirs.length === 0 && options.all) {
    const { readdir } = await import('node:fs/promises');
    dirs = [];
    for (const name of (await readdir(options.modelsDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort()) {
      for (const version of (await readdir(path.join(options.modelsDir, name), { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort()) {
        const dir = path.join(options.modelsDir, name, version);
        if (existsSync(path.join(dir, 'meta.json')) && existsSync(path.join(dir, 'model.json'))) dirs.push(dir);
      }
    }
  } else if (dirs.length === 0) {
    const { readEnsembleFile } = await import('./ensemble-loader.js');
    const ensemble = await readEnsembleFile(options.ensembleFile);
    dirs = ensemble.members.map((m) => path.join(options.modelsDir, m.name, m.version));
  }
  const results: ConvertResult[] = [];
  for (const dir of dirs) {
    const r = await convertVersion(dir);
    options.log(`${r.written ? 'wrote' : 'has'} ${path.join(dir, ONNX_FILE)} (sha256 ${r.sha256.slice(0, 12)})`);
    results.push(r);
  }
  return results;
}
