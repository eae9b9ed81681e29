#!/usr/bin/env node
// A dark-field colour stand-in for another instrument's EcoTaxa export, made from NDSB: each
// image inverted (light organism on a dark background) and tinted, written as two EcoTaxa-format
// export folders (ecotaxa_*.tsv with its type row, and the images):
//   <out>/train: 4 images for every held-out one, from the shipped split's training list,
//                plus some "predicted" objects with wrong categories (left out by default);
//   <out>/test:  the shipped split's held-out images (no shipped member trained on them).
// Each folder also gets labels.csv (path,label) of its validated objects, for the older reader.
// Classes: the 34 with the most held-out images (the outside set had 34 classes).
//   node scripts/make-dark-field-standin.mjs --ndsb DIR --split models/splits/5b6871bdcda4-s1-v15 --out DIR
// NDSB credit: R. K. Cowen, S. Sponaugle, K. L. Robinson, J. Luo, PlanktonSet 1.0 (NOAA NCEI 0127422).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const ndsb = arg('ndsb');
const splitDir = arg('split', 'models/splits/5b6871bdcda4-s1-v15');
const out = arg('out');
const classCount = Number(arg('classes', '34'));
const trainPerTest = Number(arg('ratio', '4'));
if (!ndsb || !out) {
  process.stderr.write('usage: make-dark-field-standin.mjs --ndsb DIR --out DIR [--split DIR] [--classes 34] [--ratio 4]\n');
  process.exit(2);
}
const root = path.join(ndsb, 'train');
/** Illumination colour of the stand-in camera (cyan-ish) and its background level per channel. */
const TINT = [0.45, 0.85, 1.0];
const FLOOR = [4, 6, 10];

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rng = mulberry32(32);
const shuffle = (a) => {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

const list = (name) => readFileSync(path.join(splitDir, name), 'utf8').split('\n').filter(Boolean);
const byClass = (rels) => {
  const m = new Map();
  for (const r of rels) {
    const c = r.split('/')[0];
    m.set(c, [...(m.get(c) ?? []), r]);
  }
  return m;
};
const heldOut = byClass(list('validation.txt'));
const trained = byClass(list('train.txt'));
const classes = [...heldOut.keys()].sort((a, b) => heldOut.get(b).length - heldOut.get(a).length || a.localeCompare(b)).slice(0, classCount).sort();

async function darkField(file) {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  const rgb = Buffer.alloc(info.width * info.height * 3);
  for (let i = 0; i < data.length; i++) {
    const v = 255 - data[i];
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.min(255, Math.round(FLOOR[c] + TINT[c] * v));
  }
  return sharp(rgb, { raw: { width: info.width, height: info.height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

const HEADER = ['img_file_name', 'object_id', 'object_annotation_status', 'object_annotation_category', 'object_annotation_hierarchy', 'sample_id', 'acq_instrument'];
const TYPES = ['[t]', '[t]', '[t]', '[t]', '[t]', '[t]', '[t]'];

async function writeExport(name, objects) {
  const dir = path.join(out, name);
  mkdirSync(path.join(dir, 'images'), { recursive: true });
  const rows = [HEADER.join('\t'), TYPES.join('\t')];
  const csv = ['path,label'];
  let n = 0;
  for (const o of objects) {
    const id = `standin_${name}_${String(n++).padStart(6, '0')}`;
    const img = `images/${id}.jpg`;
    writeFileSync(path.join(dir, img), await darkField(path.join(root, o.rel)));
    rows.push([img, id, o.status, o.category, `living>standin>${o.category}`, `standin_${name}`, 'standin-darkfield'].join('\t'));
    if (o.status === 'validated') csv.push(`${img},${o.category}`);
  }
  writeFileSync(path.join(dir, `ecotaxa_standin_${name}.tsv`), rows.join('\n') + '\n');
  writeFileSync(path.join(dir, 'labels.csv'), csv.join('\n') + '\n');
  process.stderr.write(`${name}: ${objects.length} objects (${csv.length - 1} validated)\n`);
}

const train = [];
const test = [];
for (const c of classes) {
  const held = heldOut.get(c);
  for (const rel of held) test.push({ rel, category: c, status: 'validated' });
  const pool = shuffle([...trained.get(c)]);
  const take = Math.min(pool.length, held.length * trainPerTest);
  for (const rel of pool.slice(0, take)) train.push({ rel, category: c, status: 'validated' });
  // A few objects the lab never checked: the classifier's guesses, often wrong.
  for (const rel of pool.slice(take, take + Math.ceil(held.length / 10))) train.push({ rel, category: classes[Math.floor(rng() * classes.length)], status: 'predicted' });
}
await writeExport('train', shuffle(train));
await writeExport('test', test);
writeFileSync(path.join(out, 'classes.txt'), classes.join('\n') + '\n');
