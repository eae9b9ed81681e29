// The config type comes from the schema, one source: `Config` is what the schema's builders
// say each key holds (string-literal unions for the keys with a fixed set of values), so a key
// added, renamed or retyped in src/config/schema.ts changes the type, and nothing casts the
// loaded tree through `unknown`. And the two backend keys speak one vocabulary: finetune.backend
// names the TensorFlow.js backends as classify.backend does (by their package), and the old
// "tensorflow" is refused naming the key and what to write.
// Real parts: the TypeScript compiler on the real sources, the real loader on real YAML files.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { defaults, loadConfig } from '../../src/config/config.js';
import { CONFIG_SCHEMA, type SchemaNode } from '../../src/config/schema.js';
import { PlankwatchError } from '../../src/errors.js';
import { initBackend } from '../../src/engine/backend.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Type-checks `source` as if it were a file in test/integrity/, against the real sources. */
function typeErrors(source: string): string[] {
  const file = path.join(ROOT, 'test/integrity/config-type.check.ts');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
    esModuleInterop: true,
    resolveJsonModule: true,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (path.resolve(name) === file ? ts.createSourceFile(name, source, language) : getSourceFile(name, language, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program, program.getSourceFile(file))
    .map((d) => `${d.file ? `line ${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

function leaf(keyPath: string): Extract<SchemaNode, { type: 'string' }> {
  let node: SchemaNode = CONFIG_SCHEMA;
  for (const key of keyPath.split('.')) {
    if (node.type !== 'object') throw new Error(`${keyPath}: not in the schema`);
    node = node.properties[key]!;
  }
  if (node.type !== 'string') throw new Error(`${keyPath}: not a string key`);
  return node;
}

function writeTemp(text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'pw-config-type-')), 'c.yaml');
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): PlankwatchError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PlankwatchError) return err;
    throw err;
  }
  throw new Error('expected a PlankwatchError');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('the config type comes from the schema', () => {
  it('Config is the schema\'s inferred type, with enums as string-literal unions, and defaults() is typed', () => {
    const errors = typeErrors(`
      import { defaults, loadConfig, type Config } from '../../src/config/config.js';
      import { CONFIG_SCHEMA, type ConfigOf } from '../../src/config/schema.js';
      type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
      export const fromSchema: Equal<Config, ConfigOf<typeof CONFIG_SCHEMA>> = true;
      export const finetuneBackend: Equal<Config['finetune']['backend'], 'auto' | 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu'> = true;
      export const classifyBackend: Equal<Config['classify']['backend'], 'auto' | 'onnx' | 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu'> = true;
      export const level: Equal<Config['log']['level'], 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'> = true;
      export const onProcessed: Equal<Config['ingest']['onProcessed'], 'leave' | 'archive' | 'delete'> = true;
      export const free: Equal<Config['instrument']['id'], string> = true;
      export const port: Equal<Config['http']['port'], number> = true;
      export const flag: Equal<Config['sync']['enabled'], boolean> = true;
      export const sections: Equal<keyof Config, keyof typeof CONFIG_SCHEMA.properties> = true;
      export const typed: Config = defaults();
      export const loaded: Config['finetune'] = loadConfig().finetune;
      // @ts-expect-error a key the schema does not have is not in the type
      export const missing = defaults().finetune.noSuchKey;
    `);
    expect(errors).toEqual([]);
  }, 60_000);

  it('nothing casts a config through unknown, and config.ts copies no section by hand', () => {
    const cast = new RegExp(['as', 'unknown', 'as', 'Config\\b'].join(' ')); // spelt apart: this file is scanned too
    const casts = [...filesUnder(path.join(ROOT, 'src')), ...filesUnder(path.join(ROOT, 'test'))].filter((f) => cast.test(readFileSync(f, 'utf8'))).map((f) => path.relative(ROOT, f));
    expect(casts).toEqual([]);
    expect(readFileSync(path.join(ROOT, 'src/config/config.ts'), 'utf8')).not.toMatch(/^export interface Config\b/m);
  });
});

describe('classify.backend and finetune.backend speak one vocabulary', () => {
  it('every finetune.backend name is a classify.backend name (training has no onnx)', () => {
    const classify = leaf('classify.backend').enum ?? [];
    const finetune = leaf('finetune.backend').enum ?? [];
    expect(finetune.filter((name) => !classify.includes(name))).toEqual([]);
    expect(finetune).toEqual(['auto', 'tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']);
  });

  it('the new names load from a file and from the environment', () => {
    expect(loadConfig({ file: writeTemp('finetune:\n  backend: tfjs-node\n') }).finetune.backend).toBe('tfjs-node');
    expect(loadConfig({ env: { PLANKWATCH_FINETUNE_BACKEND: 'tfjs-node-gpu' } }).finetune.backend).toBe('tfjs-node-gpu');
    expect(defaults().finetune.backend).toBe('auto');
  });

  it('the old "tensorflow" is refused, naming the key and the names to write instead', () => {
    const fromFile = errorOf(() => loadConfig({ file: writeTemp('finetune:\n  backend: tensorflow\n') }));
    expect(fromFile.code).toBe('PW_E_CONFIG_INVALID');
    expect(fromFile.message).toContain('finetune.backend: "tensorflow" is now written as in classify.backend: "tfjs-node-gpu" or "tfjs-node"');
    const fromEnv = errorOf(() => loadConfig({ env: { PLANKWATCH_FINETUNE_BACKEND: 'tensorflow' } }));
    expect(fromEnv.message).toContain('PLANKWATCH_FINETUNE_BACKEND (finetune.backend): "tensorflow" is now written');
    // Any other wrong value still lists the names.
    expect(errorOf(() => loadConfig({ file: writeTemp('finetune:\n  backend: gpu\n') })).message).toContain(
      'finetune.backend: must be one of "auto", "tfjs-node-gpu", "tfjs-node", "wasm", "cpu", got "gpu"',
    );
  });

  it('training on a named native backend loads that package or fails with PW_E_BACKEND, never falls back to wasm', async () => {
    const installed = (name: string) => {
      try {
        createRequire(import.meta.url).resolve(name);
        return true;
      } catch {
        return false;
      }
    };
    for (const name of ['tfjs-node', 'tfjs-node-gpu'] as const) {
      const pkg = `@tensorflow/${name}`;
      if (installed(pkg)) {
        expect((await initBackend(name)).packageName).toBe(pkg);
        continue;
      }
      const err = await initBackend(name).then(
        (choice) => new Error(`started ${choice.name} instead`),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PlankwatchError);
      expect((err as PlankwatchError).code).toBe('PW_E_BACKEND');
      expect((err as PlankwatchError).message).toContain(pkg);
      expect((err as PlankwatchError).message).toContain('finetune.backend');
    }
  });
});
