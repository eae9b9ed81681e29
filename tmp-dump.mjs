import fs from 'node:fs';
import sharp from 'sharp';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from './dist/learn/backend.js';
import { folderIO } from './dist/classify/model-files.js';
import { foldModel } from './dist/classify/folded-model.js';
import { readDataset, loadSplit, selectItems } from './dist/learn/dataset.js';
import { loadImageTable } from './dist/learn/image-cache.js';
import { predictTable } from './dist/learn/trainer.js';
import { DEFAULT_PREPROCESS } from './dist/preprocess/prepare.js';
await initBackend('wasm');
const ds = await readDataset('../shared/data/ndsb');
const split = await loadSplit('models/splits/5b6871bdcda4-s1-v15');
const ci = new Map(ds.classes.map((c, i) => [c, i]));
for (const [name, rels] of [['val', split.validation], ['train', split.train]]) {
  const items = selectItems(ds, rels);
  const meta = [];
  for (const it of items) { const m = await sharp(it.file).metadata(); meta.push([ci.get(it.label), m.width, m.height]); }
  fs.writeFileSync(`/tmp/exp/${name}-meta.json`, JSON.stringify({ rels: items.map((i) => i.rel), meta }));
  if (name !== 'val') continue;
  for (const [dir, size] of (process.argv[2] ?? 'models/vgg48/v4:48,models/vgg64/v1:64').split(',').map((s) => s.split(':'))) {
    const model = await tfl.loadLayersModel(folderIO(dir));
    const table = await loadImageTable(items, Number(size), DEFAULT_PREPROCESS);
    const probs = predictTable(foldModel(model), table);
    fs.writeFileSync(`/tmp/exp/${name}-${dir.replaceAll('/', '_')}.f32`, Buffer.from(probs.buffer));
    console.log(name, dir, probs.length / items.length);
  }
}
