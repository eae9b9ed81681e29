// The start-up checks, shared by `plankwatch run` (before any part starts) and `plankwatch config
// validate`: everything the daemon would refuse at start except the binding of its ports. Every
// file the config names is read, every ensemble member is found, opened, parsed and checksummed,
// and every folder the daemon writes is writable by this user. Each problem names its config key.
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { backendCandidates, loadEnsemble, LocalRunner, ONNX_FILE, readEnsembleFile, type EnsembleFile, type LoadedEnsemble } from '../classify/index.js';
import { CONFIG_SCHEMA, CREDENTIALS_PREFIX, type Config, type ObjectNode } from '../config/index.js';
import { ERRORS, PlankwatchError, isPlankwatchError, type ErrorCode } from '../errors.js';
import { isLoopback } from '../http/index.js';
import { navConfigProblems } from '../nav/index.js';
import { preparedBackground } from '../preprocess/index.js';

export interface Problem {
  code: ErrorCode;
  /** The config key at fault, e.g. publish.passwordFile. */
  key: string;
  detail: string;
}

export interface PreflightOptions {
  /**
   * Also build each member's network and run it once on the configured backend, as the classifier
   * does at start. `config validate` does; `run` leaves it to the classifier, which starts next.
   */
  loadModels: boolean;
}

/** Every problem found; none means the daemon starts unless a port is taken. */
export async function preflight(c: Config, options: PreflightOptions): Promise<Problem[]> {
  const problems: Problem[] = [];
  await checkNamedFiles(c, problems);
  checkHttp(c, problems);
  for (const p of navConfigProblems(c.nav)) problems.push({ code: 'PW_E_CONFIG_INVALID', ...p });
  await checkFolders(c, problems);
  await checkModels(c, options, problems);
  return problems;
}

/** One error for all the problems: PW_E_CONFIG_INVALID if any is a config problem, else the code they share. */
export function preflightError(problems: Problem[], where?: string): PlankwatchError {
  const code = problems.some((p) => p.code === 'PW_E_CONFIG_INVALID') ? 'PW_E_CONFIG_INVALID' : problems[0]!.code;
  const lines = problems.map((p) => `${p.key}: ${p.detail}${p.code === code ? '' : ` (${p.code})`}`);
  return new PlankwatchError(code, `${problems.length} problem(s)${where ? ` in ${where}` : ''}:\n  - ${lines.join('\n  - ')}`);
}

/** What to do about each kind of problem found, one line per code. */
export function preflightActions(problems: Problem[]): string[] {
  return [...new Set(problems.map((p) => p.code))].map((code) => `${code}: ${ERRORS[code].action}`);
}

// Secrets and TLS files: every key of the schema whose name ends in "File".

function fileKeys(node: ObjectNode = CONFIG_SCHEMA, prefix: string[] = []): string[][] {
  return Object.entries(node.properties).flatMap(([key, child]) => (child.type === 'object' ? fileKeys(child, [...prefix, key]) : key.endsWith('File') ? [[...prefix, key]] : []));
}

async function checkNamedFiles(c: Config, problems: Problem[]): Promise<void> {
  for (const keyPath of fileKeys()) {
    const key = keyPath.join('.');
    const file = keyPath.reduce<unknown>((node, k) => (node as Record<string, unknown>)[k], c);
    if (typeof file !== 'string' || file === '') continue;
    const bad = (detail: string) => problems.push({ code: 'PW_E_CONFIG_INVALID', key, detail });
    if (CREDENTIALS_PREFIX.test(file)) {
      bad(
        `${file} is a systemd credential, but CREDENTIALS_DIRECTORY is not set: systemd sets it for the service from LoadCredential=. To check the file by hand, set CREDENTIALS_DIRECTORY to the folder holding ${path.basename(file)}.`,
      );
      continue;
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      bad(`cannot read ${file}: ${reason(err)}`);
      continue;
    }
    const name = keyPath.at(-1)!;
    if (/(password|token)File$/i.test(name) && text.trim() === '') bad(`${file} is empty`);
    if (/^(ca|cert|key)File$/.test(name) && !text.includes('-----BEGIN ')) bad(`${file} is not a PEM file (no "-----BEGIN" line)`);
  }
}

function checkHttp(c: Config, problems: Problem[]): void {
  if (c.http.enabled && !isLoopback(c.http.host) && !c.http.tokenFile) {
    problems.push({ code: 'PW_E_CONFIG_INVALID', key: 'http.tokenFile', detail: `required when http.host (${c.http.host}) is not a loopback address: name a file holding the token, or listen on 127.0.0.1` });
  }
}

// Folders the daemon creates or writes.

async function checkFolders(c: Config, problems: Problem[]): Promise<void> {
  const need = async (key: string, dir: string, why: string) => {
    const detail = await writableFolder(dir);
    if (detail) problems.push({ code: 'PW_E_CONFIG_INVALID', key, detail: `${detail} (${why})` });
  };
  await need('store.path', path.dirname(path.resolve(c.store.path)), 'the database and its journal are written there');
  if (c.ingest.onProcessed !== 'leave') await need('ingest.watchDir', c.ingest.watchDir, `processed images are ${c.ingest.onProcessed === 'archive' ? 'moved' : 'deleted'} from it`);
  else await readableFolder('ingest.watchDir', c.ingest.watchDir, problems);
  if (c.ingest.onProcessed === 'archive') await need('ingest.archiveDir', c.ingest.archiveDir, 'processed images are moved there');
  await need('ingest.quarantineDir', c.ingest.quarantineDir, 'rejected files are moved there');
  const base = c.classify.baseModelsDir;
  if (base && !(await isFolder(base))) {
    problems.push({ code: 'PW_E_CONFIG_INVALID', key: 'classify.baseModelsDir', detail: `${base} is not a folder` });
  }
  if (c.finetune.enabled) {
    await need('classify.modelsDir', c.classify.modelsDir, 'fine-tuning writes new member versions there; keep the shipped models in classify.baseModelsDir, or set finetune.enabled: false');
    await need('classify.ensemble', path.dirname(path.resolve(c.classify.ensemble)), 'promotion replaces the ensemble file there');
  } else if (base && path.resolve(base) !== path.resolve(c.classify.modelsDir)) {
    await need('classify.modelsDir', c.classify.modelsDir, 'the shipped member versions of classify.baseModelsDir are linked in there at start');
  }
}

/** Undefined when `dir` exists as a writable folder, or could be created; else what is wrong. */
async function writableFolder(dir: string): Promise<string | undefined> {
  let existing = path.resolve(dir);
  for (;;) {
    const s = await stat(existing).catch(() => null);
    if (s) {
      if (!s.isDirectory()) return `${existing} is not a folder`;
      break;
    }
    const parent = path.dirname(existing);
    if (parent === existing) return `${dir} cannot be created`;
    existing = parent;
  }
  try {
    await access(existing, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    const what = existing === path.resolve(dir) ? existing : `${path.resolve(dir)} cannot be created: ${existing}`;
    return `${what} is not writable by this user (uid ${process.getuid?.() ?? '?'}): ${reason(err)}`;
  }
}

async function readableFolder(key: string, dir: string, problems: Problem[]): Promise<void> {
  if (!(await isFolder(dir))) {
    const detail = await writableFolder(dir);
    if (detail) problems.push({ code: 'PW_E_CONFIG_INVALID', key, detail: `${detail} (the daemon creates it)` });
    return;
  }
  await access(dir, constants.R_OK | constants.X_OK).catch((err: unknown) => problems.push({ code: 'PW_E_CONFIG_INVALID', key, detail: `${dir} cannot be read: ${reason(err)}` }));
}

async function isFolder(dir: string): Promise<boolean> {
  return stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

// The ensemble: found, files opened, parsed and checksummed, weights of the size model.json says.

async function checkModels(c: Config, options: PreflightOptions, problems: Problem[]): Promise<void> {
  const model = (key: string, detail: string, code: ErrorCode = 'PW_E_MODEL_LOAD') => problems.push({ code, key, detail });
  try {
    backendCandidates(c.classify.backend);
  } catch (err) {
    model('classify.backend', detailOf(err), 'PW_E_BACKEND');
  }
  const base = c.classify.baseModelsDir && path.resolve(c.classify.baseModelsDir) !== path.resolve(c.classify.modelsDir) ? c.classify.baseModelsDir : '';
  const folders = base ? [c.classify.modelsDir, base] : [c.classify.modelsDir];
  // At start, a missing ensemble file is copied from the shipped models (ModelRegistry.prepare).
  const shipped = base ? path.join(base, 'ensemble.json') : '';
  const file = (await exists(c.classify.ensemble)) || !shipped || !(await exists(shipped)) ? c.classify.ensemble : shipped;
  let ensemble: EnsembleFile;
  try {
    ensemble = await readEnsembleFile(file);
  } catch (err) {
    model('classify.ensemble', detailOf(err) + (base ? ` (nor is there an ensemble.json in classify.baseModelsDir ${base})` : ''));
    return;
  }
  const members = Array.isArray(ensemble.members) ? ensemble.members : [];
  const notIn = base ? `is in neither classify.modelsDir (${c.classify.modelsDir}) nor classify.baseModelsDir (${base})` : `is not in classify.modelsDir (${c.classify.modelsDir})`;
  let missing = false;
  for (const m of members) {
    if (typeof m?.name !== 'string' || typeof m.version !== 'string') continue;
    if (await anyExists(folders.map((f) => path.join(f, m.name, m.version)))) continue;
    missing = true;
    model('classify.modelsDir', `member ${m.name}/${m.version}, named in ${file}, ${notIn}`);
  }
  if (missing) return;
  let loaded: LoadedEnsemble;
  try {
    loaded = await loadEnsemble(ensemble, folders, c.camera);
  } catch (err) {
    const detail = detailOf(err);
    model(detail.startsWith('Member ') ? 'classify.modelsDir' : 'classify.ensemble', `${detail}${detail.includes(file) ? '' : ` (ensemble file ${file})`}`);
    return;
  }
  for (const m of loaded.members) {
    const detail = await weightsSizeProblem(m.dir);
    if (detail) model('classify.modelsDir', `Member ${m.name}/${m.version}: ${detail}`);
  }
  if (problems.length === 0 && options.loadModels) await buildNetworks(c, loaded, problems);
}

interface ModelJson {
  weightsManifest?: { paths: string[]; weights: { name: string; shape: number[]; dtype?: string; quantization?: unknown }[] }[];
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, complex64: 8 };

/** Weight files shorter or longer than model.json describes: truncated, or another model's. */
async function weightsSizeProblem(dir: string): Promise<string | undefined> {
  const modelFile = path.join(dir, 'model.json');
  const model = JSON.parse(await readFile(modelFile, 'utf8')) as ModelJson;
  let expected = 0;
  let actual = 0;
  for (const group of model.weightsManifest ?? []) {
    for (const w of group.weights) {
      const bytes = DTYPE_BYTES[w.dtype ?? 'float32'];
      if (bytes === undefined || w.quantization !== undefined || !Array.isArray(w.shape)) return undefined;
      expected += w.shape.reduce((a, b) => a * b, 1) * bytes;
    }
    for (const p of group.paths) actual += (await stat(path.join(dir, p))).size;
  }
  if (expected === actual) return undefined;
  return `the weights files hold ${actual} bytes but ${modelFile} describes ${expected} bytes (truncated, or from another model)`;
}

/** Build each member on the configured backend and run it once, as the classifier's runners do at start. */
async function buildNetworks(c: Config, loaded: LoadedEnsemble, problems: Problem[]): Promise<void> {
  const runner = new LocalRunner(0);
  try {
    await runner.init(backendCandidates(c.classify.backend), { providers: c.classify.onnxProviders, threads: c.classify.onnxThreads });
  } catch (err) {
    problems.push({ code: 'PW_E_BACKEND', key: 'classify.backend', detail: detailOf(err) });
    return;
  }
  try {
    for (const [i, m] of loaded.members.entries()) {
      const gen = i + 1;
      try {
        await runner.load({
          gen,
          members: [{ id: `${m.name}/${m.version}`, dir: m.dir, inputSize: m.meta.input.size, inputKey: m.inputKey, numClasses: m.meta.classes.length, tta: m.tta, fill: preparedBackground(m.meta.preprocessing), onnxSha256: m.meta.checksums?.[ONNX_FILE] ?? null }],
        });
      } catch (err) {
        problems.push({ code: 'PW_E_MODEL_LOAD', key: 'classify.modelsDir', detail: `Member ${m.name}/${m.version} (${m.dir}) cannot be built: ${detailOf(err)}` });
      } finally {
        await runner.unload(gen);
      }
    }
  } finally {
    await runner.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function anyExists(files: string[]): Promise<boolean> {
  for (const f of files) if (await exists(f)) return true;
  return false;
}

function detailOf(err: unknown): string {
  if (isPlankwatchError(err)) return err.detail;
  return err instanceof Error ? err.message : String(err);
}

function reason(err: unknown): string {
  switch ((err as NodeJS.ErrnoException)?.code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a folder, not a file';
    case 'EROFS':
      return 'read-only file system';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}
