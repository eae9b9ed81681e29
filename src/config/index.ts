// The config stage's public surface: one schema holding every default, the loader with its env
// overrides, and secrets read from files.
export { CREDENTIALS_PREFIX, defaults, envName, loadConfig, type Config, type LoadOptions } from './config.js';
export { CONFIG_SCHEMA, type ConfigOf, type ObjectNode, type SchemaNode } from './schema.js';
export { readSecret } from './secret.js';
