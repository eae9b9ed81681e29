// Renders config/default.yaml from the schema: every key, its default, its description.
import { CONFIG_SCHEMA, type SchemaNode } from './schema.js';
import { envName } from './config.js';

export function renderDefaultYaml(): string {
  const lines = [
    '# plankwatch configuration: every key with its default.',
    '# Copy the keys you want to change into your own file and pass it with --config FILE;',
    '# any key can also be set by an environment variable, named on the line above the key.',
    '# Relative paths are relative to the directory the daemon is started in.',
    '',
  ];
  render(CONFIG_SCHEMA, [], 0, lines);
  return lines.join('\n') + '\n';
}

function render(node: SchemaNode, path: string[], depth: number, lines: string[]): void {
  if (node.type !== 'object') return;
  const indent = '  '.repeat(depth);
  for (const [key, child] of Object.entries(node.properties)) {
    const childPath = [...path, key];
    if (child.type === 'object') {
      if (depth === 0 && lines.at(-1) !== '') lines.push('');
      if (child.description) lines.push(`${indent}# ${child.description}`);
      lines.push(`${indent}${key}:`);
      render(child, childPath, depth + 1, lines);
      continue;
    }
    const allowed = child.type === 'string' && child.enum ? ` One of: ${child.enum.join(', ')}.` : '';
    lines.push(`${indent}# ${child.description}${allowed} (${envName(childPath)})`);
    lines.push(`${indent}${key}: ${child.type === 'string' ? JSON.stringify(child.default) : String(child.default)}`);
  }
}
