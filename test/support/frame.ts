import { createHash } from 'node:crypto';

const MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2]);

/** Wraps a protobuf body as KPL does: magic + body + MD5(body). */
export function frame(body: Uint8Array): Buffer {
  return Buffer.concat([MAGIC, body, createHash('md5').update(body).digest()]);
}
