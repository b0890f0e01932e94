/**
 * The bzImage host-decompression fast path on synthetic images: a setup header with payload_offset
 * and payload_length around a gzip payload (made here with CompressionStream), and the cases that
 * must fall back to the in-guest decompressor with a reason.
 */
import { assert, assertEquals } from "../assert.ts";
import { decompressBzImagePayload } from "../../lib/launcher/bzimage_payload.ts";

const SETUP_SECTS = 4;
const PROTECTED_MODE_START = (SETUP_SECTS + 1) * 512;
/** Where the payload sits inside the protected-mode part (after a pretend decompressor). */
const PAYLOAD_OFFSET = 0x100;

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A bzImage-shaped file: setup header (boot protocol `version`) and `payload` at payload_offset. */
function bzImage(payload: Uint8Array, version = 0x020F): Uint8Array {
  const image = new Uint8Array(PROTECTED_MODE_START + PAYLOAD_OFFSET + payload.length + 64);
  const view = new DataView(image.buffer);
  image[0x1F1] = SETUP_SECTS;
  view.setUint32(0x202, 0x53726448, true); // "HdrS"
  view.setUint16(0x206, version, true);
  view.setUint32(0x248, PAYLOAD_OFFSET, true);
  view.setUint32(0x24C, payload.length, true);
  image.set(payload, PROTECTED_MODE_START + PAYLOAD_OFFSET);
  return image;
}

/** Something that starts like an ELF file, with a recognisable body. */
function fakeElf(): Uint8Array {
  const elf = new Uint8Array(50_000);
  elf.set([0x7F, 0x45, 0x4C, 0x46, 1, 1, 1]);
  for (let i = 16; i < elf.length; i++) elf[i] = (i * 7) & 0xFF;
  return elf;
}

Deno.test("a bzImage's gzip payload is decompressed on the host to the ELF inside", async () => {
  const elf = fakeElf();
  const result = await decompressBzImagePayload(bzImage(await gzip(elf)));
  assert(!("reason" in result), JSON.stringify(result));
  assertEquals(result.format, "gzip");
  assertEquals(result.elf, elf);
});

Deno.test("bzImages the host path cannot take are left to the in-guest decompressor, with the reason", async () => {
  const elf = fakeElf();
  const compressed = await gzip(elf);
  const reasonOf = async (image: Uint8Array) => {
    const result = await decompressBzImagePayload(image);
    assert("reason" in result, "expected a fallback");
    return result.reason;
  };
  assertEquals(await reasonOf(elf), "not a bzImage");
  assertEquals(await reasonOf(bzImage(compressed, 0x0207)), "boot protocol before 2.08");
  const lz4 = bzImage(new Uint8Array([0x02, 0x21, 0x4C, 0x18, 1, 2, 3]));
  assert((await reasonOf(lz4)).startsWith("payload compression not decoded on the host (magic 02 21 4c 18)"));
  const corrupt = compressed.slice();
  corrupt[corrupt.length - 8] ^= 0xFF; // the CRC32 in the gzip trailer
  assert((await reasonOf(bzImage(corrupt))).startsWith("payload does not decompress"));
  assertEquals(
    await reasonOf(bzImage(await gzip(new Uint8Array(100)))),
    "the decompressed payload is not an ELF file",
  );
  const past = bzImage(compressed);
  new DataView(past.buffer).setUint32(0x24C, past.length, true);
  assertEquals(await reasonOf(past), "payload_offset/payload_length outside the file");
});
