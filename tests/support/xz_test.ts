/**
 * Tests for lib/support/xz.ts: round trips through the host's `xz` (the reference encoder) for the
 * checks, presets, filter chains, literal coder settings and block layouts it writes; the real Debian
 * bzImage's payload against the vmlinux that the host xz unpacked from it (when the Guest is cached);
 * and truncated, corrupted or unsupported inputs, which must throw an XzError, not hang or return
 * garbage. When xz is missing, every test that needs it is ignored with a warning.
 */

import { assert, assertEquals } from "../assert.ts";
import { decompressXz, XzError } from "../../lib/support/xz.ts";
import { guestDir } from "../../tools/fetch_guest.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const ROUND_TRIP_SIZES = [0, 1, 100 * KiB, 3 * MiB];

/** The encoder settings the round trips cover (each with every data kind and size). */
const ROUND_TRIP_OPTIONS = [
  ["--check=crc32", "--lzma2=dict=1MiB"],
  ["--check=crc64"],
  ["--check=none"],
  ["--x86", "--lzma2"],
  ["-0"],
  ["-9e"],
];

/** Why the host's `xz` cannot be used, or null when it can (synchronous, for `ignore:`). */
function probeXz(): string | null {
  try {
    const result = new Deno.Command("xz", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return result.success ? null : "xz --version failed";
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return `xz is not installed (apt-get install -y xz-utils): ${why}`;
  }
}

const xzMissing = probeXz();
const noXz = xzMissing !== null;
if (noXz) console.warn(`xz tests ignored: ${xzMissing}`);

/** Compresses `data` with the host's xz and `options`, through a temporary file. */
function xz(data: Uint8Array, options: string[]): Uint8Array {
  const dir = Deno.makeTempDirSync({ prefix: "lguest_xz_" });
  try {
    const file = `${dir}/data`;
    Deno.writeFileSync(file, data);
    const result = new Deno.Command("xz", {
      args: [...options, "--stdout", file],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!result.success) {
      throw new Error(`xz ${options.join(" ")} failed: ${new TextDecoder().decode(result.stderr)}`);
    }
    return result.stdout;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** A well-mixed 32-bit number for `index` (Chris Wellons' integer hash "lowbias32", salted with `seed`). */
function hash32(seed: number, index: number): number {
  let x = Math.imul(seed, 0x9E3779B1) ^ index;
  x = Math.imul(x ^ (x >>> 16), 0x21F0AAAD);
  x = Math.imul(x ^ (x >>> 15), 0x735A2D97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** A pseudo-random sequence: the same numbers on every run. */
function pseudoRandom(seed: number): () => number {
  let index = 0;
  return () => hash32(seed, index++);
}

/** Bytes that do not compress: stored (uncompressed) LZMA2 chunks. */
function randomBytes(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = hash32(seed, i);
  return bytes;
}

const WORDS = ["the", "kernel", "decompressor", "unpacks", "a", "payload", "into", "memory", "then", "jumps"]
  .map((word) => new TextEncoder().encode(word));
const SEPARATORS = new TextEncoder().encode(" \n,.");

/** Text from a ten-word vocabulary: highly compressible, with plenty of matches and repeated distances. */
function textBytes(size: number, seed = 2): Uint8Array {
  const next = pseudoRandom(seed);
  const bytes = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const word = WORDS[next() % WORDS.length];
    bytes.set(word.subarray(0, size - at), at);
    at += word.length;
    if (at < size) bytes[at++] = SEPARATORS[next() % SEPARATORS.length];
  }
  return bytes;
}

/** Text, then random bytes, then text again: LZMA chunks, stored chunks and state resets in one block. */
function mixedBytes(size: number): Uint8Array {
  const third = Math.floor(size / 3);
  const bytes = textBytes(size, 4);
  bytes.set(randomBytes(third, 5), third);
  return bytes;
}

/** How many functions x86Bytes calls; their addresses recur, which is what the BCJ filter exploits. */
const X86_FUNCTIONS = 200;

/**
 * Something like 32-bit x86 code for the BCJ filter: calls and jumps (E8, E9) to a set of functions
 * within the buffer (so the operand's top byte is 00 or FF, and the filter converts it), runs of
 * E8/E9 bytes and E8s followed by far operands (which it must leave alone), between common opcodes
 * and random bytes.
 */
function x86Bytes(size: number, seed = 3): Uint8Array {
  const next = pseudoRandom(seed);
  const functions = Array.from({ length: X86_FUNCTIONS }, () => next() % size);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  while (at + 8 <= size) {
    const choice = next() % 8;
    if (choice < 3) {
      bytes[at] = choice === 2 ? 0xE9 : 0xE8;
      view.setInt32(at + 1, functions[next() % X86_FUNCTIONS] - (at + 5), true);
      at += 5;
    } else if (choice === 3) {
      bytes.fill(0xE8 | (next() & 1), at, at + 1 + (next() % 4));
      at += 4;
    } else if (choice === 4) {
      bytes[at] = 0xE8;
      view.setUint32(at + 1, next(), true);
      at += 5;
    } else {
      // push ebp; mov ebp, esp; a random byte; ret
      bytes.set([0x55, 0x89, 0xE5, next() & 0xFF, 0xC3], at);
      at += 5;
    }
  }
  return bytes;
}

const DATA_KINDS: [string, (size: number) => Uint8Array][] = [
  ["random", (size) => randomBytes(size)],
  ["text", (size) => textBytes(size)],
];

/** Asserts equal bytes, naming the first difference rather than printing megabytes. */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assertEquals(actual.length, expected.length, `${what}: length`);
  const at = actual.findIndex((byte, i) => byte !== expected[i]);
  assert(at < 0, `${what}: first difference at byte ${at}`);
}

/** Asserts that `input` is refused with an XzError carrying a one-line "xz: " message; returns it. */
function assertRefused(input: Uint8Array, what: string): string {
  try {
    decompressXz(input);
  } catch (e) {
    assert(e instanceof XzError, `${what}: expected an XzError, got ${e}`);
    assert(/^xz: [^\n]+$/.test(e.message), `${what}: message "${e.message}"`);
    return e.message;
  }
  throw new Error(`${what}: decompressed without an error`);
}

function concatenate(...parts: Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}

for (const options of ROUND_TRIP_OPTIONS) {
  Deno.test({
    name: `decompressXz undoes xz ${options.join(" ")} for random and text data of 0 B to 3 MiB`,
    ignore: noXz,
    fn: () => {
      for (const [kind, make] of DATA_KINDS) {
        for (const size of ROUND_TRIP_SIZES) {
          const data = make(size);
          assertSameBytes(decompressXz(xz(data, options)), data, `${kind}, ${size} bytes`);
        }
      }
    },
  });
}

Deno.test({
  name: "decompressXz reads multiple blocks, with and without sizes in their headers",
  ignore: noXz,
  fn: () => {
    const data = mixedBytes(600 * KiB);
    // Single-threaded xz leaves the sizes out of block headers; multi-threaded xz writes them.
    for (const threads of ["-T1", "-T2"]) {
      const compressed = xz(data, [threads, "--block-size=64KiB"]);
      assertSameBytes(decompressXz(compressed), data, threads);
    }
  },
});

Deno.test({
  name: "decompressXz undoes the BCJ x86 filter, with a start offset and twice over",
  ignore: noXz,
  fn: () => {
    const data = x86Bytes(1 * MiB);
    const plain = xz(data, ["--lzma2"]);
    for (
      const filters of [["--x86", "--lzma2"], ["--x86=start=4096", "--lzma2"], ["--x86", "--x86", "--lzma2"]]
    ) {
      const compressed = xz(data, filters);
      // The filter must really have converted calls, or this would not test much.
      assert(compressed.length < plain.length, `${filters.join(" ")} compresses better than LZMA2 alone`);
      assertSameBytes(decompressXz(compressed), data, filters.join(" "));
    }
    const small = x86Bytes(100);
    assertSameBytes(
      decompressXz(xz(small, ["--x86", "--lzma2", "--block-size=16"])),
      small,
      "16-byte blocks",
    );
  },
});

Deno.test({
  name: "decompressXz follows the lc, lp and pb literal and position settings and small dictionaries",
  ignore: noXz,
  fn: () => {
    const data = mixedBytes(300 * KiB);
    for (
      const settings of [
        "lc=0,lp=4,pb=4",
        "lc=4,lp=0,pb=0",
        "lc=1,lp=2,pb=3",
        "dict=4KiB",
        "mode=fast,nice=8",
      ]
    ) {
      assertSameBytes(decompressXz(xz(data, [`--lzma2=${settings}`])), data, settings);
    }
  },
});

Deno.test({
  name: "decompressXz reads concatenated streams and stream padding, and refuses bad padding",
  ignore: noXz,
  fn: () => {
    // The large stream first: the output buffer is sized from the last stream's index and must grow.
    const first = textBytes(3 * MiB);
    const second = randomBytes(1000, 9);
    const firstXz = xz(first, ["--check=crc64"]);
    const secondXz = xz(second, ["--check=none"]);
    const padding = new Uint8Array(8);
    const expected = concatenate(first, second);
    assertSameBytes(decompressXz(concatenate(firstXz, secondXz)), expected, "back to back");
    assertSameBytes(
      decompressXz(concatenate(firstXz, padding, secondXz, padding.subarray(0, 4))),
      expected,
      "with padding",
    );
    assertEquals(
      assertRefused(concatenate(secondXz, padding.subarray(0, 3)), "3 bytes of padding"),
      "xz: stream padding is not a multiple of 4 bytes",
    );
    assertEquals(
      assertRefused(concatenate(secondXz, new Uint8Array([1, 2, 3, 4])), "garbage"),
      "xz: trailing garbage after the stream",
    );
  },
});

Deno.test({
  name: "decompressXz names the filters and checks it does not support",
  ignore: noXz,
  fn: () => {
    const data = textBytes(1000);
    assertEquals(
      assertRefused(xz(data, ["--delta=dist=4", "--lzma2"]), "delta"),
      "xz: unsupported filter 0x03 (Delta)",
    );
    assertEquals(
      assertRefused(xz(data, ["--arm", "--lzma2"]), "arm"),
      "xz: unsupported filter 0x07 (BCJ ARM)",
    );
    assertEquals(
      assertRefused(xz(data, ["--check=sha256"]), "sha256"),
      "xz: the SHA-256 check is not supported",
    );
    assertEquals(
      assertRefused(xz(data, ["--format=lzma"]), "lzma"),
      "xz: not xz data (bad stream header magic)",
    );
  },
});

Deno.test("decompressXz refuses empty and non-xz input", () => {
  assertEquals(assertRefused(new Uint8Array(0), "empty"), "xz: truncated input");
  assertEquals(assertRefused(randomBytes(100), "random"), "xz: not xz data (bad stream header magic)");
});

/** A small file with a header, several blocks with BCJ and LZMA2 data, an index and a footer. */
function smallMultiBlockFile(check: string): Uint8Array {
  return xz(mixedBytes(8 * KiB), [`--check=${check}`, "--x86", "--lzma2=preset=6", "--block-size=2KiB"]);
}

Deno.test({
  name: "decompressXz refuses the input cut at every length",
  ignore: noXz,
  fn: () => {
    const whole = smallMultiBlockFile("crc32");
    const messages = new Set<string>();
    for (let length = 0; length < whole.length; length++) {
      messages.add(assertRefused(whole.subarray(0, length), `cut to ${length} bytes`));
    }
    // Also cut the copies that own their buffer, so that reads past the end return undefined.
    for (let length = 0; length < whole.length; length += 97) {
      assertRefused(whole.slice(0, length), `copied and cut to ${length} bytes`);
    }
    assert(messages.has("xz: truncated input"), [...messages].join("; "));
  },
});

Deno.test({
  name: "decompressXz refuses the input with any byte changed, and with random runs overwritten",
  ignore: noXz,
  fn: () => {
    for (const check of ["crc32", "crc64"]) {
      const whole = smallMultiBlockFile(check);
      const messages = new Set<string>();
      for (let at = 0; at < whole.length; at++) {
        for (const flip of [0x01, 0x80, 0xFF]) {
          const corrupt = whole.slice();
          corrupt[at] ^= flip;
          messages.add(assertRefused(corrupt, `${check}: byte ${at} ^ ${flip}`));
        }
      }
      const next = pseudoRandom(7);
      for (let trial = 0; trial < 2000; trial++) {
        const corrupt = whole.slice();
        const at = next() % corrupt.length;
        corrupt.set(randomBytes(Math.min(1 + (next() % 64), corrupt.length - at), trial + 1), at);
        if (corrupt.every((byte, i) => byte === whole[i])) continue;
        messages.add(assertRefused(corrupt, `${check}: random run at ${at}`));
      }
      for (const expected of ["xz: CRC32 mismatch in block header", "xz: corrupt LZMA2 data"]) {
        assert(messages.has(expected), `${check}: no "${expected}" among ${[...messages].join("; ")}`);
      }
    }
  },
});

/** The Guest's bzImage and the vmlinux the host's xz unpacked from it, when both are cached. */
const KERNEL_RELEASE = "6.1.0-50-686";
const kernelPath = `${guestDir()}/vmlinuz-${KERNEL_RELEASE}`;
const vmlinuxPath = `${guestDir()}/vmlinux-${KERNEL_RELEASE}`;
const haveKernel = [kernelPath, vmlinuxPath].every((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});
if (!haveKernel) console.warn(`real kernel xz test ignored: ${kernelPath} or ${vmlinuxPath} is missing`);

/** Setup header fields (Documentation/arch/x86/boot.rst). */
const SETUP_SECTS = 0x1F1;
const PAYLOAD_OFFSET = 0x248;
const PAYLOAD_LENGTH = 0x24C;
const SECTOR_SIZE = 512;
/** An old bzImage with 0 in setup_sects has 4. */
const DEFAULT_SETUP_SECTS = 4;
/** The payload ends with the uncompressed size as a 32-bit number (scripts/Makefile.lib's size_append). */
const SIZE_TRAILER = 4;

Deno.test({
  name: "decompressXz unpacks the real bzImage's payload to the vmlinux the host xz made",
  ignore: !haveKernel,
  fn: () => {
    const image = Deno.readFileSync(kernelPath);
    const expected = Deno.readFileSync(vmlinuxPath);
    const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
    const protectedModeStart = ((image[SETUP_SECTS] || DEFAULT_SETUP_SECTS) + 1) * SECTOR_SIZE;
    const payloadStart = protectedModeStart + view.getUint32(PAYLOAD_OFFSET, true);
    const payloadEnd = payloadStart + view.getUint32(PAYLOAD_LENGTH, true);
    assert(payloadEnd <= image.length, "payload inside the image");
    const streamEnd = payloadEnd - SIZE_TRAILER;
    assertEquals(view.getUint32(streamEnd, true), expected.length, "size trailer");
    const stream = image.slice(payloadStart, streamEnd);

    const started = performance.now();
    const vmlinux = decompressXz(stream);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `xz: ${(stream.length / MiB).toFixed(1)} MiB to ${(vmlinux.length / MiB).toFixed(1)} MiB in ` +
        `${(seconds * 1000).toFixed(0)} ms: ${(vmlinux.length / 1e6 / seconds).toFixed(1)} MB/s of output`,
    );
    assertSameBytes(vmlinux, expected, "vmlinux");
  },
});
