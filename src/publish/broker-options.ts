// The part of MQTT.js client options that says where the broker is and how to prove who we are:
// URL check, user name and password, TLS files. Shared by the live publisher and the sync link, so
// that both check the same things and name the config key at fault the same way.
import { readFile } from 'node:fs/promises';
import type { IClientOptions } from 'mqtt';
import { PlankwatchError } from '../errors.js';

export interface BrokerAccess {
  url: string;
  username?: string;
  password?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Verify the broker's certificate (default true). */
  rejectUnauthorized?: boolean;
}

/** Config keys to name in errors, e.g. { url: 'publish.mqttUrl', prefix: 'publish' }. */
export interface BrokerKeys {
  url: string;
  prefix: string;
}

/** Throws PW_E_CONFIG_INVALID naming the key for an unusable URL or an unreadable TLS file. */
export async function brokerAccessOptions(o: BrokerAccess, keys: BrokerKeys): Promise<IClientOptions> {
  let protocol: string;
  try {
    protocol = new URL(o.url).protocol;
  } catch {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `${keys.url} "${redactUrl(o.url)}" is not a URL.`);
  }
  if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:'].includes(protocol)) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `${keys.url} must start with mqtt:// or mqtts://, got ${protocol}//.`);
  }
  const options: IClientOptions = { rejectUnauthorized: o.rejectUnauthorized ?? true };
  if (o.username) options.username = o.username;
  if (o.password) options.password = o.password;
  if (o.caFile) options.ca = await readPem(o.caFile, `${keys.prefix}.caFile`);
  if (o.certFile) options.cert = await readPem(o.certFile, `${keys.prefix}.certFile`);
  if (o.keyFile) options.key = await readPem(o.keyFile, `${keys.prefix}.keyFile`);
  return options;
}

async function readPem(path: string, key: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new PlankwatchError('PW_E_CONFIG_INVALID', `${key}: cannot read ${path}.`, { cause: err });
  }
}

/** `mqtt://user:***@host:1883/`: the URL with any password masked, safe for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
