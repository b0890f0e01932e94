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
import { bzImagePayload } from "./kernel_image.ts";

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
 * Decompresses a bzImage's payload on the host. Returns the reason instead when the fast path
 * does not apply: not a bzImage with a payload field, a compression we do not decode here, or a
 * payload that is corrupt or not an ELF (the in-guest decompressor then gets its chance).
 */
export async function decompressBzImagePayload(
  image: Uint8Array,
): Promise<HostDecompressedKernel | { reason: string }> {
  const payload = bzImagePayload(image);
  if (!(payload instanceof Uint8Array)) return payload;
  let elf: Uint8Array;
  let format: string;
  try {
    if (startsWith(payload, XZ_MAGIC)) {
      format = "xz";
      // The kernel build appends the decompressed size as a 32-bit little-endian number (scripts/
      // Makefile.lib, size_append): not part of the xz stream, but a check on what comes out.
      if (payload.length < 4) return { reason: "payload too short" };
      const expectedBytes = new DataView(payload.buffer, payload.byteOffset).getUint32(
        payload.length - 4,
        true,
      );
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
