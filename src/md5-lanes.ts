import { md5Bytes } from './hash-key.js';
import { defaultLogger } from './logger.js';

/**
 * MD5 of many messages at once, four at a time: one WebAssembly SIMD instruction works on the same
 * step of four messages, one in each 32-bit lane (the "multi-buffer" technique of Intel's ISA-L).
 * MD5 is a chain of dependent steps, so one message cannot go faster than OpenSSL's; four side by side
 * measured 2.2-2.4× OpenSSL's throughput on this project's machine (AMD EPYC; Node 20, 22 and 24),
 * the copy into WebAssembly memory included.
 *
 * The producer hashes every aggregate it sends (the KPL format's MD5 trailer), and under load a
 * PutRecords request carries 20 to 60 of them: they are hashed here, together, when the request is
 * written. `deaggregateAll` checks the trailers of its records here too. Fewer than two messages, or a
 * Node without WebAssembly (`--jitless`), go to OpenSSL.
 *
 * The module is written out below instruction by instruction, not loaded from a compiled file.
 */

/**
 * Messages hashed side by side: 32-bit lanes of a 128-bit vector. Eight (two vectors, their steps
 * interleaved) measured 6% faster with 100 messages, and slower with few: 0.57× with 3 messages, 0.85×
 * with 9, where the last one runs alone.
 */
const LANES = 4;
/** Bytes of a message copied into its lane's slot at a time. A multiple of the 64-byte block. */
const CHUNK_BYTES = 16384;
/** A slot holds a chunk, or a message's last chunk and its padding (at most 72 bytes more). */
const SLOT_BYTES = CHUNK_BYTES + 128;

// WebAssembly memory: two pages of 64 KiB, laid out as below.
/** The four state vectors A, B, C, D; word `l` of each is lane `l`'s. */
const STATE_AT = 0;
/** Each lane's read pointer (u32), advanced by the kernel a block at a time. */
const POINTERS_AT = 64;
/** The lanes' slots, then one more for idle lanes to read (what they hash is thrown away). */
const SLOTS_AT = 128;
const IDLE_SLOT_AT = SLOTS_AT + LANES * SLOT_BYTES;
const PAGES = 2;
if (IDLE_SLOT_AT + SLOT_BYTES > PAGES * 65536) throw new Error('md5-lanes: the slots do not fit in memory');

/** MD5's initial state (RFC 1321). */
const INITIAL_STATE = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476] as const;
/** Left-rotation amounts, by round and step within a group of four. */
const ROTATIONS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21] as const;
/** The 64 additive constants: floor(|sin(i + 1)| × 2^32). */
const SINES = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);

/**
 * MD5 digests of `messages`, each written into the 16 bytes of `digests` at the same index. The two
 * may share a buffer (an aggregate and its trailer) as long as no digest overlaps a message.
 */
export function md5Each(messages: readonly Uint8Array[], digests: readonly Uint8Array[]): void {
  const lanes = messages.length >= 2 ? md5Lanes() : undefined;
  // Busy: called again from inside a call, by user code a message's own methods ran (a subclass of
  // Uint8Array); the lanes hold the outer call's state.
  if (lanes !== undefined && !lanes.busy) {
    lanes.digest(messages, digests);
    return;
  }
  for (let i = 0; i < messages.length; i++) digests[i]!.set(md5Bytes(messages[i]!));
}

/**
 * For tests: turns the lanes off (OpenSSL for every message) or back on, built with `api` (by
 * default the global WebAssembly). Returns whether they are in use now: false, after `true`, where
 * WebAssembly could not build or run them.
 */
export function useMd5Lanes(use: boolean, api: WebAssemblyApi | undefined = wasm): boolean {
  lanes = use ? undefined : null;
  return md5Lanes(api) !== undefined;
}

/** Built on first use; null where WebAssembly cannot run it. */
let lanes: Md5Lanes | null | undefined;

function md5Lanes(api = wasm): Md5Lanes | undefined {
  if (lanes === undefined) {
    try {
      lanes = api === undefined ? null : new Md5Lanes(api);
    } catch (error) {
      // Slower, not wrong: say why where someone looking into speed would look.
      defaultLogger.debug({ error: String(error) }, 'MD5 of aggregates: no WebAssembly lanes, OpenSSL only');
      lanes = null;
    }
  }
  return lanes ?? undefined;
}

/**
 * @internal The WebAssembly API, as far as it is used here (the project's `lib` has no DOM types to
 * declare it).
 */
export interface WebAssemblyApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Memory: new (descriptor: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer };
  readonly Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { readonly exports: Record<string, unknown> };
}

/** Undefined under `node --jitless`, which has no WebAssembly. */
const wasm = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly;

/**
 * Runs the kernel over messages of any length: each lane is fed its message a chunk at a time, and
 * when one message ends, its lane takes the next. The longest go first, so that the lanes run out
 * together rather than one long message ending alone.
 */
class Md5Lanes {
  readonly #kernel: (blocks: number) => void;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  /** Per lane: index of its message (-1 when idle), bytes of it copied so far, blocks left in its slot. */
  readonly #message = new Int32Array(LANES);
  readonly #copied = new Float64Array(LANES);
  readonly #blocksLeft = new Int32Array(LANES);
  /** Per lane: whether its slot holds its message's last chunk. */
  readonly #last = new Uint8Array(LANES);
  /** Whether a call of `digest` is running. */
  busy = false;

  constructor(api: WebAssemblyApi) {
    const memory = new api.Memory({ initial: PAGES, maximum: PAGES });
    const instance = new api.Instance(new api.Module(md5LanesModule()), { md5: { memory } });
    this.#kernel = instance.exports.blocks as (blocks: number) => void;
    this.#bytes = new Uint8Array(memory.buffer);
    this.#view = new DataView(memory.buffer);
  }

  digest(messages: readonly Uint8Array[], digests: readonly Uint8Array[]): void {
    this.busy = true;
    try {
      this.#digest(messages, digests);
    } finally {
      this.busy = false;
    }
  }

  #digest(messages: readonly Uint8Array[], digests: readonly Uint8Array[]): void {
    const order = Array.from(messages.keys()).sort((a, b) => messages[b]!.length - messages[a]!.length);
    let next = 0;
    let active = 0;
    for (let lane = 0; lane < LANES; lane++) {
      if (next < order.length) {
        this.#start(lane, order[next++]!, messages);
        active++;
      } else {
        this.#message[lane] = -1;
      }
    }
    while (active > 0) {
      let blocks = Number.MAX_SAFE_INTEGER;
      for (let lane = 0; lane < LANES; lane++) {
        if (this.#message[lane]! < 0) {
          // An idle lane hashes the idle slot from its start, and never reads past it.
          this.#view.setUint32(POINTERS_AT + 4 * lane, IDLE_SLOT_AT, true);
        } else if (this.#blocksLeft[lane]! < blocks) {
          blocks = this.#blocksLeft[lane]!;
        }
      }
      this.#kernel(blocks);
      for (let lane = 0; lane < LANES; lane++) {
        const index = this.#message[lane]!;
        if (index < 0) continue;
        this.#blocksLeft[lane]! -= blocks;
        if (this.#blocksLeft[lane]! > 0) continue;
        if (this.#last[lane] === 0) {
          this.#fill(lane, messages[index]!);
          continue;
        }
        this.#readDigest(lane, digests[index]!);
        if (next < order.length) {
          this.#start(lane, order[next++]!, messages);
        } else {
          this.#message[lane] = -1;
          active--;
        }
      }
    }
  }

  #start(lane: number, index: number, messages: readonly Uint8Array[]): void {
    this.#message[lane] = index;
    this.#copied[lane] = 0;
    for (let word = 0; word < 4; word++) {
      this.#view.setUint32(STATE_AT + 16 * word + 4 * lane, INITIAL_STATE[word]!, true);
    }
    this.#fill(lane, messages[index]!);
  }

  /** Copies the lane's next chunk into its slot; the last one with MD5's padding and length. */
  #fill(lane: number, message: Uint8Array): void {
    const slot = SLOTS_AT + lane * SLOT_BYTES;
    const from = this.#copied[lane]!;
    const remaining = message.length - from;
    const bytes = this.#bytes;
    if (remaining > CHUNK_BYTES) {
      bytes.set(message.subarray(from, from + CHUNK_BYTES), slot);
      this.#copied[lane] = from + CHUNK_BYTES;
      this.#blocksLeft[lane] = CHUNK_BYTES / 64;
      this.#last[lane] = 0;
    } else {
      bytes.set(message.subarray(from), slot);
      // 0x80, zeros up to 8 bytes short of a block's end, then the length in bits (64-bit LE).
      const padded = (((remaining + 8) >> 6) + 1) << 6;
      bytes[slot + remaining] = 0x80;
      bytes.fill(0, slot + remaining + 1, slot + padded - 8);
      const bits = message.length * 8;
      this.#view.setUint32(slot + padded - 8, bits >>> 0, true);
      this.#view.setUint32(slot + padded - 4, Math.floor(bits / 2 ** 32), true);
      this.#copied[lane] = message.length;
      this.#blocksLeft[lane] = padded / 64;
      this.#last[lane] = 1;
    }
    this.#view.setUint32(POINTERS_AT + 4 * lane, slot, true);
  }

  /** The digest is A, B, C, D, each little-endian: as the state words already lie in memory. */
  #readDigest(lane: number, digest: Uint8Array): void {
    const bytes = this.#bytes;
    for (let word = 0; word < 4; word++) {
      const at = STATE_AT + 16 * word + 4 * lane;
      digest[4 * word] = bytes[at]!;
      digest[4 * word + 1] = bytes[at + 1]!;
      digest[4 * word + 2] = bytes[at + 2]!;
      digest[4 * word + 3] = bytes[at + 3]!;
    }
  }
}

/**
 * The WebAssembly module: imports `md5.memory`, exports `blocks(n)`, which runs `n` 64-byte blocks of
 * every lane through MD5's compression function, reading lane `l`'s block at its pointer and moving
 * the pointer on. The 64 steps are unrolled; the a, b, c, d roles rotate between four locals.
 */
function md5LanesModule(): Uint8Array {
  const f = new FunctionWriter();
  const blocks = 0; // the parameter
  const pointer = Array.from({ length: LANES }, () => f.local(I32));
  const state = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const saved = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const words = Array.from({ length: 16 }, () => f.local(V128));
  const sum = f.local(V128);

  for (let lane = 0; lane < LANES; lane++)
    f.constI32(0)
      .i32Load(POINTERS_AT + 4 * lane)
      .set(pointer[lane]!);
  for (let w = 0; w < 4; w++)
    f.constI32(0)
      .v128Load(STATE_AT + 16 * w)
      .set(state[w]!);

  f.blockLoop(() => {
    f.get(blocks).op(I32_EQZ).breakIf(1);
    // Word w of every lane's block, into one vector.
    for (let w = 0; w < 16; w++) {
      f.get(pointer[0]!)
        .i32Load(4 * w)
        .simd(I32X4_SPLAT)
        .set(words[w]!);
      for (let lane = 1; lane < LANES; lane++) {
        f.get(pointer[lane]!)
          .get(words[w]!)
          .v128Load32Lane(4 * w, lane)
          .set(words[w]!);
      }
    }
    for (let w = 0; w < 4; w++) f.get(state[w]!).set(saved[w]!);
    let [a, b, c, d] = state as [number, number, number, number];
    for (let step = 0; step < 64; step++) {
      const round = step >> 4;
      const word = [step, (5 * step + 1) % 16, (3 * step + 5) % 16, (7 * step) % 16][round]!;
      // b is the value the previous step just made: everything that does not need it comes first, so
      // that the step waits on it for as few instructions as can be (a + K + W, then the function).
      f.get(a).constSplat(SINES[step]!).simd(I32X4_ADD).get(words[word]!).simd(I32X4_ADD);
      if (round === 0) {
        f.get(c).get(d).get(b).simd(V128_BITSELECT); // (b & c) | (~b & d)
      } else if (round === 1) {
        f.get(b).get(c).get(d).simd(V128_BITSELECT); // (d & b) | (~d & c)
      } else if (round === 2) {
        f.get(c).get(d).simd(V128_XOR).get(b).simd(V128_XOR); // b ^ c ^ d
      } else {
        f.get(c).get(b).get(d).simd(V128_NOT).simd(V128_OR).simd(V128_XOR); // c ^ (b | ~d)
      }
      f.simd(I32X4_ADD);
      const rotation = ROTATIONS[(round << 2) | (step & 3)]!;
      f.tee(sum).constI32(rotation).simd(I32X4_SHL);
      f.get(sum)
        .constI32(32 - rotation)
        .simd(I32X4_SHR_U)
        .simd(V128_OR);
      f.get(b).simd(I32X4_ADD).set(a);
      [a, b, c, d] = [d, a, b, c];
    }
    // 64 steps rotate the roles back to where they started.
    for (let w = 0; w < 4; w++) f.get(state[w]!).get(saved[w]!).simd(I32X4_ADD).set(state[w]!);
    for (let lane = 0; lane < LANES; lane++) {
      f.get(pointer[lane]!).constI32(64).op(I32_ADD).set(pointer[lane]!);
    }
    f.get(blocks).constI32(1).op(I32_SUB).set(blocks).breakTo(0);
  });

  for (let w = 0; w < 4; w++)
    f.constI32(0)
      .get(state[w]!)
      .v128Store(STATE_AT + 16 * w);
  for (let lane = 0; lane < LANES; lane++)
    f.constI32(0)
      .get(pointer[lane]!)
      .i32Store(POINTERS_AT + 4 * lane);

  const type = [FUNC_TYPE, ...vector([[I32]]), ...vector([])];
  const memoryImport = [...name('md5'), ...name('memory'), IMPORT_MEMORY, LIMITS_MIN_MAX, PAGES, PAGES];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(SECTION_TYPE, vector([type])),
    ...section(SECTION_IMPORT, vector([memoryImport])),
    ...section(SECTION_FUNCTION, vector([[0]])),
    ...section(SECTION_EXPORT, vector([[...name('blocks'), EXPORT_FUNC, 0]])),
    ...section(SECTION_CODE, vector([f.body()])),
  ]);
}

// The few parts of the WebAssembly binary format the module needs (WebAssembly Core Specification 2.0,
// section 5, and its fixed-width SIMD opcodes).
const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const SECTION_TYPE = 1;
const SECTION_IMPORT = 2;
const SECTION_FUNCTION = 3;
const SECTION_EXPORT = 7;
const SECTION_CODE = 10;
const FUNC_TYPE = 0x60;
const IMPORT_MEMORY = 0x02;
const EXPORT_FUNC = 0x00;
const LIMITS_MIN_MAX = 0x01;
const I32 = 0x7f;
const V128 = 0x7b;
const BLOCK = 0x02;
const LOOP = 0x03;
const END = 0x0b;
const BR = 0x0c;
const BR_IF = 0x0d;
const EMPTY_BLOCK_TYPE = 0x40;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const I32_LOAD = 0x28;
const I32_STORE = 0x36;
const I32_CONST = 0x41;
const I32_EQZ = 0x45;
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const SIMD_PREFIX = 0xfd;
const V128_LOAD = 0x00;
const V128_STORE = 0x0b;
const V128_CONST = 0x0c;
const I32X4_SPLAT = 0x11;
const V128_NOT = 0x4d;
const V128_OR = 0x50;
const V128_XOR = 0x51;
const V128_BITSELECT = 0x52;
const V128_LOAD32_LANE = 0x56;
const I32X4_SHL = 0xab;
const I32X4_SHR_U = 0xad;
const I32X4_ADD = 0xae;

/** One function's locals and instructions, written in order. */
class FunctionWriter {
  readonly #code: number[] = [];
  readonly #localTypes: number[] = [];
  /** Parameters come first in the local index space: the one `blocks` parameter. */
  readonly #parameters = 1;

  local(type: number): number {
    this.#localTypes.push(type);
    return this.#parameters + this.#localTypes.length - 1;
  }

  op(...bytes: number[]): this {
    this.#code.push(...bytes);
    return this;
  }

  simd(opcode: number): this {
    return this.op(SIMD_PREFIX, ...unsigned(opcode));
  }

  get(local: number): this {
    return this.op(LOCAL_GET, ...unsigned(local));
  }

  set(local: number): this {
    return this.op(LOCAL_SET, ...unsigned(local));
  }

  tee(local: number): this {
    return this.op(LOCAL_TEE, ...unsigned(local));
  }

  constI32(value: number): this {
    return this.op(I32_CONST, ...signed(value | 0));
  }

  /** A vector of four copies of a 32-bit constant. */
  constSplat(value: number): this {
    const bytes: number[] = [];
    for (let lane = 0; lane < 4; lane++)
      bytes.push(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24);
    return this.simd(V128_CONST).op(...bytes);
  }

  // Memory accesses: alignment hint (log2 of bytes), then offset.
  i32Load(offset: number): this {
    return this.op(I32_LOAD, 2, ...unsigned(offset));
  }

  i32Store(offset: number): this {
    return this.op(I32_STORE, 2, ...unsigned(offset));
  }

  v128Load(offset: number): this {
    return this.simd(V128_LOAD).op(4, ...unsigned(offset));
  }

  v128Store(offset: number): this {
    return this.simd(V128_STORE).op(4, ...unsigned(offset));
  }

  v128Load32Lane(offset: number, lane: number): this {
    return this.simd(V128_LOAD32_LANE).op(2, ...unsigned(offset), lane);
  }

  /** `block { loop { body } }`: in the body, branch 0 repeats the loop and branch 1 leaves it. */
  blockLoop(body: () => void): this {
    this.op(BLOCK, EMPTY_BLOCK_TYPE, LOOP, EMPTY_BLOCK_TYPE);
    body();
    return this.op(END, END);
  }

  breakTo(depth: number): this {
    return this.op(BR, depth);
  }

  breakIf(depth: number): this {
    return this.op(BR_IF, depth);
  }

  /** The function's entry in the code section: its size, its locals, its code. */
  body(): number[] {
    const groups: number[][] = [];
    for (const type of this.#localTypes) {
      const last = groups.at(-1);
      if (last !== undefined && last[1] === type) last[0]!++;
      else groups.push([1, type]);
    }
    const content = [
      ...vector(groups.map(([count, type]) => [...unsigned(count!), type!])),
      ...this.#code,
      END,
    ];
    return [...unsigned(content.length), ...content];
  }
}

/** LEB128, unsigned. */
function unsigned(value: number): number[] {
  const bytes: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    bytes.push(byte);
  } while (value !== 0);
  return bytes;
}

/** LEB128, signed (32-bit). */
function signed(value: number): number[] {
  const bytes: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      bytes.push(byte);
      return bytes;
    }
    bytes.push(byte | 0x80);
  }
}

function vector(items: readonly (readonly number[])[]): number[] {
  return [...unsigned(items.length), ...items.flat()];
}

function section(id: number, content: readonly number[]): number[] {
  return [id, ...unsigned(content.length), ...content];
}

function name(text: string): number[] {
  return vector([...Buffer.from(text, 'utf8')].map((byte) => [byte]));
}
