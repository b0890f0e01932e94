/**
 * The host-side fast path for bzImages (boot protocol 2.08+): the compressed kernel inside the
 * protected-mode part (payload_offset/payload_length) is decompressed here, natively fast, and the
 * ELF vmlinux inside is loaded as if given directly. In the guest, the kernel's own decompressor
 * would be the first minute of an interpreted boot. Supported: the gzip and xz payloads distributions
 * build (Debian's is xz with the x86 BCJ filter); anything else, or a payload that does not
 * decompress to an ELF, is left to the in-guest decompressor (`--guest-decompress` forces that).
 * Left out with the fast path: the decompressor's KASLR (the kernel runs at its linked address).
 */
import { decompressXz } from "../support/xz.ts";

// Setup header offsets (boot.rst, "The Real-Mode Kernel Header").
const HDR_SETUP_SECTS = 0x1F1;
const HDR_HEADER = 0x202;
const HDR_VERSION = 0x206;
const HDR_PAYLOAD_OFFSET = 0x248;
const HDR_PAYLOAD_LENGTH = 0x24C;
/** "HdrS" as a little-endian u32. */
const HDRS_MAGIC = 0x53726448;
/** payload_offset and payload_length exist from boot protocol 2.08. */
const PROTOCOL_WITH_PAYLOAD = 0x0208;

const GZIP_MAGIC = [0x1F, 0x8B];
const XZ_MAGIC = [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00];
const ELF_MAGIC = [0x7F, 0x45, 0x4C, 0x46];

/** The ELF vmlinux a bzImage carries, decompressed on the host. */
export interface HostDecompressedKernel {
  elf: Uint8Array;
  /** The payload's compression: "gzip" or "xz". */
  format: string;
}

/**
 * Decompresses a bzImage's payload on the host. Returns null, with the reason, when the fast path
 * does not apply: not a bzImage with a payload field, a compression we do not decode here, or a
 * payload that is corrupt or not an ELF (the in-guest decompressor then gets its chance).
 */
export async function decompressBzImagePayload(
  image: Uint8Array,
): Promise<HostDecompressedKernel | { reason: string }> {
  if (image.length < HDR_PAYLOAD_LENGTH + 4 || u32(image, HDR_HEADER) !== HDRS_MAGIC) {
    return { reason: "not a bzImage" };
  }
  if (u16(image, HDR_VERSION) < PROTOCOL_WITH_PAYLOAD) return { reason: "boot protocol before 2.08" };
  const setupSects = image[HDR_SETUP_SECTS] === 0 ? 4 : image[HDR_SETUP_SECTS];
  const start = (setupSects + 1) * 512 + u32(image, HDR_PAYLOAD_OFFSET);
  const end = start + u32(image, HDR_PAYLOAD_LENGTH);
  if (end > image.length || end <= start) return { reason: "payload_offset/payload_length outside the file" };
  const payload = image.subarray(start, end);
  let elf: Uint8Array;
  let format: string;
  try {
    if (startsWith(payload, XZ_MAGIC)) {
      format = "xz";
      // The kernel build appends the decompressed size as a 32-bit little-endian number (scripts/
      // Makefile.lib, size_append): not part of the xz stream, but a check on what comes out.
      if (payload.length < 4) return { reason: "payload too short" };
      const expectedBytes = u32(payload, payload.length - 4);
      elf = decompressXz(payload.subarray(0, payload.length - 4));
      if (elf.length !== expectedBytes) {
        return { reason: `xz payload gave ${elf.length} bytes, the kernel build recorded ${expectedBytes}` };
      }
    } else if (startsWith(payload, GZIP_MAGIC)) {
      format = "gzip";
      elf = await gunzip(payload);
    } else {
      return { reason: `payload compression not decoded on the host (magic ${hex(payload.subarray(0, 4))})` };
    }
  } catch (e) {
    return { reason: `payload does not decompress: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (!startsWith(elf, ELF_MAGIC)) return { reason: "the decompressed payload is not an ELF file" };
  return { elf, format };
}

/** gzip through the Web platform's DecompressionStream (a trailing garbage-free member, as kernels build). */
async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  if (bytes.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

function u16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

function u32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}
