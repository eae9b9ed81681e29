#!/usr/bin/env node
// Figures on how src/ is put together, from the import lines of each file (TypeScript's parser,
// one file at a time): the daemon's size, imports that reach past a stage's index.ts, uses of the
// raw SQLite handle outside store/, and folder-level import cycles.
//   node scripts/structure.mjs [--list]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'src');
const list = process.argv.includes('--list');

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'page' ? [] : walk(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

const rel = (p) => path.relative(SRC, p).split(path.sep).join('/');
const files = walk(SRC).map((p) => ({ path: p, rel: rel(p), source: ts.createSourceFile(p, readFileSync(p, 'utf8'), ts.ScriptTarget.Latest, true) }));

/** Relative import targets of a file, resolved to paths under src/ (".js" written for ".ts"). */
function imports(f) {
  const out = [];
  const add = (spec) => {
    if (!spec.startsWith('.')) return;
    out.push(rel(path.resolve(path.dirname(f.path), spec.replace(/\.js$/, '.ts'))));
  };
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier.text);
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) add(node.arguments[0].text);
    ts.forEachChild(node, visit);
  };
  visit(f.source);
  return out;
}

// cli.ts is the entry point above every stage; the other files at the root of src/ (errors.ts,
// log.ts, types.ts) are the shared base below them.
const folder = (r) => (r.includes('/') ? path.posix.dirname(r) : r === 'cli.ts' ? 'cli' : '.');
const stage = (r) => folder(r).split('/')[0];

// 1. daemon.ts: lines and its largest function.
const daemon = files.find((f) => f.rel === 'daemon/daemon.ts');
const fns = [];
const visitFns = (node, owner) => {
  if ((ts.isFunctionLike(node) && node.body) || ts.isClassStaticBlockDeclaration?.(node)) {
    const name = node.name?.getText(daemon.source) ?? '(anonymous)';
    const start = daemon.source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    const end = daemon.source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
    if (node.name) fns.push({ name: owner ? `${owner}.${name}` : name, start, end, lines: end - start + 1 });
  }
  const cls = ts.isClassDeclaration(node) && node.name ? node.name.text : owner;
  ts.forEachChild(node, (c) => visitFns(c, cls));
};
visitFns(daemon.source, '');
fns.sort((a, b) => b.lines - a.lines);
const daemonLines = daemon.source.getLineAndCharacterOfPosition(daemon.source.getEnd()).line;

// 2. Imports from daemon/ into another folder's files other than its index.ts (files at the root
// of src/, such as errors.ts and log.ts, are shared modules, not stages).
const deep = [];
for (const f of files.filter((x) => x.rel.startsWith('daemon/'))) {
  for (const target of imports(f)) {
    if (folder(target) === 'daemon' || folder(target) === '.') continue;
    if (path.posix.basename(target) !== 'index.ts') deep.push(`${f.rel} -> ${target}`);
  }
}

// Across src/: imports from one stage into another stage's files other than its index.ts, and the
// index.ts files with the files of other folders that import them.
let deepAll = 0;
const indexUsers = new Map(files.filter((f) => path.posix.basename(f.rel) === 'index.ts').map((f) => [f.rel, new Set()]));
for (const f of files) {
  for (const target of imports(f)) {
    if (folder(target) === folder(f.rel) || folder(target) === '.') continue;
    if (indexUsers.has(target)) indexUsers.get(target).add(f.rel);
    else if (stage(target) !== stage(f.rel)) deepAll++;
  }
}

// 3. The raw handle outside store/: reads of a store's `.database`, the SqliteDatabase type, the
// better-sqlite3 package.
const raw = [];
for (const f of files.filter((x) => !x.rel.startsWith('store/'))) {
  const visit = (node) => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === 'database' && /store$/i.test(node.expression.getText(f.source))) raw.push(`${f.rel}: ${node.getText(f.source)}`);
    if (ts.isTypeReferenceNode(node) && node.typeName.getText(f.source) === 'SqliteDatabase') raw.push(`${f.rel}: SqliteDatabase`);
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && node.moduleSpecifier.text === 'better-sqlite3') raw.push(`${f.rel}: import 'better-sqlite3'`);
    ts.forEachChild(node, visit);
  };
  visit(f.source);
}
const storeDotDatabase = raw.filter((r) => r.includes('.database')).length;

// 4. Import cycles between folders (every directory) and between stages (the top folders of src/):
// strongly connected components of the graph (Tarjan), and the pairs that import each other.
function cycles(group) {
  const edges = new Map();
  const via = new Map();
  for (const f of files) {
    const from = group(f.rel);
    for (const target of imports(f)) {
      const to = group(target);
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from).add(to);
      const key = `${from} -> ${to}`;
      if (!via.has(key)) via.set(key, []);
      via.get(key).push(`${f.rel} -> ${target}`);
    }
  }
  const nodes = [...new Set([...edges.keys(), ...[...edges.values()].flatMap((s) => [...s])])];
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const sccs = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const c = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) sccs.push(c.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) strong(v);
  const twoWay = [];
  for (const [a, tos] of edges) for (const b of tos) if (a < b && edges.get(b)?.has(a)) twoWay.push([a, b]);
  return { sccs, twoWay, via };
}
const byFolder = cycles(folder);
const byStage = cycles(stage);
const describe = (c) =>
  `${c.sccs.length}${c.sccs.length ? ` (${c.sccs.map((x) => x.join(', ')).join('; ')})` : ''}; two-way pairs ${c.twoWay.length}${c.twoWay.length ? ` (${c.twoWay.map(([a, b]) => `${a} <-> ${b}`).join('; ')})` : ''}`;

const top = fns[0];
const deepFromDaemonTs = deep.filter((d) => d.startsWith('daemon/daemon.ts ')).length;
console.log(`daemon/daemon.ts: ${daemonLines} lines; largest function ${top.name} ${top.lines} lines (${top.start}-${top.end})`);
console.log(`deep imports from daemon/ (not through an index.ts): ${deep.length} (from daemon.ts: ${deepFromDaemonTs})`);
console.log(`index.ts files: ${indexUsers.size}, imported by ${new Set([...indexUsers.values()].flatMap((u) => [...u])).size} files; deep imports between stages across src/: ${deepAll}`);
console.log(`raw SQLite handle outside store/: ${raw.length} uses in ${new Set(raw.map((r) => r.split(':')[0])).size} files (store.database reads: ${storeDotDatabase})`);
console.log(`stage cycles: ${describe(byStage)}`);
console.log(`folder cycles: ${describe(byFolder)}`);
if (list) {
  console.log('\nlargest functions in daemon.ts:');
  for (const f of fns.slice(0, 5)) console.log(`  ${f.name}: ${f.lines} lines (${f.start}-${f.end})`);
  console.log('\ndeep imports from daemon/:');
  for (const d of deep) console.log(`  ${d}`);
  console.log('\nraw SQLite handle outside store/:');
  for (const r of raw) console.log(`  ${r}`);
  for (const [a, b] of byFolder.twoWay) {
    console.log(`\n${a} <-> ${b}:`);
    for (const e of [...byFolder.via.get(`${a} -> ${b}`), ...byFolder.via.get(`${b} -> ${a}`)]) console.log(`  ${e}`);
  }
}
