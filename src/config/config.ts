// Loading the configuration: schema defaults, then the --config file, then PLANKWATCH_… variables,
// validated in one pass that names the path of every error.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { PlankwatchError } from '../errors.js';
import { parseProviders } from '../classify/onnx-providers.js';
import { parseAllowedHosts } from '../http/origin.js';
import { isLoopback } from '../http/auth.js';
import { CONFIG_SCHEMA, type ConfigOf, type ObjectNode, type SchemaNode } from './schema.js';

/** The whole configuration, as the schema describes it (src/config/schema.ts is the one source). */
export type Config = ConfigOf<typeof CONFIG_SCHEMA>;

type Tree = Record<string, unknown>;

/** Every default, as a plain object. */
export function defaults(): Config {
  // The one place the runtime walk meets the static type: defaultsOf builds what ConfigOf describes.
  return defaultsOf(CONFIG_SCHEMA) as Config;
}

function defaultsOf(node: ObjectNode): Tree {
  const out: Tree = {};
  for (const [key, child] of Object.entries(node.properties)) {
    out[key] = child.type === 'object' ? defaultsOf(child) : child.default;
  }
  return out;
}

/** Environment variable name for a config path: ingest.watchDir → PLANKWATCH_INGEST_WATCH_DIR. */
export function envName(path: string[]): string {
  return ['PLANKWATCH', ...path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2'))].join('_').toUpperCase();
}

export interface LoadOptions {
  /** YAML file overlaid on the defaults. */
  file?: string;
  /** Environment to read PLANKWATCH_… overrides from (default: none). */
  env?: NodeJS.ProcessEnv;
}

/** Load, overlay and validate. Throws PlankwatchError PW_E_CONFIG_READ or PW_E_CONFIG_INVALID. */
export function loadConfig(options: LoadOptions = {}): Config {
  const tree = defaults();
  const errors: string[] = [];
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new PlankwatchError('PW_E_CONFIG_READ', `Cannot read ${options.file}: ${(err as Error).message}`, { cause: err });
    }
    let overlay: unknown;
    try {
      overlay = parseYaml(text);
    } catch (err) {
      throw new PlankwatchError('PW_E_CONFIG_READ', `${options.file} is not valid YAML: ${(err as Error).message}`, { cause: err });
    }
    if (overlay !== null && overlay !== undefined) merge(tree, overlay, CONFIG_SCHEMA, [], errors);
  }
  if (options.env) applyEnv(tree, CONFIG_SCHEMA, [], options.env, errors);
  if (options.env?.CREDENTIALS_DIRECTORY) expandCredentials(tree, CONFIG_SCHEMA, options.env.CREDENTIALS_DIRECTORY);
  checkCrossField(tree, errors);
  if (errors.length > 0) {
    const where = options.file ? ` in ${options.file}` : '';
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `${errors.length} problem(s)${where}:\n  - ${errors.join('\n  - ')}`);
  }
  return tree;
}

function merge(target: Tree, overlay: unknown, node: ObjectNode, path: string[], errors: string[]): void {
  const here = path.length ? path.join('.') : '(top level)';
  if (typeof overlay !== 'object' || overlay === null || Array.isArray(overlay)) {
    errors.push(`${here}: must be a mapping of keys, got ${describe(overlay)}`);
    return;
  }
  for (const [key, value] of Object.entries(overlay as Tree)) {
    const child = node.properties[key];
    const childPath = [...path, key];
    if (!child) {
      const known = Object.keys(node.properties).join(', ');
      errors.push(`${childPath.join('.')}: unknown key (known keys here: ${known})`);
      continue;
    }
    if (child.type === 'object') merge(target[key] as Tree, value, child, childPath, errors);
    else {
      const error = checkValue(child, value);
      if (error) errors.push(`${childPath.join('.')}: ${error}`);
      else target[key] = value;
    }
  }
}

function applyEnv(target: Tree, node: ObjectNode, path: string[], env: NodeJS.ProcessEnv, errors: string[]): void {
  for (const [key, child] of Object.entries(node.properties)) {
    const childPath = [...path, key];
    if (child.type === 'object') {
      applyEnv(target[key] as Tree, child, childPath, env, errors);
      continue;
    }
    const name = envName(childPath);
    const raw = env[name];
    if (raw === undefined) continue;
    const value = fromEnv(child, raw);
    const error = checkValue(child, value);
    if (error) errors.push(`${name} (${childPath.join('.')}): ${error}`);
    else target[key] = value;
  }
}

/**
 * A file key (publish.passwordFile, http.tokenFile, …) may start with `$CREDENTIALS_DIRECTORY/`:
 * the folder where systemd puts the credentials of LoadCredential= (set in the service's
 * environment). Outside the service it stays as written, and reading it fails naming the key.
 */
export const CREDENTIALS_PREFIX = /^\$(?:CREDENTIALS_DIRECTORY|\{CREDENTIALS_DIRECTORY\})\//;

function expandCredentials(target: Tree, node: ObjectNode, dir: string): void {
  for (const [key, child] of Object.entries(node.properties)) {
    const value = target[key];
    if (child.type === 'object') expandCredentials(value as Tree, child, dir);
    else if (key.endsWith('File') && typeof value === 'string') target[key] = value.replace(CREDENTIALS_PREFIX, () => `${dir.replace(/\/+$/, '')}/`);
  }
}

function fromEnv(node: SchemaNode, raw: string): unknown {
  if (node.type === 'integer' || node.type === 'number') return raw.trim() === '' ? raw : Number(raw);
  if (node.type === 'boolean') return raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
  return raw;
}

function checkValue(node: SchemaNode, value: unknown): string | undefined {
  switch (node.type) {
    case 'string':
      if (typeof value !== 'string') return `must be a string, got ${describe(value)}`;
      if (node.renamed && Object.hasOwn(node.renamed, value)) return `"${value}" is now written ${node.renamed[value]}`;
      if (node.enum && !node.enum.includes(value)) return `must be one of ${node.enum.map((v) => `"${v}"`).join(', ')}, got "${value}"`;
      return undefined;
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || Number.isNaN(value)) return `must be a number, got ${describe(value)}`;
      if (node.type === 'integer' && !Number.isInteger(value)) return `must be a whole number, got ${value}`;
      if (node.minimum !== undefined && value < node.minimum) return `must be at least ${node.minimum}, got ${value}`;
      if (node.maximum !== undefined && value > node.maximum) return `must be at most ${node.maximum}, got ${value}`;
      return undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${describe(value)}`;
    default:
      return 'unexpected value';
  }
}

function checkCrossField(config: Config, errors: string[]): void {
  if (!/^[A-Za-z0-9_-]+$/.test(config.instrument.id)) {
    errors.push(`instrument.id: must use only letters, digits, "-" and "_" (it becomes an MQTT topic level), got "${config.instrument.id}"`);
  }
  if (config.publish.mqttUrl && !/^(mqtts?|wss?|tcp|ssl):\/\//.test(config.publish.mqttUrl)) {
    errors.push(`publish.mqttUrl: must start with mqtt://, mqtts://, ws:// or wss://, got "${config.publish.mqttUrl}"`);
  }
  checkSyncConfig(config, errors);
  checkEmbeddedBroker(config, errors);
  if (!/^[^#+/]+$/.test(config.publish.topicPrefix)) {
    errors.push(`publish.topicPrefix: must be one topic level without "/", "+" or "#", got "${config.publish.topicPrefix}"`);
  }
  const providers = parseProviders(config.classify.onnxProviders).error;
  if (providers) errors.push(`classify.onnxProviders: ${providers}`);
  for (const e of parseAllowedHosts(config.http.allowedHosts).errors) errors.push(`http.allowedHosts: ${e}`);
  for (const e of parseAllowedHosts(config.shore.httpAllowedHosts).errors) errors.push(`shore.httpAllowedHosts: ${e}`);
}

/** The embedded broker's subscriber login: both keys or neither, and required off loopback (as http.tokenFile is). */
function checkEmbeddedBroker(config: Config, errors: string[]): void {
  const p = config.publish;
  if (p.embeddedUsername && !p.embeddedPasswordFile) errors.push('publish.embeddedPasswordFile: required when publish.embeddedUsername is set');
  if (p.embeddedPasswordFile && !p.embeddedUsername) errors.push('publish.embeddedUsername: required when publish.embeddedPasswordFile is set');
  if (!p.mqttUrl && !isLoopback(p.embeddedHost) && !(p.embeddedUsername && p.embeddedPasswordFile)) {
    errors.push(
      `publish.embeddedHost: "${p.embeddedHost}" is not a loopback address, so other machines could reach the embedded broker: set publish.embeddedUsername and publish.embeddedPasswordFile, or use 127.0.0.1`,
    );
  }
}

/** The sync and shore sections: URLs, topic levels, numeric export metadata. */
function checkSyncConfig(config: Config, errors: string[]): void {
  if (config.sync.enabled && !config.sync.url) errors.push('sync.url: required when sync.enabled is true');
  for (const key of ['sync.url', 'shore.url'] as const) {
    const [section, name] = key.split('.') as ['sync' | 'shore', 'url'];
    const url = config[section][name];
    if (url && !/^(mqtts?|tcp|ssl|tls):\/\//.test(url)) errors.push(`${key}: must start with mqtt:// or mqtts://, got "${url}"`);
  }
  for (const key of ['sync.topicPrefix', 'shore.topicPrefix', 'shore.group'] as const) {
    const [section, name] = key.split('.') as ['sync' | 'shore', 'topicPrefix' | 'group'];
    const value = (config[section] as Record<string, unknown>)[name];
    if (typeof value !== 'string' || !/^[^#+/$]+$/.test(value)) errors.push(`${key}: must be one topic level without "/", "+", "#" or "$", got "${String(value)}"`);
  }
  if (config.shore.database === 'postgres' && !config.shore.postgresUrl) errors.push('shore.postgresUrl: required when shore.database is "postgres"');
  for (const key of ['latitude', 'longitude', 'depthMinM', 'depthMaxM'] as const) {
    const value = config.export[key];
    if (value !== '' && !Number.isFinite(Number(value))) errors.push(`export.${key}: must be a number or empty, got "${value}"`);
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}
