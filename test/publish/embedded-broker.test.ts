import { createServer, type AddressInfo } from 'node:net';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { PlankwatchError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { EmbeddedBroker } from '../../src/publish/embedded-broker.js';
import { redactUrl } from '../../src/publish/mqtt.js';
import { topicsFor } from '../../src/publish/topics.js';

describe('EmbeddedBroker', () => {
  it('listens on 127.0.0.1 and serves MQTT clients; stop disconnects them', async () => {
    const b = new EmbeddedBroker({ port: 0, logger: silentLogger() });
    await b.start();
    expect(b.url).toBe(`mqtt://127.0.0.1:${b.port}`);
    const client = await connectAsync(b.url, { reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await b.stop();
    await closed;
    await client.endAsync(true);
  });

  it('throws PW_E_MQTT_BIND when the port is taken', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    const b = new EmbeddedBroker({ port, logger: silentLogger() });
    const err = await b.start().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(PlankwatchError);
    expect((err as PlankwatchError).code).toBe('PW_E_MQTT_BIND');
    await new Promise<void>((resolve) => holder.close(() => resolve()));
  });
});

describe('redactUrl / topicsFor', () => {
  it('masks the password and keeps the rest', () => {
    expect(redactUrl('mqtts://ship:pa55@broker.local:8883')).toBe('mqtts://ship:***@broker.local:8883');
    expect(redactUrl('mqtt://broker.local:1883')).toBe('mqtt://broker.local:1883');
  });

  it('builds topics under prefix/instrument and rejects wildcards', () => {
    expect(topicsFor('plankwatch', 'isiis1').counts).toBe('plankwatch/isiis1/counts');
    expect(() => topicsFor('plankwatch', 'a/b')).toThrow();
    expect(() => topicsFor('plankwatch', '#')).toThrow();
  });
});
