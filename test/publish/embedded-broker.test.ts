import { createServer, type AddressInfo } from 'node:net';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { PlankwatchError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { EmbeddedBroker } from '../../src/publish/embedded-broker.js';
import { PacketSizeLimit } from '../../src/publish/packet-limit.js';
import { redactUrl } from '../../src/publish/mqtt.js';
import { topicsFor } from '../../src/publish/topics.js';

const OWNER = { clientId: 'plankwatch-isiis1', prefix: 'plankwatch', instrument: 'isiis1' };

describe('EmbeddedBroker', () => {
  it('listens on 127.0.0.1 and serves MQTT clients; stop disconnects them', async () => {
    const b = new EmbeddedBroker({ port: 0, owner: OWNER, logger: silentLogger() });
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
    const b = new EmbeddedBroker({ port, owner: OWNER, logger: silentLogger() });
    const err = await b.start().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(PlankwatchError);
    expect((err as PlankwatchError).code).toBe('PW_E_MQTT_BIND');
    await new Promise<void>((resolve) => holder.close(() => resolve()));
  });
});

describe('PacketSizeLimit', () => {
  /** A PUBLISH fixed header announcing `length` bytes after it, and that many bytes. */
  function packet(length: number): Buffer {
    const header = [0x30];
    let rest = length;
    do {
      let byte = rest % 128;
      rest = Math.floor(rest / 128);
      if (rest > 0) byte |= 0x80;
      header.push(byte);
    } while (rest > 0);
    return Buffer.concat([Buffer.from(header), Buffer.alloc(length, 0x41)]);
  }

  it('follows packets across chunk boundaries and reports the first oversized one from its header', () => {
    const limit = new PacketSizeLimit(1000);
    // 2, 129, 131 and exactly 1000 bytes pass; the last one, 1001 bytes, does not.
    const stream = Buffer.concat([packet(0), packet(127), packet(128), packet(997), packet(998)]);
    // Fed one byte at a time: every boundary falls inside a header or a body somewhere.
    const sizes: number[] = [];
    for (let i = 0; i < stream.length; i++) {
      const size = limit.feed(stream.subarray(i, i + 1));
      if (size !== 0) {
        sizes.push(size, i);
        break;
      }
    }
    const lastLengthByte = 2 + 129 + 131 + 1000 + 2;
    expect(sizes).toEqual([1001, lastLengthByte]);
  });

  it('reports a 50 MB packet on its header and a length field longer than 4 bytes', () => {
    expect(new PacketSizeLimit(256 * 1024).feed(packet(50 * 1024 * 1024).subarray(0, 8))).toBe(50 * 1024 * 1024 + 5);
    expect(new PacketSizeLimit(256 * 1024).feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(Number.POSITIVE_INFINITY);
    expect(new PacketSizeLimit(256 * 1024).feed(packet(256 * 1024 - 4))).toBe(0);
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
