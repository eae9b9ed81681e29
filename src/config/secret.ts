// Secrets the config names by file (systemd credentials, mode 0600), never by value.
import { readFileSync } from 'node:fs';
import { PlankwatchError } from '../errors.js';

/**
 * The text of a secret file without surrounding white space. `key` is the config key that named
 * the file; it leads the PW_E_CONFIG_INVALID message when the file cannot be read.
 */
export function readSecret(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `${key}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
