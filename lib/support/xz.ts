/**
 * An .xz decoder in plain TypeScript (the format is tukaani.org/xz/xz-file-format.txt), so that the
 * host can unpack a bzImage's payload: Linux's scripts/xz_wrap.sh compresses i386 kernels with
 * `xz --check=crc32 --x86 --lzma2=,dict=32MiB`. It decodes a whole buffer in one call: streams
 * (concatenated ones too, with their stream padding), blocks, the index, the None, CRC32 and CRC64
 * checks, and the filter chains LZMA2 and BCJ x86 followed by LZMA2. Left out: the SHA-256 check and
 * the reserved check types, every other filter (Delta; the BCJ filters for PowerPC, IA-64, ARM,
 * ARM-Thumb, SPARC, ARM64 and RISC-V), the legacy .lzma format and streaming input. Malformed,
 * truncated or unsupported input throws an `XzError` with a one-line message.
 */

/** Malformed, truncated or unsupported xz input; the message is one line starting with "xz: ". */
export class XzError extends Error {
  override name = "XzError";
}

const TRUNCATED = "xz: truncated input";
const CORRUPT_LZMA2 = "xz: corrupt LZMA2 data";

const STREAM_HEADER_MAGIC = [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00];
const STREAM_FOOTER_MAGIC = [0x59, 0x5A];
/** Magic (6 bytes), stream flags (2), CRC32 of the flags (4). */
const STREAM_HEADER_SIZE = 12;
/** CRC32 (4 bytes), backward size (4), stream flags (2), magic (2). */
const STREAM_FOOTER_SIZE = 12;
/** Blocks, the index and stream padding all come in multiples of four bytes. */
const ALIGNMENT = 4;
/** The byte where a block header would start that says the index starts instead. */
const INDEX_INDICATOR = 0x00;

const CHECK_NONE = 0x00;
const CHECK_CRC32 = 0x01;
const CHECK_CRC64 = 0x04;
const CHECK_SHA256 = 0x0A;
/** The check field's size for each of the 16 check IDs (the spec gives sizes to unassigned IDs too). */
const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

/** Block header flags: the number of filters minus one, two optional sizes, and reserved bits. */
const BLOCK_FILTER_COUNT_MASK = 0x03;
const BLOCK_RESERVED_FLAGS = 0x3C;
const BLOCK_HAS_COMPRESSED_SIZE = 0x40;
const BLOCK_HAS_UNCOMPRESSED_SIZE = 0x80;

const FILTER_BCJ_X86 = 0x04;
const FILTER_LZMA2 = 0x21;
/** Filters this decoder knows by name but does not implement, for the error message. */
const UNSUPPORTED_FILTER_NAMES = new Map([
  [0x03, "Delta"],
  [0x05, "BCJ PowerPC"],
  [0x06, "BCJ IA-64"],
  [0x07, "BCJ ARM"],
  [0x08, "BCJ ARM-Thumb"],
  [0x09, "BCJ SPARC"],
  [0x0A, "BCJ ARM64"],
  [0x0B, "BCJ RISC-V"],
]);
/** The largest LZMA2 dictionary size property (2 or 3 times a power of two; 40 means 4 GiB - 1). */
const LZMA2_DICTIONARY_PROPERTY_MAX = 40;

/** A variable-length integer has at most nine bytes of seven bits each. */
const VLI_BYTES_MAX = 9;
const VLI_PAYLOAD_MASK = 0x7F;
const VLI_CONTINUE = 0x80;

/** The output buffer starts at this size when the input's index gives no better figure. */
const MIN_CAPACITY = 64 * 1024;
/** A guessed compression ratio for that first size. */
const GUESSED_RATIO = 4;
/** Never allocate more than this up front on the word of an index (a forged one could claim anything). */
const MAX_PREALLOCATION = 256 * 1024 * 1024;

/**
 * Decompresses a complete .xz file (one or more streams) and returns its contents. Throws an
 * `XzError` when the input is not xz, is truncated or corrupt, fails its checks, or uses a filter or
 * check that is not supported.
 */
export function decompressXz(input: Uint8Array): Uint8Array {
  const output = new OutputBuffer(initialCapacity(input));
  const lzma2 = new Lzma2Decoder();
  let position = 0;
  for (;;) {
    position = decodeStream(input, position, output, lzma2);
    position = skipStreamPadding(input, position);
    if (position === input.length) return output.finish();
  }
}

// ---- Streams, blocks and the index ----

/** One decoded block's sizes, as the index records them. */
interface BlockSizes {
  /** Header, compressed data and check, without the block padding. */
  unpaddedSize: number;
  uncompressedSize: number;
}

/** Decodes the stream that starts at `start` into `output` and returns where its footer ends. */
function decodeStream(input: Uint8Array, start: number, output: OutputBuffer, lzma2: Lzma2Decoder): number {
  const reader = new FieldReader(input, start, input.length, "stream header");
  const header = reader.bytes(STREAM_HEADER_SIZE);
  if (!STREAM_HEADER_MAGIC.every((byte, i) => header[i] === byte)) {
    throw new XzError("xz: not xz data (bad stream header magic)");
  }
  const flags = header.subarray(6, 8);
  if (crc32(flags) !== readUint32(header, 8)) throw new XzError("xz: CRC32 mismatch in stream header");
  const checkType = flags[1];
  if (flags[0] !== 0 || checkType >= CHECK_SIZES.length) throw new XzError("xz: unsupported stream flags");
  if (checkType === CHECK_SHA256) throw new XzError("xz: the SHA-256 check is not supported");
  if (checkType !== CHECK_NONE && checkType !== CHECK_CRC32 && checkType !== CHECK_CRC64) {
    throw new XzError(`xz: unsupported check type ${checkType}`);
  }

  const blocks: BlockSizes[] = [];
  for (;;) {
    if (reader.position >= input.length) throw new XzError(TRUNCATED);
    if (input[reader.position] === INDEX_INDICATOR) break;
    reader.position = decodeBlock(input, reader.position, output, lzma2, checkType, blocks);
  }

  const indexStart = reader.position;
  const records = readIndex(new FieldReader(input, indexStart, input.length, "index"));
  const indexSize = records.end - indexStart;
  if (
    records.blocks.length !== blocks.length ||
    records.blocks.some((record, i) =>
      record.unpaddedSize !== blocks[i].unpaddedSize || record.uncompressedSize !== blocks[i].uncompressedSize
    )
  ) {
    throw new XzError("xz: the index does not match the blocks");
  }

  reader.position = records.end;
  const footer = reader.bytes(STREAM_FOOTER_SIZE);
  if (!STREAM_FOOTER_MAGIC.every((byte, i) => footer[10 + i] === byte)) {
    throw new XzError("xz: bad stream footer magic");
  }
  if (crc32(footer.subarray(4, 10)) !== readUint32(footer, 0)) {
    throw new XzError("xz: CRC32 mismatch in stream footer");
  }
  if (footer[8] !== flags[0] || footer[9] !== flags[1]) {
    throw new XzError("xz: stream footer flags differ from the header's");
  }
  if (backwardSize(footer) !== indexSize) throw new XzError("xz: stream footer gives the wrong index size");
  return reader.position;
}

/** The index size that a stream footer records (stored as size / 4 - 1). */
function backwardSize(footer: Uint8Array): number {
  return (readUint32(footer, 4) + 1) * ALIGNMENT;
}

/**
 * Skips the zero bytes after a stream (a multiple of four) and returns where the next stream starts,
 * or the input's length at its end.
 */
function skipStreamPadding(input: Uint8Array, start: number): number {
  let position = start;
  while (position < input.length && input[position] === 0) position++;
  if ((position - start) % ALIGNMENT !== 0) {
    throw new XzError("xz: stream padding is not a multiple of 4 bytes");
  }
  if (position < input.length && input[position] !== STREAM_HEADER_MAGIC[0]) {
    throw new XzError("xz: trailing garbage after the stream");
  }
  return position;
}

/**
 * Decodes the block whose header starts at `start`, appends its contents to `output` and its sizes
 * to `blocks`, and returns where the block (with padding and check) ends.
 */
function decodeBlock(
  input: Uint8Array,
  start: number,
  output: OutputBuffer,
  lzma2: Lzma2Decoder,
  checkType: number,
  blocks: BlockSizes[],
): number {
  const headerSize = (input[start] + 1) * ALIGNMENT;
  const headerEnd = start + headerSize;
  if (headerEnd > input.length) throw new XzError(TRUNCATED);
  const crcAt = headerEnd - 4;
  if (crc32(input.subarray(start, crcAt)) !== readUint32(input, crcAt)) {
    throw new XzError("xz: CRC32 mismatch in block header");
  }
  const header = new FieldReader(input, start + 1, crcAt, "block header");
  const flags = header.byte();
  if ((flags & BLOCK_RESERVED_FLAGS) !== 0) throw new XzError("xz: unsupported block header flags");
  const compressedSize = (flags & BLOCK_HAS_COMPRESSED_SIZE) !== 0 ? header.vli() : -1;
  const uncompressedSize = (flags & BLOCK_HAS_UNCOMPRESSED_SIZE) !== 0 ? header.vli() : -1;
  const bcjStartOffsets = readFilterChain(header, (flags & BLOCK_FILTER_COUNT_MASK) + 1);
  while (header.position < crcAt) {
    if (header.byte() !== 0) throw new XzError("xz: corrupt block header");
  }

  let dataEnd = input.length;
  if (compressedSize >= 0) {
    if (compressedSize > input.length - headerEnd) throw new XzError(TRUNCATED);
    dataEnd = headerEnd + compressedSize;
  }
  const outputStart = output.length;
  if (uncompressedSize >= 0) output.reserve(Math.min(uncompressedSize, MAX_PREALLOCATION));
  const compressedEnd = lzma2.decode(input, headerEnd, dataEnd, output);
  if (compressedSize >= 0 && compressedEnd !== dataEnd) {
    throw new XzError("xz: block compressed size differs from its header");
  }
  const produced = output.length - outputStart;
  if (uncompressedSize >= 0 && produced !== uncompressedSize) {
    throw new XzError("xz: block uncompressed size differs from its header");
  }
  for (let i = bcjStartOffsets.length - 1; i >= 0; i--) {
    bcjX86Decode(output.bytes, outputStart, output.length, bcjStartOffsets[i]);
  }

  const trailer = new FieldReader(input, compressedEnd, input.length, "block");
  trailer.zeroPadding(start);
  const checkSize = CHECK_SIZES[checkType];
  const check = trailer.bytes(checkSize);
  const contents = output.bytes.subarray(outputStart, output.length);
  if (checkType === CHECK_CRC32 && crc32(contents) !== readUint32(check, 0)) {
    throw new XzError("xz: CRC32 mismatch in block data");
  }
  if (checkType === CHECK_CRC64 && !crc64Matches(contents, check)) {
    throw new XzError("xz: CRC64 mismatch in block data");
  }
  blocks.push({
    unpaddedSize: headerSize + (compressedEnd - headerEnd) + checkSize,
    uncompressedSize: produced,
  });
  return trailer.position;
}

/**
 * Reads `count` filter flags: any number of BCJ x86 filters, then LZMA2, which must come last.
 * Returns the BCJ filters' start offsets, to be undone last to first. LZMA2's one property, the
 * dictionary size, is checked but not needed: the whole output serves as the dictionary.
 */
function readFilterChain(header: FieldReader, count: number): number[] {
  const bcjStartOffsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = header.vli();
    const properties = header.bytes(header.vli());
    const last = i === count - 1;
    if (id === FILTER_LZMA2 && last) {
      if (properties.length !== 1 || properties[0] > LZMA2_DICTIONARY_PROPERTY_MAX) {
        throw new XzError("xz: bad LZMA2 filter properties");
      }
    } else if (id === FILTER_BCJ_X86 && !last) {
      if (properties.length !== 0 && properties.length !== 4) {
        throw new XzError("xz: bad BCJ x86 filter properties");
      }
      bcjStartOffsets.push(properties.length === 4 ? readUint32(properties, 0) : 0);
    } else if (id === FILTER_LZMA2 || id === FILTER_BCJ_X86) {
      throw new XzError("xz: bad filter chain (LZMA2 must come last, and only once)");
    } else {
      const name = UNSUPPORTED_FILTER_NAMES.get(id);
      throw new XzError(
        `xz: unsupported filter 0x${id.toString(16).padStart(2, "0")}${name ? ` (${name})` : ""}`,
      );
    }
  }
  return bcjStartOffsets;
}

/** Reads an index from its indicator byte to its CRC32; returns its records and where it ends. */
function readIndex(reader: FieldReader): { blocks: BlockSizes[]; end: number } {
  const start = reader.position;
  if (reader.byte() !== INDEX_INDICATOR) throw new XzError("xz: corrupt index");
  const count = reader.vli();
  const blocks: BlockSizes[] = [];
  for (let i = 0; i < count; i++) {
    blocks.push({ unpaddedSize: reader.vli(), uncompressedSize: reader.vli() });
  }
  reader.zeroPadding(start);
  const crcAt = reader.position;
  if (crc32(reader.input.subarray(start, crcAt)) !== reader.uint32()) {
    throw new XzError("xz: CRC32 mismatch in index");
  }
  return { blocks, end: reader.position };
}

/**
 * The output size that the last stream's index promises, read backwards from the input's end, or 0
 * when that does not work out (a corrupt or truncated input fails later, with a proper message).
 */
function indexedOutputSize(input: Uint8Array): number {
  let end = input.length;
  while (end >= ALIGNMENT && readUint32(input, end - ALIGNMENT) === 0) end -= ALIGNMENT;
  const footerStart = end - STREAM_FOOTER_SIZE;
  if (footerStart < STREAM_HEADER_SIZE) return 0;
  const footer = input.subarray(footerStart, end);
  if (crc32(footer.subarray(4, 10)) !== readUint32(footer, 0)) return 0;
  const indexStart = footerStart - backwardSize(footer);
  if (indexStart < STREAM_HEADER_SIZE) return 0;
  try {
    const index = readIndex(new FieldReader(input, indexStart, footerStart, "index"));
    return index.blocks.reduce((sum, block) => sum + block.uncompressedSize, 0);
  } catch (e) {
    if (e instanceof XzError) return 0;
    throw e;
  }
}

/** How big the output buffer starts: the index's figure when there is one, else a guess. */
function initialCapacity(input: Uint8Array): number {
  const indexed = indexedOutputSize(input);
  const size = indexed > 0 ? indexed : Math.max(MIN_CAPACITY, input.length * GUESSED_RATIO);
  return Math.min(size, MAX_PREALLOCATION);
}

/**
 * Reads the container's fields (bytes, little-endian integers, variable-length integers) from
 * `input[position, end)`. Running past `end` throws "truncated input" when `end` is the input's end,
 * and "corrupt <what>" when it is a limit the format set (a block header's size).
 */
class FieldReader {
  constructor(
    readonly input: Uint8Array,
    public position: number,
    readonly end: number,
    readonly what: string,
  ) {}

  byte(): number {
    this.#need(1);
    return this.input[this.position++];
  }

  uint32(): number {
    this.#need(4);
    const value = readUint32(this.input, this.position);
    this.position += 4;
    return value;
  }

  /** `count` bytes as a view into the input. */
  bytes(count: number): Uint8Array {
    this.#need(count);
    const view = this.input.subarray(this.position, this.position + count);
    this.position += count;
    return view;
  }

  /** A variable-length integer: seven bits a byte, low bits first, the top bit set on all but the last. */
  vli(): number {
    let value = 0;
    for (let i = 0; i < VLI_BYTES_MAX; i++) {
      const byte = this.byte();
      value += (byte & VLI_PAYLOAD_MASK) * 2 ** (7 * i);
      if ((byte & VLI_CONTINUE) === 0) {
        // A final zero byte would be a longer spelling of a shorter number, which the format forbids.
        if (byte === 0 && i > 0) break;
        if (value > Number.MAX_SAFE_INTEGER) throw new XzError(`xz: size in ${this.what} too large`);
        return value;
      }
    }
    throw new XzError(`xz: corrupt ${this.what}`);
  }

  /** Skips zero bytes up to the next multiple of four bytes from `base`; anything else is corrupt. */
  zeroPadding(base: number): void {
    while ((this.position - base) % ALIGNMENT !== 0) {
      if (this.byte() !== 0) throw new XzError(`xz: corrupt padding in ${this.what}`);
    }
  }

  #need(count: number): void {
    if (count > this.end - this.position) {
      throw new XzError(this.end === this.input.length ? TRUNCATED : `xz: corrupt ${this.what}`);
    }
  }
}

function readUint32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | bytes[at + 3] << 24) >>> 0;
}

/**
 * The decoded bytes so far. `bytes` is also the LZMA dictionary (the decoder copies matches from
 * earlier output), so it is replaced, never chunked, when it grows; it doubles each time, so the
 * copying costs at most as much as the output itself.
 */
class OutputBuffer {
  bytes: Uint8Array;
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
  }

  /** Makes room for `count` more bytes after `length`. */
  reserve(count: number): void {
    const needed = this.length + count;
    if (needed <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, this.bytes.length * 2));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  /** The output, exactly `length` bytes long (a copy only when the buffer is larger). */
  finish(): Uint8Array {
    return this.length === this.bytes.length ? this.bytes : this.bytes.slice(0, this.length);
  }
}

// ---- LZMA2 ----
// Chunks of LZMA data or stored bytes, with resets of the dictionary, the state and the properties
// between them. The LZMA part follows the LZMA SDK's LzmaDec.c and xz-embedded.

/** Chunk control bytes: 0 ends the data, 1 and 2 are stored chunks, 0x80 and up are LZMA chunks. */
const CONTROL_END = 0x00;
const CONTROL_STORED_DICTIONARY_RESET = 0x01;
const CONTROL_STORED = 0x02;
const CONTROL_LZMA = 0x80;
const CONTROL_LZMA_STATE_RESET = 0xA0;
const CONTROL_LZMA_NEW_PROPERTIES = 0xC0;
const CONTROL_LZMA_DICTIONARY_RESET = 0xE0;
/** An LZMA chunk's control byte holds bits 16 to 20 of its uncompressed size minus one. */
const CONTROL_SIZE_HIGH_BITS = 0x1F;
/** The properties byte is (pb * 5 + lp) * 9 + lc; LZMA2 requires lc + lp <= 4 and pb <= 4. */
const PROPERTIES_MAX = (4 * 5 + 4) * 9 + 8;
const LITERAL_CONTEXT_BITS_MAX = 4;

/** Range decoder: 11-bit probabilities that move by 1/32 of the distance to 0 or 1. */
const PROBABILITY_BITS = 11;
const PROBABILITY_ONE = 1 << PROBABILITY_BITS;
const PROBABILITY_HALF = PROBABILITY_ONE >>> 1;
const PROBABILITY_MOVE_BITS = 5;
/** The range is renormalized (shifted left a byte) when it falls below 2^24. */
const RANGE_TOP = 1 << 24;
/** Each LZMA chunk's range coder starts with a zero byte and four bytes of code. */
const RANGE_INIT_BYTES = 5;

/** The twelve states remember the kinds of the last few symbols; below 7 the last was a literal. */
const STATE_COUNT = 12;
const LITERAL_STATES = 7;
const POSITION_STATES_MAX = 16;
const POSITION_STATE_SHIFT = 4;

/** Match lengths: 2 to 9 (low), 10 to 17 (middle), 18 to 273 (high): bit trees, low and middle alike. */
const MATCH_LENGTH_MIN = 2;
const LENGTH_LOW_SYMBOLS = 8;
const LENGTH_MID_SYMBOLS = 8;
const LENGTH_HIGH_SYMBOLS = 256;
const LENGTH_LOW_BITS_SHIFT = 3;
/** A length coder's probabilities: two choice bits, low and middle trees per position state, then high. */
const LENGTH_CHOICE = 0;
const LENGTH_CHOICES = 2;
const LENGTH_LOW = LENGTH_CHOICE + LENGTH_CHOICES;
const LENGTH_MID = LENGTH_LOW + POSITION_STATES_MAX * LENGTH_LOW_SYMBOLS;
const LENGTH_HIGH = LENGTH_MID + POSITION_STATES_MAX * LENGTH_MID_SYMBOLS;
const LENGTH_PROBABILITIES = LENGTH_HIGH + LENGTH_HIGH_SYMBOLS;

/** Distances: a 6-bit slot (per length state), then more bits from trees, direct bits and an aligned tree. */
const DISTANCE_LENGTH_STATES = 4;
const DISTANCE_SLOTS = 64;
const DISTANCE_SLOT_BITS_SHIFT = 6;
const DISTANCE_MODEL_START = 4;
const DISTANCE_MODEL_END = 14;
const FULL_DISTANCES = 1 << (DISTANCE_MODEL_END >>> 1);
const ALIGN_BITS = 4;
const ALIGN_SIZE = 1 << ALIGN_BITS;

/** One literal coder: 0x300 probabilities (a plain 8-bit tree, and the two trees of a matched literal). */
const LITERAL_CODER_SIZE = 0x300;

/**
 * All probabilities live in one Uint16Array; these are the offsets of each group in it. IS_REP0,
 * IS_REP1 and IS_REP2 lie STATE_COUNT apart, and a length coder's two choice bits side by side, as
 * the unary codes in #decodeSlice expect. A bit tree leaves its first entry unused (see BIT_LEAVES).
 */
const IS_MATCH = 0;
const IS_REP = IS_MATCH + STATE_COUNT * POSITION_STATES_MAX;
const IS_REP0 = IS_REP + STATE_COUNT;
const IS_REP1 = IS_REP0 + STATE_COUNT;
const IS_REP2 = IS_REP1 + STATE_COUNT;
const IS_REP0_LONG = IS_REP2 + STATE_COUNT;
const DISTANCE_SLOT = IS_REP0_LONG + STATE_COUNT * POSITION_STATES_MAX;
const DISTANCE_SPECIAL = DISTANCE_SLOT + DISTANCE_LENGTH_STATES * DISTANCE_SLOTS;
const DISTANCE_ALIGN = DISTANCE_SPECIAL + FULL_DISTANCES - DISTANCE_MODEL_END;
const MATCH_LENGTH = DISTANCE_ALIGN + ALIGN_SIZE;
const REP_LENGTH = MATCH_LENGTH + LENGTH_PROBABILITIES;
const LITERAL = REP_LENGTH + LENGTH_PROBABILITIES;
const PROBABILITIES_MAX = LITERAL + (LITERAL_CODER_SIZE << LITERAL_CONTEXT_BITS_MAX);

/** Where LzmaDecoder keeps the range decoder's registers between calls. */
const RANGE = 0;
const CODE = 1;
/** How many bytes LzmaDecoder decodes a call (see #decodeSlice). */
const SLICE_SIZE = 4096;
/** Matches at least this long, that do not overlap what they copy, go through copyWithin. */
const COPY_WITHIN_MIN = 32;

/**
 * The steps of decoding one symbol (a literal or a match). Each step decodes one bit tree (a single
 * bit is a tree with two leaves), and its value picks the next step, until the symbol is complete.
 */
const STEP_IS_MATCH = 0; // a literal, or a match?
const STEP_LITERAL = 1; // the literal's eight bits
const STEP_IS_REP = 2; // a match with a new distance, or with one of the last four?
const STEP_REP_INDEX = 3; // which of the last four (one bit at a time)?
const STEP_IS_REP0_LONG = 4; // one byte from the last distance (a "short rep"), or a longer match?
const STEP_LENGTH_CHOICE = 5; // which range is the length in (one bit at a time)?
const STEP_LENGTH = 6; // the length within its range
const STEP_DISTANCE_SLOT = 7; // the top bits of a new distance and how many follow
const STEP_DISTANCE_REVERSE = 8; // its low bits, from a tree read least significant bit first
/**
 * A single bit is a bit tree with two leaves. A tree's nodes are numbered from 1 (the root), so a
 * tree based at `tree` reads `tree + 1` onwards, and a single bit's tree is based one before its
 * probability.
 */
const BIT_LEAVES = 2;
const LITERAL_LEAVES = 0x100;

/** Decodes LZMA2 data; one instance serves every block of a `decompressXz` call. */
class Lzma2Decoder {
  readonly #lzma = new LzmaDecoder();

  /**
   * Decodes the LZMA2 data in `input[start, end)` onto the end of `output` and returns where its end
   * marker finishes. With the whole output at hand, a match may reach back as far as the last
   * dictionary reset, whatever the dictionary size the filter properties declared.
   */
  decode(input: Uint8Array, start: number, end: number, output: OutputBuffer): number {
    const lzma = this.#lzma;
    const overrun = end === input.length ? TRUNCATED : CORRUPT_LZMA2;
    let needDictionaryReset = true;
    let needProperties = true;
    let dictionaryStart = output.length;
    let position = start;
    for (;;) {
      if (position >= end) throw new XzError(overrun);
      const control = input[position++];
      if (control === CONTROL_END) return position;
      if (control >= CONTROL_LZMA_DICTIONARY_RESET || control === CONTROL_STORED_DICTIONARY_RESET) {
        // A new dictionary needs new properties before the next LZMA chunk.
        needDictionaryReset = false;
        needProperties = true;
        dictionaryStart = output.length;
      } else if (needDictionaryReset) {
        throw new XzError(CORRUPT_LZMA2);
      }

      if (control >= CONTROL_LZMA) {
        if (end - position < 4) throw new XzError(overrun);
        const uncompressedSize = ((control & CONTROL_SIZE_HIGH_BITS) << 16) +
          (input[position] << 8) + input[position + 1] + 1;
        const compressedSize = (input[position + 2] << 8) + input[position + 3] + 1;
        position += 4;
        if (control >= CONTROL_LZMA_NEW_PROPERTIES) {
          if (position >= end) throw new XzError(overrun);
          lzma.setProperties(input[position++]);
          needProperties = false;
        } else if (needProperties) {
          throw new XzError(CORRUPT_LZMA2);
        } else if (control >= CONTROL_LZMA_STATE_RESET) {
          lzma.resetState();
        }
        if (compressedSize > end - position) throw new XzError(overrun);
        output.reserve(uncompressedSize);
        lzma.decodeChunk(
          input,
          position,
          position + compressedSize,
          output,
          uncompressedSize,
          dictionaryStart,
        );
        position += compressedSize;
      } else if (control === CONTROL_STORED || control === CONTROL_STORED_DICTIONARY_RESET) {
        if (end - position < 2) throw new XzError(overrun);
        const size = (input[position] << 8) + input[position + 1] + 1;
        position += 2;
        if (size > end - position) throw new XzError(overrun);
        output.reserve(size);
        output.bytes.set(input.subarray(position, position + size), output.length);
        output.length += size;
        position += size;
      } else {
        throw new XzError(CORRUPT_LZMA2);
      }
    }
  }
}

/**
 * The LZMA decoder proper, and the state that lasts from chunk to chunk: the probabilities, the
 * last four match distances, the state machine and the lc/lp/pb properties. Distances are kept minus
 * one, as in LzmaDec.c (a distance of 0 copies the previous byte).
 */
class LzmaDecoder {
  readonly #probabilities = new Uint16Array(PROBABILITIES_MAX);
  #literalContextBits = 0;
  #literalPositionMask = 0;
  #positionMask = 0;
  #state = 0;
  #rep0 = 0;
  #rep1 = 0;
  #rep2 = 0;
  #rep3 = 0;
  // The range decoder, over input[#inputPosition, #inputEnd) of the current chunk.
  #input: Uint8Array = new Uint8Array(0);
  #inputPosition = 0;
  #inputEnd = 0;
  /** The range and the code: uint32 registers, which fields would box (they pass 2^30). */
  readonly #registers = new Uint32Array(2);

  /** Takes a properties byte (lc, lp, pb) and resets the state, as a properties change implies. */
  setProperties(properties: number): void {
    if (properties > PROPERTIES_MAX) throw new XzError(CORRUPT_LZMA2);
    const literalContextBits = properties % 9;
    const literalPositionBits = Math.floor(properties / 9) % 5;
    const positionBits = Math.floor(properties / 45);
    if (literalContextBits + literalPositionBits > LITERAL_CONTEXT_BITS_MAX) throw new XzError(CORRUPT_LZMA2);
    this.#literalContextBits = literalContextBits;
    this.#literalPositionMask = (1 << literalPositionBits) - 1;
    this.#positionMask = (1 << positionBits) - 1;
    this.resetState();
  }

  /** Forgets everything learnt: probabilities back to one half, state and distances to zero. */
  resetState(): void {
    const literalCoders = (this.#literalPositionMask + 1) << this.#literalContextBits;
    this.#probabilities.fill(PROBABILITY_HALF, 0, LITERAL + literalCoders * LITERAL_CODER_SIZE);
    this.#state = 0;
    this.#rep0 = 0;
    this.#rep1 = 0;
    this.#rep2 = 0;
    this.#rep3 = 0;
  }

  /**
   * Decodes one LZMA chunk, `input[start, end)`, into exactly `size` bytes at the end of `output`
   * (which has room for them). Matches may reach back to `dictionaryStart`. The chunk must end
   * exactly: every input byte used, the range decoder's code back to zero, no match left over.
   */
  decodeChunk(
    input: Uint8Array,
    start: number,
    end: number,
    output: OutputBuffer,
    size: number,
    dictionaryStart: number,
  ): void {
    if (end - start < RANGE_INIT_BYTES || input[start] !== 0) throw new XzError(CORRUPT_LZMA2);
    this.#input = input;
    this.#inputPosition = start + RANGE_INIT_BYTES;
    this.#inputEnd = end;
    this.#registers[RANGE] = 0xFFFFFFFF;
    this.#registers[CODE] = readUint32BigEndian(input, start + 1);
    const outputEnd = output.length + size;
    let position = output.length;
    while (position < outputEnd) {
      position = this.#decodeSlice(
        output.bytes,
        position,
        Math.min(position + SLICE_SIZE, outputEnd),
        outputEnd,
        dictionaryStart,
      );
    }
    output.length = position;

    // The encoder's flush leaves a byte for one last normalization when the range is small, and
    // brings the code back to zero.
    let code = this.#registers[CODE];
    if (this.#registers[RANGE] < RANGE_TOP) {
      if (this.#inputPosition >= end) throw new XzError(CORRUPT_LZMA2);
      code = code * 256 + input[this.#inputPosition++];
    }
    if (this.#inputPosition !== end || code !== 0) throw new XzError(CORRUPT_LZMA2);
  }

  /**
   * Decodes symbols into `bytes` from `position` until one ends at or past `stop`, and returns where
   * the last one ended; no match may run past `outputEnd`, the end of the chunk.
   *
   * This is the hot loop, so the range decoder lives in local variables and its bit decoding is
   * written out once, in the bit-tree loop that every step goes through (see STEP_IS_MATCH). It runs
   * for slices of a chunk rather than whole ones so that the engine compiles it as a function, with
   * its variables kept as integers, instead of only entering the running loop with boxed ones.
   */
  #decodeSlice(
    bytes: Uint8Array,
    start: number,
    stop: number,
    outputEnd: number,
    dictionaryStart: number,
  ): number {
    const input = this.#input;
    const end = this.#inputEnd;
    let inputPosition = this.#inputPosition;
    let range = this.#registers[RANGE];
    let code = this.#registers[CODE];
    const probabilities = this.#probabilities;
    const literalContextBits = this.#literalContextBits;
    const literalShift = 8 - literalContextBits;
    const literalPositionMask = this.#literalPositionMask;
    const positionMask = this.#positionMask;
    let state = this.#state;
    let rep0 = this.#rep0;
    let rep1 = this.#rep1;
    let rep2 = this.#rep2;
    let rep3 = this.#rep3;
    let position = start;

    while (position < stop) {
      const positionState = (position - dictionaryStart) & positionMask;
      let step = STEP_IS_MATCH;
      // The tree being decoded: its node probabilities are at tree + 1 to tree + leaves - 1.
      let tree = IS_MATCH + (state << POSITION_STATE_SHIFT) + positionState - 1;
      let leaves = BIT_LEAVES;
      // A literal right after a match is coded against the byte the match would have copied next:
      // while the bits agree, `offset` selects a second set of trees. Otherwise it stays 0.
      let offset = 0;
      let matchByte = 0;
      let nextState = state;
      let repIndex = 0;
      let lengthRange = 0;
      let lengthCoder = MATCH_LENGTH;
      let length = 0;
      let distance = 0;
      let reverseBits = 0;

      for (;;) {
        let symbol = 1;
        do {
          matchByte <<= 1;
          const matchBit = matchByte & offset;
          const index = tree + offset + matchBit + symbol;
          if (range < RANGE_TOP) {
            if (inputPosition >= end) throw new XzError(CORRUPT_LZMA2);
            range = (range << 8) >>> 0;
            code = ((code << 8) | input[inputPosition++]) >>> 0;
          }
          const probability = probabilities[index];
          const bound = Math.imul(range >>> PROBABILITY_BITS, probability) >>> 0;
          if (code < bound) {
            range = bound;
            probabilities[index] = probability + ((PROBABILITY_ONE - probability) >>> PROBABILITY_MOVE_BITS);
            symbol <<= 1;
            offset &= ~matchBit;
          } else {
            range = (range - bound) >>> 0;
            code = (code - bound) >>> 0;
            probabilities[index] = probability - (probability >>> PROBABILITY_MOVE_BITS);
            symbol = (symbol << 1) | 1;
            offset &= matchBit;
          }
        } while (symbol < leaves);
        const value = symbol - leaves;

        // `continue` goes on to the next step's tree; `break` ends the symbol.
        switch (step) {
          case STEP_IS_MATCH:
            if (value === 0) {
              const previous = position > dictionaryStart ? bytes[position - 1] : 0;
              tree = LITERAL + LITERAL_CODER_SIZE *
                  ((((position - dictionaryStart) & literalPositionMask) << literalContextBits) +
                    (previous >>> literalShift));
              leaves = LITERAL_LEAVES;
              if (state >= LITERAL_STATES) {
                offset = LITERAL_LEAVES;
                matchByte = bytes[position - rep0 - 1];
              }
              nextState = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
              step = STEP_LITERAL;
            } else {
              tree = IS_REP + state - 1;
              step = STEP_IS_REP;
            }
            continue;
          case STEP_LITERAL:
            bytes[position++] = value;
            break;
          case STEP_IS_REP:
            if (value === 0) {
              nextState = state < LITERAL_STATES ? 7 : 10;
              tree = MATCH_LENGTH + LENGTH_CHOICE - 1;
              step = STEP_LENGTH_CHOICE;
            } else {
              nextState = state < LITERAL_STATES ? 8 : 11;
              lengthCoder = REP_LENGTH;
              tree = IS_REP0 + state - 1;
              step = STEP_REP_INDEX;
            }
            continue;
          case STEP_REP_INDEX:
            // Which of the last four distances: a unary code, a bit from IS_REP0, IS_REP1 and IS_REP2
            // in turn (they lie STATE_COUNT apart) for as long as the bits are 1.
            if (value !== 0) {
              repIndex++;
              if (repIndex < 3) {
                tree += STATE_COUNT;
                continue;
              }
            }
            if (repIndex === 0) {
              tree = IS_REP0_LONG + (state << POSITION_STATE_SHIFT) + positionState - 1;
              step = STEP_IS_REP0_LONG;
              continue;
            }
            // The chosen distance moves to the front, the ones before it down.
            distance = repIndex === 1 ? rep1 : repIndex === 2 ? rep2 : rep3;
            if (repIndex === 3) rep3 = rep2;
            if (repIndex >= 2) rep2 = rep1;
            rep1 = rep0;
            rep0 = distance;
            tree = REP_LENGTH + LENGTH_CHOICE - 1;
            step = STEP_LENGTH_CHOICE;
            continue;
          case STEP_IS_REP0_LONG:
            if (value === 0) {
              length = 1;
              nextState = state < LITERAL_STATES ? 9 : 11;
              break;
            }
            tree = REP_LENGTH + LENGTH_CHOICE - 1;
            step = STEP_LENGTH_CHOICE;
            continue;
          case STEP_LENGTH_CHOICE:
            // Which range the length is in, 2 to 9, 10 to 17 or 18 to 273: a unary code, a bit from
            // each of the two choice probabilities in turn for as long as the bits are 1.
            if (value !== 0 && lengthRange === 0) {
              lengthRange = 1;
              tree++;
              continue;
            }
            lengthRange += value;
            length = MATCH_LENGTH_MIN + lengthRange * LENGTH_LOW_SYMBOLS;
            if (lengthRange < 2) {
              // The low trees, one per position state, then the middle ones.
              tree = lengthCoder + LENGTH_LOW + lengthRange * (LENGTH_MID - LENGTH_LOW) +
                (positionState << LENGTH_LOW_BITS_SHIFT);
              leaves = LENGTH_LOW_SYMBOLS;
            } else {
              tree = lengthCoder + LENGTH_HIGH;
              leaves = LENGTH_HIGH_SYMBOLS;
            }
            step = STEP_LENGTH;
            continue;
          case STEP_LENGTH:
            length += value;
            if (lengthCoder === REP_LENGTH) break;
            // A new distance follows, and the older ones move down.
            rep3 = rep2;
            rep2 = rep1;
            rep1 = rep0;
            tree = DISTANCE_SLOT +
              (Math.min(length - MATCH_LENGTH_MIN, DISTANCE_LENGTH_STATES - 1) << DISTANCE_SLOT_BITS_SHIFT);
            leaves = DISTANCE_SLOTS;
            step = STEP_DISTANCE_SLOT;
            continue;
          case STEP_DISTANCE_SLOT:
            if (value >= DISTANCE_MODEL_START) {
              // The slot gives the top two bits and how many follow: for small distances all from a
              // reverse tree, for large ones direct bits (probability one half) and then four.
              const followingBits = (value >>> 1) - 1;
              distance = 2 | (value & 1);
              if (value < DISTANCE_MODEL_END) {
                distance <<= followingBits;
                reverseBits = followingBits;
                tree = DISTANCE_SPECIAL + distance - value - 1;
              } else {
                for (let i = followingBits - ALIGN_BITS; i > 0; i--) {
                  if (range < RANGE_TOP) {
                    if (inputPosition >= end) throw new XzError(CORRUPT_LZMA2);
                    range = (range << 8) >>> 0;
                    code = ((code << 8) | input[inputPosition++]) >>> 0;
                  }
                  range >>>= 1;
                  const bit = code >= range ? 1 : 0;
                  code = (code - (range & -bit)) >>> 0;
                  distance = distance * 2 + bit;
                }
                distance *= ALIGN_SIZE;
                reverseBits = ALIGN_BITS;
                tree = DISTANCE_ALIGN;
              }
              leaves = 1 << reverseBits;
              step = STEP_DISTANCE_REVERSE;
              continue;
            }
            rep0 = value;
            break;
          case STEP_DISTANCE_REVERSE:
            rep0 = distance;
            for (let i = 0, bits = value; i < reverseBits; i++, bits >>>= 1) {
              rep0 += (bits & 1) << (reverseBits - 1 - i);
            }
            break;
        }
        break;
      }

      state = nextState;
      if (length !== 0) {
        // A match may reach back no further than the dictionary (which also catches a repeated
        // distance in an empty one, and the end marker 2^32 - 1, not allowed in LZMA2), and may
        // not run past the chunk.
        if (rep0 >= position - dictionaryStart || length > outputEnd - position) {
          throw new XzError(CORRUPT_LZMA2);
        }
        let from = position - rep0 - 1;
        if (length >= COPY_WITHIN_MIN && rep0 >= length) {
          bytes.copyWithin(position, from, from + length);
          position += length;
        } else {
          const matchEnd = position + length;
          do bytes[position++] = bytes[from++]; while (position < matchEnd);
        }
      }
    }

    this.#inputPosition = inputPosition;
    this.#registers[RANGE] = range;
    this.#registers[CODE] = code;
    this.#state = state;
    this.#rep0 = rep0;
    this.#rep1 = rep1;
    this.#rep2 = rep2;
    this.#rep3 = rep3;
    return position;
  }
}

function readUint32BigEndian(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 24 | bytes[at + 1] << 16 | bytes[at + 2] << 8 | bytes[at + 3]) >>> 0;
}

// ---- BCJ x86 ----
// The encoder turned the relative targets of E8 (call) and E9 (jmp) instructions into absolute ones,
// so that calls to one function look alike; this turns them back. After xz's simple/x86.c and
// xz-embedded's bcj_x86().

/** Given which of the three bytes before an E8/E9 were E8/E9 too, whether it may be converted. */
const BCJ_MASK_ALLOWED = [true, true, true, false, true, false, false, false];
/** Given the same mask, which byte of the 32-bit operand to test (counted from its top). */
const BCJ_MASK_BYTE = [0, 1, 2, 2, 3, 3, 3, 3];
/** The opcode bytes E8 and E9 match after masking their low bit. */
const BCJ_OPCODE_MASK = 0xFE;
const BCJ_OPCODE = 0xE8;
/** An instruction is the opcode and a 32-bit operand. */
const BCJ_INSTRUCTION_SIZE = 5;
/** The converted operand keeps 25 bits, sign-extended from bit 24. */
const BCJ_SIGN_EXTEND_SHIFT = 7;

/** Whether an operand's top byte (or the byte tested for it) is 0x00 or 0xFF: a plausible near target. */
function isBcjTopByte(byte: number): boolean {
  return byte === 0x00 || byte === 0xFF;
}

/**
 * Undoes the BCJ x86 filter in place over `buffer[start, end)`, a whole block, whose first byte was
 * at `startOffset` for the encoder. The last four bytes can hold no whole instruction and stay as
 * they are, as the encoder left them.
 */
function bcjX86Decode(buffer: Uint8Array, start: number, end: number, startOffset: number): void {
  const limit = end - (BCJ_INSTRUCTION_SIZE - 1);
  let previousPosition = start - 1;
  let previousMask = 0;
  for (let i = start; i < limit; i++) {
    if ((buffer[i] & BCJ_OPCODE_MASK) !== BCJ_OPCODE) continue;
    const gap = i - previousPosition;
    previousPosition = i;
    if (gap > 3) {
      previousMask = 0;
    } else {
      previousMask = (previousMask << (gap - 1)) & 7;
      if (
        previousMask !== 0 &&
        (!BCJ_MASK_ALLOWED[previousMask] || isBcjTopByte(buffer[i + 4 - BCJ_MASK_BYTE[previousMask]]))
      ) {
        previousMask = (previousMask << 1) | 1;
        continue;
      }
    }
    if (!isBcjTopByte(buffer[i + 4])) {
      previousMask = (previousMask << 1) | 1;
      continue;
    }
    let source = buffer[i + 1] | buffer[i + 2] << 8 | buffer[i + 3] << 16 | buffer[i + 4] << 24;
    const instructionEnd = startOffset + (i - start) + BCJ_INSTRUCTION_SIZE;
    let destination: number;
    for (;;) {
      destination = (source - instructionEnd) | 0;
      if (previousMask === 0) break;
      const shift = BCJ_MASK_BYTE[previousMask] * 8;
      if (!isBcjTopByte((destination >>> (24 - shift)) & 0xFF)) break;
      source = destination ^ ((1 << (32 - shift)) - 1);
    }
    destination = (destination << BCJ_SIGN_EXTEND_SHIFT) >> BCJ_SIGN_EXTEND_SHIFT;
    buffer[i + 1] = destination;
    buffer[i + 2] = destination >>> 8;
    buffer[i + 3] = destination >>> 16;
    buffer[i + 4] = destination >>> 24;
    i += 4;
  }
}

// ---- Checks ----
// CRC32 (the zlib one) and CRC64 (ECMA-182, reflected, as in xz), a table lookup a byte.

const CRC32_POLYNOMIAL = 0xEDB88320;
/** CRC64's reflected polynomial 0xC96C5795D7870F42, in two 32-bit halves. */
const CRC64_POLYNOMIAL_HIGH = 0xC96C5795;
const CRC64_POLYNOMIAL_LOW = 0xD7870F42;

const CRC32_TABLE = makeCrc32Table();
const [CRC64_TABLE_HIGH, CRC64_TABLE_LOW] = makeCrc64Tables();

function makeCrc32Table(): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i;
    for (let bit = 0; bit < 8; bit++) crc = (crc & 1) !== 0 ? (crc >>> 1) ^ CRC32_POLYNOMIAL : crc >>> 1;
    table[i] = crc;
  }
  return table;
}

function makeCrc64Tables(): [Uint32Array, Uint32Array] {
  const high = new Uint32Array(256);
  const low = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let crcHigh = 0;
    let crcLow = i;
    for (let bit = 0; bit < 8; bit++) {
      const carry = crcLow & 1;
      crcLow = (crcLow >>> 1) | (crcHigh << 31);
      crcHigh >>>= 1;
      if (carry !== 0) {
        crcHigh ^= CRC64_POLYNOMIAL_HIGH;
        crcLow ^= CRC64_POLYNOMIAL_LOW;
      }
    }
    high[i] = crcHigh;
    low[i] = crcLow;
  }
  return [high, low];
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xFFFFFFFF;
  for (let i = 0; i < bytes.length; i++) crc = CRC32_TABLE[(crc ^ bytes[i]) & 0xFF] ^ (crc >>> 8);
  return (crc ^ 0xFFFFFFFF) >>> 0;
}

/** Whether the CRC64 of `bytes` is the little-endian 64-bit value in `check`. */
function crc64Matches(bytes: Uint8Array, check: Uint8Array): boolean {
  let high = 0xFFFFFFFF;
  let low = 0xFFFFFFFF;
  for (let i = 0; i < bytes.length; i++) {
    const index = (low ^ bytes[i]) & 0xFF;
    low = CRC64_TABLE_LOW[index] ^ ((low >>> 8) | (high << 24));
    high = CRC64_TABLE_HIGH[index] ^ (high >>> 8);
  }
  return ((low ^ 0xFFFFFFFF) >>> 0) === readUint32(check, 0) &&
    ((high ^ 0xFFFFFFFF) >>> 0) === readUint32(check, 4);
}
