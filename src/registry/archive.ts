// Member versions outside the repository: an archive (tar or tar.gz) of <member>/<version>/
// folders, with manifest.json first, listing every file and its SHA-256 (the checksums each
// version's meta.json records, plus the SHA-256 of meta.json itself).
//
// fetchArchive reads one from a file or an http(s) URL into a temporary folder inside the models
// folder, checks every file against the manifest and every version against its meta.json, and only
// then renames each version into place: nothing is installed from an archive that does not verify
// whole. The models folder (classify.modelsDir) is the writable store; shipped versions stay where
// they are.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { MemberMeta } from '../classify/meta.js';
import { PlankwatchError } from '../errors.js';
import { readTar, TarFormatError, writeTar, type TarEntry } from './tar.js';

/** The first entry of every archive. */
export const MANIFEST = 'manifest.json';
const FORMAT = 'plankwatch-models';

export interface ArchivedVersion {
  name: string;
  version: string;
  /** File name -> SHA-256 (hex), meta.json included. */
  files: Record<string, string>;
}

export interface ArchiveManifest {
  format: typeof FORMAT;
  formatVersion: 1;
  createdAt: string;
  versions: ArchivedVersion[];
}

export interface VersionRef {
  name: string;
  version: string;
}

export interface WriteArchiveOptions {
  /** Folders holding <member>/<version>/, looked in in order (the store, then the shipped base). */
  searchPath: string[];
  /** These versions; absent with `members` absent: every version found. */
  versions?: VersionRef[];
  /** Every version of these members. */
  members?: string[];
  /** The archive to write; gzipped when it ends in .gz or .tgz. */
  out: string;
}

export interface FetchOptions {
  /** A tar or tar.gz file, or an http(s) URL of one. */
  source: string;
  /** Where the versions go (classify.modelsDir). */
  modelsDir: string;
}

export interface FetchResult {
  manifest: ArchiveManifest;
  /** Versions renamed into the models folder, as <member>/<version>. */
  installed: string[];
  /** Versions the models folder already held with the same files. */
  present: string[];
}

export interface StoreCheck {
  verified: string[];
  /** Versions whose files are missing or differ from their meta.json checksums. */
  problems: { version: string; files: string[] }[];
}

/** A member, version or file name: one path segment, never "." or "..". */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$/;
const SHA256 = /^[0-9a-f]{64}$/;

const id = (v: VersionRef) => `${v.name}/${v.version}`;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function refused(detail: string, cause?: unknown): PlankwatchError {
  return new PlankwatchError('PW_E_MODEL_ARCHIVE', detail, cause === undefined ? undefined : { cause });
}

/** Write an archive of member versions; refuses (writing nothing) a version whose files do not match its meta.json. */
export async function writeArchive(options: WriteArchiveOptions): Promise<{ manifest: ArchiveManifest; bytes: number }> {
  const located = await selectVersions(options);
  if (located.length === 0) throw refused(`No member versions to archive under ${options.searchPath.join(', ')}.`);
  const versions: ArchivedVersion[] = [];
  for (const v of located) {
    const metaBytes = await readFile(path.join(v.dir, 'meta.json'));
    const meta = parseMeta(metaBytes, `${v.dir}/meta.json`);
    if (!meta.checksums || Object.keys(meta.checksums).length === 0) throw refused(`${v.dir}/meta.json records no checksums, so the version could not be verified after the transfer.`);
    versions.push({ name: v.name, version: v.version, files: { ...meta.checksums, 'meta.json': sha256(metaBytes) } });
  }
  const manifest: ArchiveManifest = { format: FORMAT, formatVersion: 1, createdAt: new Date().toISOString(), versions };
  async function* entries(): AsyncGenerator<TarEntry> {
    yield { name: MANIFEST, data: Buffer.from(JSON.stringify(manifest, null, 2) + '\n') };
    for (const [i, v] of versions.entries()) {
      for (const name of Object.keys(v.files).sort()) {
        const file = path.join(located[i]!.dir, name);
        const data = await readFile(file).catch((err: NodeJS.ErrnoException) => {
          throw refused(`${file} is listed in its meta.json checksums but cannot be read (${err.code ?? err.message}).`, err);
        });
        if (sha256(data) !== v.files[name]) throw refused(`${file} does not match the SHA-256 its meta.json records: the version is damaged; nothing was written.`);
        yield { name: `${id(v)}/${name}`, data, mtime: (await stat(file)).mtime };
      }
    }
  }
  await mkdir(path.dirname(path.resolve(options.out)), { recursive: true });
  await writeTar(options.out, entries());
  return { manifest, bytes: (await stat(options.out)).size };
}

/** The versions an archive is asked for, each in the first folder of the search path that has it. */
async function selectVersions(options: WriteArchiveOptions): Promise<(VersionRef & { dir: string })[]> {
  const out: (VersionRef & { dir: string })[] = [];
  const find = (v: VersionRef) => options.searchPath.map((folder) => path.join(folder, v.name, v.version)).find((dir) => existsSync(path.join(dir, 'meta.json')));
  if (options.versions && options.versions.length > 0) {
    for (const v of options.versions) {
      if (!SEGMENT.test(v.name) || !SEGMENT.test(v.version)) throw refused(`"${id(v)}" is not a member version name.`);
      const dir = find(v);
      if (!dir) throw refused(`No member version ${id(v)} (with a meta.json) under ${options.searchPath.join(', ')}.`);
      out.push({ ...v, dir });
    }
    return out;
  }
  const wanted = options.members && options.members.length > 0 ? new Set(options.members) : null;
  const seen = new Set<string>();
  for (const folder of options.searchPath) {
    for (const name of await subfolders(folder)) {
      if (wanted && !wanted.has(name)) continue;
      for (const version of await subfolders(path.join(folder, name))) {
        const dir = path.join(folder, name, version);
        if (seen.has(`${name}/${version}`) || !existsSync(path.join(dir, 'meta.json'))) continue;
        seen.add(`${name}/${version}`);
        out.push({ name, version, dir });
      }
    }
  }
  for (const member of wanted ?? []) {
    if (!out.some((v) => v.name === member)) throw refused(`No versions of member ${member} under ${options.searchPath.join(', ')}.`);
  }
  return out.sort((a, b) => id(a).localeCompare(id(b)));
}

/**
 * Read an archive through and check it whole: the manifest, every file's SHA-256 against it, and
 * every version's meta.json (its name, version and checksums) against the files. With `into`, the
 * files are written there as <member>/<version>/<file>. Throws PW_E_MODEL_ARCHIVE.
 */
export async function readArchive(source: string, into?: string): Promise<ArchiveManifest> {
  let manifest: ArchiveManifest | null = null;
  const expected = new Map<string, string>();
  const seen = new Set<string>();
  const metas = new Map<string, Buffer>();
  try {
    for await (const entry of readTar(await openSource(source))) {
      if (manifest === null) {
        if (entry.name !== MANIFEST) throw refused(`${source}: the first entry is ${entry.name}, not ${MANIFEST}: not an archive written by \`plankwatch models archive\`.`);
        manifest = parseManifest(entry.data, source);
        for (const v of manifest.versions) for (const [file, sum] of Object.entries(v.files)) expected.set(`${id(v)}/${file}`, sum);
        continue;
      }
      const sum = expected.get(entry.name);
      if (sum === undefined) throw refused(`${source}: ${entry.name} is not listed in its manifest.`);
      if (seen.has(entry.name)) throw refused(`${source}: ${entry.name} appears twice.`);
      seen.add(entry.name);
      if (sha256(entry.data) !== sum) throw refused(`${source}: ${entry.name} does not match the SHA-256 its manifest lists: the archive is damaged.`);
      if (entry.name.endsWith('/meta.json')) metas.set(entry.name.slice(0, -'/meta.json'.length), entry.data);
      if (into) {
        const file = path.join(into, ...entry.name.split('/'));
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, entry.data);
      }
    }
  } catch (err) {
    if (err instanceof PlankwatchError) throw err;
    if (err instanceof TarFormatError) throw refused(`${source}: ${err.message}`, err);
    throw refused(`${source} could not be read: ${(err as Error).message}`, err);
  }
  if (manifest === null) throw refused(`${source} is empty: no ${MANIFEST}.`);
  const missing = [...expected.keys()].filter((name) => !seen.has(name));
  if (missing.length > 0) throw refused(`${source}: ${missing.join(', ')} listed in the manifest but not in the archive.`);
  for (const v of manifest.versions) {
    const meta = parseMeta(metas.get(id(v))!, `${source}: ${id(v)}/meta.json`);
    if (meta.name !== v.name || meta.version !== v.version) throw refused(`${source}: ${id(v)}/meta.json describes ${meta.name}/${meta.version}.`);
    const files = Object.keys(v.files).filter((f) => f !== 'meta.json').sort();
    const recorded = Object.keys(meta.checksums ?? {}).sort();
    if (files.join('\n') !== recorded.join('\n')) throw refused(`${source}: ${id(v)}: the manifest lists ${files.join(', ')}, its meta.json checksums ${recorded.join(', ') || 'nothing'}.`);
    for (const file of files) {
      if (meta.checksums![file] !== v.files[file]) throw refused(`${source}: ${id(v)}/${file} differs from the SHA-256 its meta.json records: the archive was altered.`);
    }
  }
  return manifest;
}

/** Check an archive (file or URL) without installing anything. */
export function verifyArchive(source: string): Promise<ArchiveManifest> {
  return readArchive(source);
}

/**
 * Install an archive's versions into the models folder: extracted into a temporary folder inside
 * it, verified whole, then each version renamed into place. A version already there with the
 * same files is left; one there with other files refuses the whole archive.
 */
export async function fetchArchive(options: FetchOptions): Promise<FetchResult> {
  const { modelsDir } = options;
  await mkdir(modelsDir, { recursive: true });
  const tmp = await mkdtemp(path.join(modelsDir, '.fetch-'));
  try {
    const manifest = await readArchive(options.source, tmp);
    const installed: string[] = [];
    const present: string[] = [];
    for (const v of manifest.versions) {
      const target = path.join(modelsDir, v.name, v.version);
      if (!(await lstat(target).then(() => true, () => false))) continue;
      const same = await sameFiles(target, v);
      if (!same) throw refused(`${target} already exists with other files than ${options.source} holds for ${id(v)}; nothing was installed. Remove or rename that folder (or check it with \`plankwatch models verify\`) and fetch again.`);
      present.push(id(v));
    }
    const moved: { from: string; to: string }[] = [];
    try {
      for (const v of manifest.versions) {
        if (present.includes(id(v))) continue;
        const to = path.join(modelsDir, v.name, v.version);
        await mkdir(path.dirname(to), { recursive: true });
        const from = path.join(tmp, v.name, v.version);
        await rename(from, to);
        moved.push({ from, to });
        installed.push(id(v));
      }
    } catch (err) {
      for (const m of moved.reverse()) await rename(m.to, m.from).catch(() => undefined);
      throw refused(`Could not move the versions into ${modelsDir} (${(err as Error).message}); nothing was installed.`, err);
    }
    for (const v of new Set(manifest.versions.filter((x) => installed.includes(id(x))).map((x) => x.name))) await syncDir(path.join(modelsDir, v));
    await syncDir(modelsDir);
    return { manifest, installed, present };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Every member version under the folders (the first one of each name wins), checked against its meta.json. */
export async function verifyStore(searchPath: string[]): Promise<StoreCheck> {
  const check: StoreCheck = { verified: [], problems: [] };
  const seen = new Set<string>();
  for (const folder of searchPath) {
    for (const name of await subfolders(folder)) {
      for (const version of await subfolders(path.join(folder, name))) {
        const dir = path.join(folder, name, version);
        if (seen.has(`${name}/${version}`) || !existsSync(path.join(dir, 'meta.json'))) continue;
        seen.add(`${name}/${version}`);
        let meta: MemberMeta;
        try {
          meta = parseMeta(await readFile(path.join(dir, 'meta.json')), `${dir}/meta.json`);
        } catch {
          check.problems.push({ version: `${name}/${version}`, files: ['meta.json'] });
          continue;
        }
        const bad: string[] = [];
        if (!meta.checksums || Object.keys(meta.checksums).length === 0) bad.push('meta.json (no checksums)');
        for (const [file, sum] of Object.entries(meta.checksums ?? {})) {
          const data = await readFile(path.join(dir, file)).catch(() => null);
          if (data === null || sha256(data) !== sum) bad.push(file);
        }
        if (bad.length > 0) check.problems.push({ version: `${name}/${version}`, files: bad.sort() });
        else check.verified.push(`${name}/${version}`);
      }
    }
  }
  check.verified.sort();
  return check;
}

/** The archive's bytes: a local file, or the body of an http(s) GET. */
async function openSource(source: string): Promise<AsyncIterable<Buffer>> {
  if (/^https?:\/\//i.test(source)) {
    let res: Response;
    try {
      res = await fetch(source);
    } catch (err) {
      throw refused(`${source} could not be downloaded: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}.`, err);
    }
    if (!res.ok || !res.body) throw refused(`${source} answered HTTP ${res.status} ${res.statusText}.`);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>) as AsyncIterable<Buffer>;
  }
  const info = await stat(source).catch(() => null);
  if (!info?.isFile()) throw refused(`${source} is not a file (give a .tar or .tar.gz file, or an http(s) URL).`);
  return createReadStream(source);
}

function parseManifest(data: Buffer, source: string): ArchiveManifest {
  let m: ArchiveManifest;
  try {
    m = JSON.parse(data.toString('utf8')) as ArchiveManifest;
  } catch (err) {
    throw refused(`${source}: ${MANIFEST} is not JSON.`, err);
  }
  if (m?.format !== FORMAT || m.formatVersion !== 1 || !Array.isArray(m.versions)) throw refused(`${source}: ${MANIFEST} is not a plankwatch model archive manifest (format 1).`);
  const ids = new Set<string>();
  for (const v of m.versions) {
    for (const part of [v?.name, v?.version]) {
      if (typeof part !== 'string' || !SEGMENT.test(part)) throw refused(`${source}: the manifest names a version "${String(part)}", not a valid folder name.`);
    }
    if (ids.has(id(v))) throw refused(`${source}: the manifest lists ${id(v)} twice.`);
    ids.add(id(v));
    if (typeof v.files !== 'object' || v.files === null || typeof v.files['meta.json'] !== 'string') throw refused(`${source}: the manifest lists no meta.json for ${id(v)}.`);
    for (const [file, sum] of Object.entries(v.files)) {
      if (!SEGMENT.test(file) || typeof sum !== 'string' || !SHA256.test(sum)) throw refused(`${source}: the manifest entry ${id(v)}/${file} is not a file name with a SHA-256.`);
    }
  }
  return m;
}

function parseMeta(data: Buffer, where: string): MemberMeta {
  let meta: MemberMeta;
  try {
    meta = JSON.parse(data.toString('utf8')) as MemberMeta;
  } catch (err) {
    throw refused(`${where} is not a member version's meta.json (${(err as Error).message}).`, err);
  }
  if (typeof meta?.name !== 'string' || typeof meta.version !== 'string') throw refused(`${where} is not a member version's meta.json (no name or version).`);
  return meta;
}

/** Does the folder hold exactly the files the archive lists for `v`, byte for byte? */
async function sameFiles(dir: string, v: ArchivedVersion): Promise<boolean> {
  for (const [file, sum] of Object.entries(v.files)) {
    const data = await readFile(path.join(dir, file)).catch(() => null);
    if (data === null || sha256(data) !== sum) return false;
  }
  return true;
}

/** Sub-folders (links to folders included), dot-names left out. */
async function subfolders(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(path.join(dir, e.name)).then((s) => s.isDirectory(), () => false)))) out.push(e.name);
  }
  return out.sort();
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => null);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a folder; the rename is still atomic.
  } finally {
    await handle.close();
  }
}
