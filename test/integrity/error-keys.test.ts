// Every config key a technician is told about exists. A message that says "set publish.mqtt.url"
// when the key is publish.mqttUrl sends them to write a key the daemon then refuses as unknown.
// Checked: the catalogue (src/errors.ts), every string literal in src/ (error messages, log lines,
// help texts), README.md, CHANGELOG.md, every page under docs/ and config/vessel.example.yaml; for
// dotted key paths and for PLANKWATCH_… environment variable names.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { envName } from '../../src/config/config.js';
import { CONFIG_SCHEMA, type SchemaNode } from '../../src/config/schema.js';
import { ERRORS } from '../../src/errors.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Every path in the schema, sections included: "publish", "publish.mqttUrl", … */
function schemaPaths(node: SchemaNode = CONFIG_SCHEMA, prefix: string[] = []): string[] {
  if (node.type !== 'object') return [prefix.join('.')];
  const out = prefix.length ? [prefix.join('.')] : [];
  for (const [key, child] of Object.entries(node.properties)) out.push(...schemaPaths(child, [...prefix, key]));
  return out;
}

const PATHS = new Set(schemaPaths());
const SECTIONS = Object.keys(CONFIG_SCHEMA.properties);
const ENV_NAMES = new Set([...PATHS].filter((p) => p.includes('.')).map((p) => envName(p.split('.'))));

/**
 * Dotted words that start like a section but are not config keys, each with the reason. File
 * names (store.ts, export.json, …) are recognised by their extension below instead.
 */
const NOT_KEYS: Record<string, string> = {
  'review.html': 'the review page\'s file',
  'ingest.watchDri': 'README shows `config validate` catching this misspelling of ingest.watchDir',
};
const FILE_EXTENSIONS = new Set(['ts', 'js', 'mjs', 'json', 'jsonl', 'db', 'yaml', 'yml', 'html', 'css', 'md', 'bin', 'wasm', 'wat', 'log', 'tsv', 'zip', 'txt', 'png', 'jpg', 'service', 'conf']);

/** PLANKWATCH_… variables that are not config keys, each with the reason. */
const NOT_KEY_VARS: Record<string, string> = {
  PLANKWATCH_NDSB_DIR: 'where the NDSB training images are (training and tests), not a daemon setting',
  PLANKWATCH_CACHE_DIR: 'the training image cache folder, read by the training library',
  PLANKWATCH_BENCH_NODE_ARGS: 'node options for the daemon the benchmark starts',
};

const KEY_PATTERN = new RegExp(`(?<![A-Za-z0-9_.$/-])(?:${SECTIONS.join('|')})(?:\\.[A-Za-z][A-Za-z0-9]*)+(?![A-Za-z0-9_(])`, 'g');
const VAR_PATTERN = /\bPLANKWATCH_[A-Z0-9_]*[A-Z0-9]\b/g;

interface Found {
  key: string;
  where: string;
}

function dottedKeys(text: string, where: string): Found[] {
  const out: Found[] = [];
  for (const m of text.matchAll(KEY_PATTERN)) {
    const key = m[0];
    const last = key.slice(key.lastIndexOf('.') + 1);
    if (FILE_EXTENSIONS.has(last) || key in NOT_KEYS) continue;
    out.push({ key, where });
  }
  return out;
}

function envVars(text: string, where: string): Found[] {
  return [...text.matchAll(VAR_PATTERN)].map((m) => ({ key: m[0], where })).filter((f) => !(f.key in NOT_KEY_VARS));
}

/** The text of every string and template literal in a TypeScript file (substitutions left out). */
function stringLiterals(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) return;
    // A string used as a property name ({ 'finetune.wallSeconds': 12 } in a bench report) is a data
    // field, not text shown to anyone.
    const parent = node.parent as ts.Node | undefined;
    if (parent && ((ts.isPropertyAssignment(parent) && parent.name === node) || (ts.isElementAccessExpression(parent) && parent.argumentExpression === node))) return;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) out.push(node.text);
    else if (ts.isTemplateExpression(node)) out.push([node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join(' '));
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

function unknown(found: Found[]): string[] {
  return [...new Set(found.filter((f) => !PATHS.has(f.key) && !ENV_NAMES.has(f.key)).map((f) => `${f.key} (${f.where})`))];
}

describe('config keys named to the technician', () => {
  it('the extraction sees real keys (sanity: the check is not vacuous)', () => {
    const all = Object.values(ERRORS).flatMap((e) => dottedKeys(`${e.message} ${e.action}`, 'errors'));
    expect(all.map((f) => f.key)).toEqual(expect.arrayContaining(['ingest.maxPixels', 'store.path', 'http.tokenFile']));
    expect(dottedKeys('set publish.mqtt.url, see store.ts and review.html', 'x').map((f) => f.key)).toEqual(['publish.mqtt.url']);
  });

  it('every key in the error catalogue exists in the schema', () => {
    const found = Object.entries(ERRORS).flatMap(([code, e]) => [...dottedKeys(`${e.message} ${e.action}`, code), ...envVars(`${e.message} ${e.action}`, code)]);
    expect(unknown(found)).toEqual([]);
  });

  it('every key in a string in src/ (messages, log lines, help) exists in the schema', () => {
    const found = sourceFiles(path.join(ROOT, 'src')).flatMap((file) => {
      const where = path.relative(ROOT, file);
      return stringLiterals(file).flatMap((s) => [...dottedKeys(s, where), ...envVars(s, where)]);
    });
    expect(found.length).toBeGreaterThan(50);
    expect(unknown(found)).toEqual([]);
  });

  it('every key in README.md, CHANGELOG.md, docs/ and config/vessel.example.yaml exists in the schema', () => {
    const docs = readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`);
    expect(docs.length).toBeGreaterThan(5);
    const found = ['README.md', 'CHANGELOG.md', ...docs, 'config/vessel.example.yaml'].flatMap((name) => {
      const text = readFileSync(path.join(ROOT, name), 'utf8');
      return [...dottedKeys(text, name), ...envVars(text, name)];
    });
    expect(found.length).toBeGreaterThan(50);
    expect(unknown(found)).toEqual([]);
  });
});
