// The export commands as a technician runs them (the built CLI, a config file): `export dwc` writes
// the archive with the config's licence and creator and checks it, `export validate` exits 0 on a
// valid archive and 2, listing each problem, on a broken one; a malformed mapping stops the export
// before anything is written.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ZipWriter } from '../../src/export/zip.js';
import { tmp } from '../sync/helpers.js';
import { towDatabase } from './tow.js';
import { unzip } from './unzip.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(REPO_ROOT, 'bin/plankwatch.js');

function plankwatch(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('plankwatch export dwc | validate', () => {
  it('writes a valid archive from the config, and refuses a broken one with each problem named', async () => {
    const { db, archive } = towDatabase();
    const dir = tmp('export-cli');
    const config = path.join(dir, 'plankwatch.yaml');
    const settings = 'instrument:\n  id: isiis-1\nexport:\n  cruise: WS1406\n  institution: OSU\n  licence: CC-BY-NC-4.0\n  creatorName: Ana Silva\n  creatorEmail: ana@example.org\n';
    // Without a station position, the ROI the navigation stage did not place has no coordinates:
    // the archive is written, and the check says what OBIS would refuse.
    writeFileSync(config, settings);
    const unplaced = plankwatch('export', 'dwc', '--config', config, '--db', db, '-o', path.join(dir, 'unplaced.zip'));
    expect(unplaced.status).toBe(2);
    expect(unplaced.stdout).toMatch(/^error occurrence\.txt:\d+ decimalLatitude: no decimalLatitude\/decimalLongitude on the occurrence or its event/m);
    writeFileSync(config, `${settings}  latitude: "26"\n  longitude: "-79.5"\n`);
    const out = path.join(dir, 'dwca.zip');
    const dwc = plankwatch('export', 'dwc', '--config', config, '--db', db, '--images', archive, '-o', out);
    expect(dwc.stderr).toBe('');
    expect(dwc.status).toBe(0);
    expect(dwc.stdout).toContain('3 events, 3 occurrences');
    expect(dwc.stdout).toContain('1 non-organism ROIs left out of the occurrences');
    expect(dwc.stdout).toMatch(/valid \(event\.txt 3 rows/);
    const files = unzip(out);
    expect(files.get('eml.xml')!.toString()).toContain('http://creativecommons.org/licenses/by-nc/4.0/legalcode');

    const ok = plankwatch('export', 'validate', out);
    expect(ok.status).toBe(0);

    // The same archive with a non-organism occurrence and an event date that is not ISO 8601.
    const broken = path.join(dir, 'broken.zip');
    const zip = new ZipWriter(broken);
    await zip.open();
    for (const [name, data] of files) {
      let d = data.toString('utf8');
      if (name === 'occurrence.txt') d = d.replace(/\tCalanoida\t/, '\tdetritus_other\t');
      if (name === 'event.txt') d = d.replace(/2014-06-03T22:00:00Z\/2014-06-03T23:00:00Z/, '3 June 2014');
      zip.add(name, name.startsWith('media/') ? data : d);
    }
    await zip.finish();
    const bad = plankwatch('export', 'validate', broken);
    expect(bad.status).toBe(2);
    expect(bad.stdout).toMatch(/^error occurrence\.txt:\d+ scientificName: scientificName "detritus_other" is not a taxon/m);
    expect(bad.stdout).toMatch(/^error event\.txt:\d+ eventDate: eventDate "3 June 2014" is not an ISO 8601/m);
    expect(bad.stderr).toContain('PW_E_EXPORT_INVALID');
    const json = JSON.parse(plankwatch('export', 'validate', broken, '--json').stdout) as { ok: boolean; errors: unknown[] };
    expect(json.ok).toBe(false);
    expect(json.errors.length).toBeGreaterThanOrEqual(2);

    // A malformed mapping: nothing is written, and the line is named.
    const taxa = path.join(dir, 'taxa.tsv');
    writeFileSync(taxa, 'copepod_calanoid\tCalanoida\turn:lsid:marinespecies.org:taxname:1100\ndetritus_other\n');
    const out2 = path.join(dir, 'dwca2.zip');
    const refused = plankwatch('export', 'dwc', '--config', config, '--db', db, '--taxa', taxa, '-o', out2);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/PW_E_EXPORT_TAXA.*taxa\.tsv line 2/);
    expect(existsSync(out2)).toBe(false);
  }, 120_000);
});
