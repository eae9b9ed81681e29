// Follows MQTT packet boundaries in the bytes one client sends, so that an oversized packet is
// recognised from its fixed header, before its body arrives and long before the broker's parser
// has buffered it whole (aedes has no packet size limit of its own).

/**
 * Fed every chunk a client sends, in order. Knows nothing of the packets' contents: only the
 * fixed header (one type byte, then the remaining length in 1 to 4 bytes of 7 bits each, MQTT
 * 3.1.1 section 2.2.3) and how many body bytes to skip to reach the next one.
 */
export class PacketSizeLimit {
  private readonly maxBytes: number;
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private lengthBytes = 0;
  private multiplier = 1;
  private remaining = 0;

  /** `maxBytes`: the largest whole packet (fixed header included) allowed. */
  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /**
   * Reads the next bytes the client sent. Returns 0 while every packet announced so far fits,
   * else the size the first oversized (or malformed: a length of more than 4 bytes) packet
   * announces; once over, the caller is expected to close the connection.
   */
  feed(chunk: Buffer): number {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'type') {
        i += 1;
        this.state = 'length';
        this.length = 0;
        this.lengthBytes = 0;
        this.multiplier = 1;
      } else if (this.state === 'length') {
        const byte = chunk[i]!;
        i += 1;
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes += 1;
        const size = 1 + this.lengthBytes + this.length;
        if ((byte & 0x80) !== 0) {
          if (this.lengthBytes === 4) return Number.POSITIVE_INFINITY;
          continue;
        }
        if (size > this.maxBytes) return size;
        this.remaining = this.length;
        this.state = this.remaining === 0 ? 'type' : 'body';
      } else {
        const skip = Math.min(this.remaining, chunk.length - i);
        i += skip;
        this.remaining -= skip;
        if (this.remaining === 0) this.state = 'type';
      }
    }
    return 0;
  }
}
