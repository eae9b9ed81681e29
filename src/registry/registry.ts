// The model registry on disk: models/<member>/<version>/ folders (model.json, weights, meta.json
// with checksums and parent version), the active ensemble file (models/ensemble.json), every
// ensemble ever made active under models/ensembles/<version>.json, candidates that fine-tuning
// made under models/candidates/<version>.json, and a promotion history (models/ensembles/history.jsonl).
//
// The folder is the writable store (under the state directory on a vessel). The member versions
// shipped with plankwatch may live in a read-only base folder beside it: prepare() links each one
// the store lacks into it, so every reader finds every member under the store, and new versions,
// candidates and promotions are written to the store alone.
//
// Promotion is one atomic pointer swap: the new ensemble file is written under a temporary name,
// fsynced, renamed over ensemble.json, and the folder fsynced. A crash at any point leaves either
// the old or the new file, never a mix; a reader polling the file sees one or the other.
import { existsSync } from 'node:fs';
import { appendFile, copyFile, lstat, mkdir, open, readFile, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { EnsembleFile, MemberMeta } from '../classify/meta.js';
import { loadEnsemble } from '../classify/ensemble-loader.js';
import { readMeta } from '../classify/model-files.js';
import { PlankwatchError } from '../errors.js';
import { evaluationSetOf, finetuneGateOf, type EvaluationSet } from './evaluation-set.js';

export interface RegistryOptions {
  /** Folder holding <member>/<version>/ (classify.modelsDir). */
  modelsDir: string;
  /** The active ensemble file (classify.ensemble). */
  ensembleFile: string;
  /** Read-only shipped models, <member>/<version>/ and ensemble.json (classify.baseModelsDir); empty or absent: none. */
  baseModelsDir?: string;
}

/** What prepare() did. */
export interface PreparedStore {
  /** Shipped member versions newly linked into the store, as <member>/<version>. */
  linked: string[];
  /** The shipped ensemble's version when the store had no active ensemble and got a copy of it. */
  seeded: string | null;
}

export interface MemberVersion {
  name: string;
  version: string;
  parent: string | null;
  createdAt: string;
  classes: number;
  architecture: string;
  metrics: MemberMeta['metrics'];
  /** The images the metrics were measured on (null: no figures). */
  evaluation: EvaluationSet | null;
  /** A fine-tuned version: the gate's verdict on it (null otherwise). */
  finetuneGate: ReturnType<typeof finetuneGateOf>;
  /** Named by the active ensemble. */
  active: boolean;
}

export interface EnsembleVersion {
  version: string;
  /** promoted: was active once (models/ensembles/); candidate: made by fine-tuning, never promoted. */
  kind: 'promoted' | 'candidate';
  file: string;
  members: string[];
  active: boolean;
}

export interface HistoryEntry {
  version: string;
  /** What made it active. */
  action: 'promote' | 'rollback' | 'finetune';
  at: string;
  previous: string | null;
  reason?: string;
}

export interface RegistryListing {
  active: EnsembleFile | null;
  ensembles: EnsembleVersion[];
  members: MemberVersion[];
  history: HistoryEntry[];
}

const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export class ModelRegistry {
  readonly modelsDir: string;
  readonly ensembleFile: string;
  readonly baseModelsDir: string;

  constructor(options: RegistryOptions) {
    this.modelsDir = options.modelsDir;
    this.ensembleFile = options.ensembleFile;
    this.baseModelsDir = options.baseModelsDir ?? '';
  }

  /** Where member versions are looked for: the store, then the shipped base. */
  get searchPath(): string[] {
    return this.baseModelsDir && path.resolve(this.baseModelsDir) !== path.resolve(this.modelsDir) ? [this.modelsDir, this.baseModelsDir] : [this.modelsDir];
  }

  /**
   * Make the store usable on its own (the daemon calls this at start): create it, link every
   * shipped member version it lacks (a version of the same name in the store wins), drop links
   * whose shipped version is gone, and when there is no active ensemble, start from a copy of the
   * shipped ensemble.json. Never writes into the base.
   */
  async prepare(): Promise<PreparedStore> {
    await mkdir(this.modelsDir, { recursive: true });
    const done: PreparedStore = { linked: [], seeded: null };
    const base = this.searchPath[1];
    if (!base) return done;
    for (const name of await dirs(this.modelsDir)) {
      for (const version of await entries(path.join(this.modelsDir, name))) {
        const link = path.join(this.modelsDir, name, version);
        const target = await readlink(link).catch(() => null);
        if (target !== null && path.resolve(path.dirname(link), target).startsWith(path.resolve(base) + path.sep) && !existsSync(link)) await rm(link);
      }
    }
    for (const name of await dirs(base)) {
      if (RESERVED.has(name)) continue;
      for (const version of await dirs(path.join(base, name))) {
        const shipped = path.resolve(base, name, version);
        if (!existsSync(path.join(shipped, 'meta.json'))) continue;
        const link = path.join(this.modelsDir, name, version);
        if (await lstat(link).then(() => true, () => false)) continue;
        await mkdir(path.dirname(link), { recursive: true });
        await symlink(shipped, link, 'dir');
        done.linked.push(`${name}/${version}`);
      }
    }
    const shippedEnsemble = path.join(base, 'ensemble.json');
    if (!existsSync(this.ensembleFile) && existsSync(shippedEnsemble)) {
      const tmp = `${this.ensembleFile}.${process.pid}.seed.tmp`;
      await mkdir(path.dirname(this.ensembleFile), { recursive: true });
      await copyFile(shippedEnsemble, tmp);
      await rename(tmp, this.ensembleFile);
      done.seeded = (await readJson<EnsembleFile>(this.ensembleFile).catch(() => null))?.version ?? null;
    }
    return done;
  }

  get ensemblesDir(): string {
    return path.join(this.modelsDir, 'ensembles');
  }

  get candidatesDir(): string {
    return path.join(this.modelsDir, 'candidates');
  }

  /** The active ensemble, or null when ensemble.json is missing. */
  async active(): Promise<EnsembleFile | null> {
    try {
      return JSON.parse(await readFile(this.ensembleFile, 'utf8')) as EnsembleFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new PlankwatchError('PW_E_MODEL_LOAD', `Cannot read ${this.ensembleFile}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Every member version folder, every known ensemble, and the promotion history. */
  async list(): Promise<RegistryListing> {
    const active = await this.active();
    const activeMembers = new Set(active?.members.map((m) => `${m.name}/${m.version}`) ?? []);
    const members: MemberVersion[] = [];
    const listed = new Set<string>();
    // The store first, then shipped versions it has not linked yet (prepare() runs at daemon start).
    for (const folder of this.searchPath) {
      for (const name of await dirs(folder)) {
        if (RESERVED.has(name)) continue;
        for (const version of await dirs(path.join(folder, name))) {
          const dir = path.join(folder, name, version);
          if (listed.has(`${name}/${version}`) || !existsSync(path.join(dir, 'meta.json'))) continue;
          const meta = await readMeta(dir).catch(() => null);
          if (!meta) continue;
          listed.add(`${name}/${version}`);
          members.push({
            name,
            version,
            parent: meta.parent ?? null,
            createdAt: meta.createdAt,
            classes: meta.classes.length,
            architecture: meta.architecture,
            metrics: meta.metrics,
            evaluation: evaluationSetOf(meta),
            finetuneGate: finetuneGateOf(meta),
            active: activeMembers.has(`${name}/${version}`),
          });
        }
      }
    }
    members.sort((a, b) => (a.name === b.name ? a.createdAt.localeCompare(b.createdAt) : a.name.localeCompare(b.name)));
    const ensembles: EnsembleVersion[] = [];
    const seen = new Set<string>();
    for (const [kind, dir] of [
      ['promoted', this.ensemblesDir],
      ['candidate', this.candidatesDir],
    ] as const) {
      for (const name of await files(dir, '.json')) {
        const file = path.join(dir, name);
        const e = await readJson<EnsembleFile>(file).catch(() => null);
        if (!e || seen.has(e.version)) continue;
        seen.add(e.version);
        ensembles.push({ version: e.version, kind, file, members: e.members.map((m) => `${m.name}/${m.version}`), active: e.version === active?.version });
      }
    }
    if (active && !seen.has(active.version)) {
      ensembles.push({ version: active.version, kind: 'promoted', file: this.ensembleFile, members: active.members.map((m) => `${m.name}/${m.version}`), active: true });
    }
    return { active, ensembles, members, history: await this.history() };
  }

  /** Promotions and rollbacks, oldest first. */
  async history(): Promise<HistoryEntry[]> {
    const file = path.join(this.ensemblesDir, 'history.jsonl');
    if (!existsSync(file)) return [];
    return (await readFile(file, 'utf8'))
      .split('\n')
      .filter((l) => l.trim() !== '')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as HistoryEntry];
        } catch {
          return [];
        }
      });
  }

  /** Store a candidate ensemble (made by fine-tuning) without making it active. */
  async saveCandidate(ensemble: EnsembleFile): Promise<string> {
    checkVersion(ensemble.version);
    const file = path.join(this.candidatesDir, `${ensemble.version}.json`);
    await durableWrite(file, JSON.stringify(ensemble, null, 2) + '\n');
    return file;
  }

  /** An ensemble by version: a promoted one, else a candidate. Throws PW_E_MODEL_NOT_FOUND. */
  async find(version: string): Promise<EnsembleFile> {
    checkVersion(version);
    for (const dir of [this.ensemblesDir, this.candidatesDir]) {
      const file = path.join(dir, `${version}.json`);
      if (existsSync(file)) return readJson<EnsembleFile>(file);
    }
    const active = await this.active();
    if (active?.version === version) return active;
    const known = (await this.list()).ensembles.map((e) => e.version);
    throw new PlankwatchError('PW_E_MODEL_NOT_FOUND', `No ensemble version "${version}" in ${this.modelsDir} (known: ${known.join(', ') || 'none'}).`);
  }

  /**
   * Make `target` (a version name or an ensemble) the active ensemble: every member folder is
   * checked first (files and checksums, as the classifier loads them), the current ensemble is
   * archived under ensembles/, then ensemble.json is replaced atomically. Throws
   * PW_E_MODEL_PROMOTE when a member does not verify (the active ensemble stays).
   */
  async promote(target: string | EnsembleFile, action: HistoryEntry['action'] = 'promote', reason?: string): Promise<EnsembleFile> {
    const ensemble = typeof target === 'string' ? await this.find(target) : target;
    checkVersion(ensemble.version);
    try {
      await loadEnsemble(ensemble, this.searchPath);
    } catch (err) {
      throw new PlankwatchError('PW_E_MODEL_PROMOTE', `Ensemble ${ensemble.version} does not verify: ${(err as Error).message}`, { cause: err });
    }
    const current = await this.active().catch(() => null);
    await mkdir(this.ensemblesDir, { recursive: true });
    if (current) {
      const keep = path.join(this.ensemblesDir, `${current.version}.json`);
      if (!existsSync(keep) && VERSION_PATTERN.test(current.version)) await durableWrite(keep, JSON.stringify(current, null, 2) + '\n');
    }
    const text = JSON.stringify(ensemble, null, 2) + '\n';
    await durableWrite(path.join(this.ensemblesDir, `${ensemble.version}.json`), text);
    await durableWrite(this.ensembleFile, text);
    const entry: HistoryEntry = { version: ensemble.version, action, at: new Date().toISOString(), previous: current?.version ?? null, ...(reason ? { reason } : {}) };
    await appendFile(path.join(this.ensemblesDir, 'history.jsonl'), JSON.stringify(entry) + '\n');
    return ensemble;
  }

  /**
   * Make the ensemble that was active before the current one active again. Walks the history
   * back, so repeated rollbacks go further back. Throws PW_E_MODEL_NOT_FOUND when there is none.
   */
  async rollback(): Promise<EnsembleFile> {
    const current = await this.active();
    const history = await this.history();
    const target = previousVersion(history, current?.version ?? null);
    if (!target) throw new PlankwatchError('PW_E_MODEL_NOT_FOUND', `No ensemble to roll back to from ${current?.version ?? '(none)'}: the promotion history holds none before it.`);
    return this.promote(target, 'rollback', `rollback from ${current?.version ?? '(none)'}`);
  }
}

/**
 * The version active before `current`: what `current` replaced when it was last promoted (not
 * brought back by a rollback). Rolling back from B (promoted over A) gives A; from A again (which
 * came back by that rollback, and had earlier been promoted over Z) gives Z.
 */
export function previousVersion(history: HistoryEntry[], current: string | null): string | null {
  if (!current) return null;
  for (let i = history.length - 1; i >= 0; i--) {
    const e = history[i]!;
    if (e.version === current && e.action !== 'rollback') return e.previous && e.previous !== current ? e.previous : null;
  }
  return null;
}

/** Folders under a models folder that are not members. */
const RESERVED = new Set(['ensembles', 'candidates', 'splits']);

function checkVersion(version: string): void {
  if (!VERSION_PATTERN.test(version)) {
    throw new PlankwatchError('PW_E_MODEL_NOT_FOUND', `"${version}" is not a valid ensemble version name (letters, digits, "_", ".", ":", "-").`);
  }
}

/** Write a file so that it exists whole or not at all: temp file, fsync, rename, fsync the folder. */
export async function durableWrite(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await dh.close();
  }
}

async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/** Sub-folders, links to folders included (shipped versions are linked into the store). */
async function dirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(path.join(dir, e.name)).then((s) => s.isDirectory(), () => false)))) out.push(e.name);
  }
  return out.sort();
}

/** Every name in a folder (dangling links included). */
async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

async function files(dir: string, ext: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith(ext) && !n.startsWith('.')).sort();
  } catch {
    return [];
  }
}

