// Member versions that are not shipped travel as an archive: `writeArchive` packs member versions
// with a manifest (the SHA-256 of every file, as their meta.json records them), `fetchArchive`
// installs them into a models folder only when every file matches both, and `verifyArchive` /
// `verifyStore` check without installing. Real parts: the files of a shipped member copied from
// models/, real tar files on disk, a real HTTP server (node:http) for a fetch from a URL.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMeta } from '../../src/classify/model-files.js';
import { PlankwatchError } from '../../src/errors.js';
import { fetchArchive, MANIFEST, verifyArchive, verifyStore, writeArchive, type ArchiveManifest } from '../../src/registry/archive.js';
import { ModelRegistry } from '../../src/registry/registry.js';
import { readTar, writeTar, type TarEntry } from '../../src/registry/tar.js';
import { REPO_ROOT } from '../helpers/daemon.js';

const SHIPPED = path.join(REPO_ROOT, 'models');
/** The smallest member of the shipped ensemble. */
const MEMBER = { name: 'p4-fit48', version: 'v1' };
const ID = `${MEMBER.name}/${MEMBER.version}`;

let work = '';
let tarGz = '';
let tarPlain = '';
beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'pw-archive-'));
  tarGz = path.join(work, 'versions.tar.gz');
  tarPlain = path.join(work, 'versions.tar');
  await writeArchive({ searchPath: [SHIPPED], versions: [MEMBER], out: tarGz });
  await writeArchive({ searchPath: [SHIPPED], versions: [MEMBER], out: tarPlain });
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const emptyStore = () => mkdtempSync(path.join(work, 'store-'));

/** Every entry of a tar file, in order. */
async function entriesOf(file: string): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  for await (const e of readTar(createReadStream(file))) out.push(e);
  return out;
}

async function refusal(p: Promise<unknown>): Promise<PlankwatchError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PlankwatchError);
  expect((err as PlankwatchError).code).toBe('PW_E_MODEL_ARCHIVE');
  return err as PlankwatchError;
}

/** Nothing of the member in the store, and no temporary folder left behind. */
function expectNothingInstalled(store: string): void {
  expect(readdirSync(store)).toEqual([]);
}

describe('model archive', () => {
  it('writes a tar.gz whose manifest lists every file with the SHA-256 its meta.json records', async () => {
    expect(readFileSync(tarGz).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const entries = await entriesOf(tarGz);
    expect(entries[0]!.name).toBe(MANIFEST);
    const manifest = JSON.parse(entries[0]!.data.toString('utf8')) as ArchiveManifest;
    expect(manifest.versions.map((v) => `${v.name}/${v.version}`)).toEqual([ID]);
    const meta = await readMeta(path.join(SHIPPED, ID));
    const files = manifest.versions[0]!.files;
    expect(Object.keys(files).sort()).toEqual(['meta.json', ...Object.keys(meta.checksums!)].sort());
    for (const [name, sum] of Object.entries(meta.checksums!)) expect(files[name]).toBe(sum);
    expect(files['meta.json']).toBe(sha256(readFileSync(path.join(SHIPPED, ID, 'meta.json'))));
    expect(entries.slice(1).map((e) => e.name).sort()).toEqual(Object.keys(files).map((f) => `${ID}/${f}`).sort());
    // The plain tar is a ustar file holding the same files, uncompressed.
    expect(readFileSync(tarPlain).subarray(257, 262).toString('latin1')).toBe('ustar');
    expect(gunzipSync(readFileSync(tarGz)).length).toBe(readFileSync(tarPlain).length);
    const plain = (await entriesOf(tarPlain)).slice(1);
    expect(plain.map((e) => e.name)).toEqual(entries.slice(1).map((e) => e.name));
    for (const [i, e] of plain.entries()) expect(e.data.equals(entries[i + 1]!.data), e.name).toBe(true);
  });

  it('fetch installs the versions byte for byte into an empty store, and a second fetch changes nothing', async () => {
    const store = emptyStore();
    const result = await fetchArchive({ source: tarGz, modelsDir: store });
    expect(result.installed).toEqual([ID]);
    expect(result.present).toEqual([]);
    for (const name of readdirSync(path.join(SHIPPED, ID))) {
      expect(readFileSync(path.join(store, ID, name)).equals(readFileSync(path.join(SHIPPED, ID, name))), name).toBe(true);
    }
    expect(readdirSync(store)).toEqual([MEMBER.name]);
    const listing = await new ModelRegistry({ modelsDir: store, ensembleFile: path.join(store, 'ensemble.json') }).list();
    expect(listing.members.map((m) => `${m.name}/${m.version}`)).toEqual([ID]);
    expect(await verifyStore([store])).toEqual({ verified: [ID], problems: [] });

    const again = await fetchArchive({ source: tarPlain, modelsDir: store });
    expect(again).toMatchObject({ installed: [], present: [ID] });
    expect(readdirSync(store)).toEqual([MEMBER.name]);
  });

  it('verify reads an archive through, installing nothing', async () => {
    const manifest = await verifyArchive(tarGz);
    expect(manifest.versions.map((v) => `${v.name}/${v.version}`)).toEqual([ID]);
  });

  it('refuses an archive with one byte changed, and installs nothing', async () => {
    const bytes = readFileSync(tarPlain);
    const header = bytes.indexOf(Buffer.from(`${ID}/weights.bin\0`));
    expect(header % 512).toBe(0);
    bytes[header + 512 + 1000] ^= 0xff;
    const bad = path.join(work, 'flipped.tar');
    writeFileSync(bad, bytes);
    const store = emptyStore();
    const err = await refusal(fetchArchive({ source: bad, modelsDir: store }));
    expect(err.message).toContain(`${ID}/weights.bin`);
    expect(err.message).toContain('SHA-256');
    expectNothingInstalled(store);
    await refusal(verifyArchive(bad));
  });

  it('refuses an archive whose manifest was changed with the file but not meta.json', async () => {
    const entries = await entriesOf(tarPlain);
    const manifest = JSON.parse(entries[0]!.data.toString('utf8')) as ArchiveManifest;
    const weights = entries.find((e) => e.name === `${ID}/weights.bin`)!;
    weights.data = Buffer.from(weights.data);
    weights.data[2000] ^= 0xff;
    manifest.versions[0]!.files['weights.bin'] = sha256(weights.data);
    entries[0]!.data = Buffer.from(JSON.stringify(manifest));
    const bad = path.join(work, 'relisted.tar');
    await writeTar(bad, entries);
    const store = emptyStore();
    const err = await refusal(fetchArchive({ source: bad, modelsDir: store }));
    expect(err.message).toContain('meta.json');
    expect(err.message).toContain('weights.bin');
    expectNothingInstalled(store);
  });

  it('refuses a truncated archive, a file the manifest does not list, and a name outside the member folders', async () => {
    const whole = readFileSync(tarGz);
    const cut = path.join(work, 'cut.tar.gz');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const store = emptyStore();
    await refusal(fetchArchive({ source: cut, modelsDir: store }));
    expectNothingInstalled(store);

    const entries = await entriesOf(tarPlain);
    const extra = path.join(work, 'extra.tar');
    await writeTar(extra, [...entries, { name: `${ID}/notes.txt`, data: Buffer.from('hello') }]);
    expect((await refusal(fetchArchive({ source: extra, modelsDir: store }))).message).toContain(`${ID}/notes.txt`);
    expectNothingInstalled(store);

    const manifest = JSON.parse(entries[0]!.data.toString('utf8')) as ArchiveManifest;
    const escaping = { ...manifest, versions: [{ ...manifest.versions[0]!, name: '..' }] };
    const outside = path.join(work, 'outside.tar');
    await writeTar(outside, [{ name: MANIFEST, data: Buffer.from(JSON.stringify(escaping)) }, ...entries.slice(1).map((e) => ({ ...e, name: e.name.replace(MEMBER.name, '..') }))]);
    expect((await refusal(fetchArchive({ source: outside, modelsDir: store }))).message).toContain('".."');
    expectNothingInstalled(store);
    expect(existsSync(path.join(work, MEMBER.version))).toBe(false);
  });

  it('refuses a version the store holds with other files, installing none of the archive', async () => {
    const store = emptyStore();
    await fetchArchive({ source: tarGz, modelsDir: store });
    const weights = path.join(store, ID, 'weights.bin');
    writeFileSync(weights, Buffer.concat([readFileSync(weights), Buffer.from([1])]));
    const err = await refusal(fetchArchive({ source: tarGz, modelsDir: store }));
    expect(err.message).toContain(path.join(store, ID));
    const check = await verifyStore([store]);
    expect(check.verified).toEqual([]);
    expect(check.problems).toEqual([{ version: ID, files: ['weights.bin'] }]);
  });

  it('archive refuses a version whose files do not match its meta.json, writing nothing', async () => {
    const copy = emptyStore();
    await fetchArchive({ source: tarGz, modelsDir: copy });
    writeFileSync(path.join(copy, ID, 'model.onnx'), 'not a model');
    const out = path.join(work, 'never.tar');
    const err = await refusal(writeArchive({ searchPath: [copy], versions: [MEMBER], out }));
    expect(err.message).toContain('model.onnx');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes('never'))).toEqual([]);
    await refusal(writeArchive({ searchPath: [copy], versions: [{ name: MEMBER.name, version: 'v99' }], out }));
  });
});

describe('model archive over HTTP', () => {
  let server: Server;
  let base = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/versions.tar.gz') {
        res.writeHead(200, { 'content-type': 'application/gzip' }).end(readFileSync(tarGz));
      } else if (req.url === '/cut.tar.gz') {
        // A download cut short: the length promised, half the bytes sent, then the connection closed.
        const whole = readFileSync(tarGz);
        res.writeHead(200, { 'content-length': String(whole.length) });
        res.write(whole.subarray(0, whole.length >> 1), () => res.destroy());
      } else {
        res.writeHead(404).end('no such file');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fetches from a URL into the store', async () => {
    const store = emptyStore();
    const result = await fetchArchive({ source: `${base}/versions.tar.gz`, modelsDir: store });
    expect(result.installed).toEqual([ID]);
    expect(await verifyStore([store])).toEqual({ verified: [ID], problems: [] });
    expect((await verifyArchive(`${base}/versions.tar.gz`)).versions).toHaveLength(1);
  });

  it('refuses a missing URL and a download cut short, installing nothing', async () => {
    const store = emptyStore();
    expect((await refusal(fetchArchive({ source: `${base}/nothing.tar.gz`, modelsDir: store }))).message).toContain('404');
    await refusal(fetchArchive({ source: `${base}/cut.tar.gz`, modelsDir: store }));
    expectNothingInstalled(store);
  });
});
