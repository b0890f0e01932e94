/**
 * Kernel images: recognise a bzImage (Linux x86 boot protocol, Documentation/arch/x86/boot.rst) or a
 * 32-bit ELF vmlinux and copy it into Guest RAM. For a bzImage only the protected-mode part is loaded
 * (at 1 MiB, as lguest did); its real-mode setup code never runs. zImages, 64-bit kernels and
 * relocation to pref_address are left out: the in-kernel decompressor relocates itself.
 */

import { LaunchError } from "../support/errors.ts";
import type { GuestMemory } from "../machine/guest_memory.ts";

/** Where a bzImage's protected-mode part goes: "high memory", as the boot protocol says for LOADED_HIGH. */
export const BZIMAGE_LOAD_PHYS_ADDR = 0x100000;
/** The i386 kernel's virtual base (CONFIG_PAGE_OFFSET), for ELF entry points given as virtual addresses. */
export const PAGE_OFFSET = 0xC000_0000;

// Setup header offsets in the bzImage file (boot.rst "The Real-Mode Kernel Header").
const HDR_SETUP_SECTS = 0x1F1;
const HDR_SYSSIZE = 0x1F4;
const HDR_JUMP = 0x200;
const HDR_HEADER = 0x202;
const HDR_VERSION = 0x206;
const HDR_KERNEL_VERSION = 0x20E;
const HDR_LOADFLAGS = 0x211;
const HDR_KERNEL_ALIGNMENT = 0x230;
const HDR_RELOCATABLE_KERNEL = 0x234;
const HDR_XLOADFLAGS = 0x236;
const HDR_PAYLOAD_OFFSET = 0x248;
const HDR_PAYLOAD_LENGTH = 0x24C;
const HDR_PREF_ADDRESS = 0x258;
const HDR_INIT_SIZE = 0x260;
/** payload_offset and payload_length exist from boot protocol 2.08. */
const PROTOCOL_WITH_PAYLOAD = 0x0208;
/** "HdrS" read as a little-endian u32. */
const HDRS_MAGIC = 0x53726448;
/** loadflags bit 0: the protected-mode code goes at 0x100000 (a bzImage). */
const LOADED_HIGH = 0x01;
/** xloadflags bit 0 (boot protocol 2.12+): the kernel has the 64-bit entry point, so it is a 64-bit kernel. */
const XLF_KERNEL_64 = 0x01;
const PROTOCOL_WITH_XLOADFLAGS = 0x020C;
const NOT_64_BIT = "64-bit kernels are not supported: use a 32-bit x86 kernel";
/** The setup header may not run into boot_params' next field, edd_mbr_sig_buffer at 0x290. */
const SETUP_HEADER_LIMIT = 0x290;

const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_386 = 3;
const PT_LOAD = 1;

const MiB = 1024 * 1024;

/** A kernel loaded into Guest RAM, and what the boot_params writer needs to know about it. */
export interface KernelImage {
  kind: "bzImage" | "elf";
  /** Physical address to start the CPU at (code32_start for a bzImage, e_entry made physical for ELF). */
  entryPhysAddr: number;
  /** Lowest physical address written. */
  loadPhysAddr: number;
  /** End (exclusive) of the bytes written, zeroed bss included. */
  loadEndPhysAddr: number;
  /**
   * End (exclusive) of the memory the kernel uses before it reads the memory map: for a bzImage the
   * larger of the loaded payload and runtime start + init_size (where the decompressor works). The
   * initrd must go above this.
   */
  kernelEndPhysAddr: number;
  /** bzImage only: the file's setup header, bytes 0x1F1 up to 0x202 + the jump offset at 0x201. */
  setupHeader?: Uint8Array;
  /** bzImage boot protocol version like 0x020F; 0 for ELF. */
  protocolVersion: number;
  /** The kernel's version string ("6.1.0-50-686 (debian-kernel@...) ..."), when the image has one. */
  versionString?: string;
  /**
   * True when the kernel's version is one that had the lguest paravirt entry (2.6.24 up to 4.13), so
   * the `lguest` boot style is the natural one; false means boot it like a PC. A hint, not a promise:
   * the kernel may have been built without CONFIG_LGUEST_GUEST.
   */
  prefersLguest: boolean;
}

/**
 * The checks that need only the file's first bytes, done before any slow work (decompressing a
 * bzImage's payload): a 64-bit kernel, bzImage (xloadflags XLF_KERNEL_64) or ELF64, is refused.
 */
export function checkKernelHeader(image: Uint8Array, fileName: string): void {
  const fail = (why: string) => new LaunchError(`Cannot load kernel "${fileName}": ${why}`);
  if (image.length >= HDR_XLOADFLAGS + 2 && u32(image, HDR_HEADER) === HDRS_MAGIC) {
    if (u16(image, HDR_VERSION) >= PROTOCOL_WITH_XLOADFLAGS && (image[HDR_XLOADFLAGS] & XLF_KERNEL_64)) {
      throw fail(NOT_64_BIT);
    }
  } else if (image.length >= 5 && image[0] === 0x7F && image[1] === 0x45 && image[4] === ELFCLASS64) {
    throw fail(NOT_64_BIT);
  }
}

/**
 * Recognises `image` (the contents of the file `fileName`) and copies it into `mem`. Throws
 * `LaunchError` naming the file when it is not a kernel we can boot or does not fit.
 */
export function loadKernelImage(mem: GuestMemory, image: Uint8Array, fileName: string): KernelImage {
  const fail = (why: string) => new LaunchError(`Cannot load kernel "${fileName}": ${why}`);
  if (image.length >= HDR_HEADER + 4 && u32(image, HDR_HEADER) === HDRS_MAGIC) {
    return loadBzImage(mem, image, fail);
  }
  if (image.length >= 4 && image[0] === 0x7F && image[1] === 0x45 && image[2] === 0x4C && image[3] === 0x46) {
    return loadElf(mem, image, fail);
  }
  if (image.length === 0) throw fail("the file is empty");
  throw fail("not a Linux kernel: neither bzImage nor ELF");
}

function loadBzImage(mem: GuestMemory, image: Uint8Array, fail: (why: string) => LaunchError): KernelImage {
  const version = u16(image, HDR_VERSION);
  if (version >= PROTOCOL_WITH_XLOADFLAGS && (image[HDR_XLOADFLAGS] & XLF_KERNEL_64)) throw fail(NOT_64_BIT);
  if (version < 0x0204) {
    throw fail(`boot protocol ${protocolText(version)} is too old: 2.04 or later is needed`);
  }
  if (!(image[HDR_LOADFLAGS] & LOADED_HIGH)) {
    throw fail("it is a zImage (LOADED_HIGH clear): only bzImages, loaded at 1 MiB, are supported");
  }
  const setupSects = image[HDR_SETUP_SECTS] === 0 ? 4 : image[HDR_SETUP_SECTS];
  const setupBytes = (setupSects + 1) * 512;
  // The jump at 0x200 doubles as the header's length: the header ends at 0x202 + its offset byte.
  const headerEnd = HDR_HEADER + image[HDR_JUMP + 1];
  if (headerEnd > SETUP_HEADER_LIMIT || headerEnd < HDR_INIT_SIZE + 4 && version >= 0x020A) {
    throw fail(`its setup header is corrupt (it claims to end at 0x${headerEnd.toString(16)})`);
  }
  const payloadBytes = u32(image, HDR_SYSSIZE) * 16;
  if (image.length <= setupBytes || (payloadBytes !== 0 && image.length < setupBytes + payloadBytes)) {
    const expected = setupBytes + payloadBytes;
    throw fail(`the file is truncated: ${image.length} bytes, the header says ${expected}`);
  }
  const payload = image.subarray(setupBytes, payloadBytes === 0 ? image.length : setupBytes + payloadBytes);

  const loadPhysAddr = BZIMAGE_LOAD_PHYS_ADDR;
  const loadEndPhysAddr = loadPhysAddr + payload.length;
  let kernelEndPhysAddr = loadEndPhysAddr;
  if (version >= 0x020A) {
    // Where the decompressor will run and how much it needs (boot.rst, init_size): a relocatable kernel
    // aligns its load address up to kernel_alignment but never goes below its LOAD_PHYSICAL_ADDR
    // (pref_address); a fixed one always runs at pref_address.
    const prefAddr = Number(u64(image, HDR_PREF_ADDRESS));
    const align = u32(image, HDR_KERNEL_ALIGNMENT);
    let runtimeStart = prefAddr;
    if (image[HDR_RELOCATABLE_KERNEL] !== 0 && align !== 0) {
      runtimeStart = Math.max(Math.ceil(loadPhysAddr / align) * align, prefAddr);
    }
    kernelEndPhysAddr = Math.max(kernelEndPhysAddr, runtimeStart + u32(image, HDR_INIT_SIZE));
  }
  if (loadEndPhysAddr > mem.sizeBytes) {
    throw fail(
      `its ${mibText(payload.length)} MiB payload does not fit in ${mibText(mem.sizeBytes)} MiB of memory`,
    );
  }
  if (kernelEndPhysAddr > mem.sizeBytes) {
    throw fail(
      `it needs memory up to ${
        mibText(kernelEndPhysAddr)
      } MiB to decompress (init_size), so it does not fit in ${mibText(mem.sizeBytes)} MiB of memory`,
    );
  }
  mem.write(loadPhysAddr, payload, "kernel");

  const versionString = bzImageVersionString(image, setupBytes);
  return {
    kind: "bzImage",
    entryPhysAddr: loadPhysAddr,
    loadPhysAddr,
    loadEndPhysAddr,
    kernelEndPhysAddr,
    setupHeader: image.slice(HDR_SETUP_SECTS, headerEnd),
    protocolVersion: version,
    versionString,
    prefersLguest: version >= 0x0207 && hadLguestEntry(versionString),
  };
}

/**
 * A bzImage's compressed kernel (payload_offset and payload_length, boot protocol 2.08+), for the
 * host-side decompression fast path; or why there is none to take.
 */
export function bzImagePayload(image: Uint8Array): Uint8Array | { reason: string } {
  if (image.length < HDR_PAYLOAD_LENGTH + 4 || u32(image, HDR_HEADER) !== HDRS_MAGIC) {
    return { reason: "not a bzImage" };
  }
  if (u16(image, HDR_VERSION) < PROTOCOL_WITH_PAYLOAD) return { reason: "boot protocol before 2.08" };
  const setupSects = image[HDR_SETUP_SECTS] === 0 ? 4 : image[HDR_SETUP_SECTS];
  const start = (setupSects + 1) * 512 + u32(image, HDR_PAYLOAD_OFFSET);
  const end = start + u32(image, HDR_PAYLOAD_LENGTH);
  if (end > image.length || end <= start) return { reason: "payload_offset/payload_length outside the file" };
  return image.subarray(start, end);
}

/** The NUL-terminated string kernel_version points at (offset + 0x200 in the file, inside the setup code). */
function bzImageVersionString(image: Uint8Array, setupBytes: number): string | undefined {
  const offset = u16(image, HDR_KERNEL_VERSION);
  if (offset === 0) return undefined;
  const start = offset + 0x200;
  if (start >= setupBytes) return undefined;
  let end = start;
  while (end < setupBytes && end - start < 256 && image[end] !== 0) end++;
  return new TextDecoder("latin1").decode(image.subarray(start, end));
}

interface ElfSegment {
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
}

function loadElf(mem: GuestMemory, image: Uint8Array, fail: (why: string) => LaunchError): KernelImage {
  if (image.length < 6) throw fail("the ELF file is truncated: no complete ELF header");
  if (image[4] === ELFCLASS64) throw fail(NOT_64_BIT);
  if (image[4] !== ELFCLASS32) throw fail(`unknown ELF class ${image[4]}`);
  if (image[5] !== ELFDATA2LSB) throw fail("it is a big-endian ELF file, not an x86 kernel");
  if (image.length < 52) throw fail("the ELF file is truncated: no complete ELF header");
  const machine = u16(image, 18);
  if (machine !== EM_386) throw fail(`it is not an x86 kernel (ELF machine ${machine}, not EM_386)`);
  const type = u16(image, 16);
  if (type !== ET_EXEC) throw fail(`it is not an executable (ELF type ${type}, not ET_EXEC)`);

  const entry = u32(image, 24);
  const phoff = u32(image, 28);
  const phentsize = u16(image, 42);
  const phnum = u16(image, 44);
  if (phentsize < 32 || phoff + phnum * phentsize > image.length) {
    throw fail("the ELF file is truncated: its program headers are missing");
  }
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (u32(image, ph) !== PT_LOAD) continue;
    const seg = {
      offset: u32(image, ph + 4),
      vaddr: u32(image, ph + 8),
      paddr: u32(image, ph + 12),
      filesz: u32(image, ph + 16),
      memsz: u32(image, ph + 20),
    };
    if (seg.filesz > seg.memsz) throw fail(`segment ${i} is corrupt (file size larger than memory size)`);
    if (seg.offset + seg.filesz > image.length) {
      throw fail(`the ELF file is truncated: segment ${i} needs bytes up to ${seg.offset + seg.filesz}`);
    }
    if (seg.paddr + seg.memsz > mem.sizeBytes) {
      throw fail(
        `segment ${i} at physical 0x${seg.paddr.toString(16)}+0x${seg.memsz.toString(16)} does not fit in ${
          mibText(mem.sizeBytes)
        } MiB of memory`,
      );
    }
    segments.push(seg);
  }
  if (segments.length === 0) throw fail("the ELF file has no loadable (PT_LOAD) segments");

  for (const seg of segments) {
    const dest = mem.writeView(seg.paddr, seg.memsz, "kernel");
    dest.set(image.subarray(seg.offset, seg.offset + seg.filesz));
    dest.fill(0, seg.filesz); // bss
  }
  const entryPhysAddr = elfEntryPhysAddr(entry, segments);
  if (entryPhysAddr === undefined) {
    throw fail(`its entry point 0x${entry.toString(16)} is outside its loadable segments`);
  }
  const loadPhysAddr = Math.min(...segments.map((s) => s.paddr));
  const loadEndPhysAddr = Math.max(...segments.map((s) => s.paddr + s.memsz));
  const versionString = elfVersionString(image);
  return {
    kind: "elf",
    entryPhysAddr,
    loadPhysAddr,
    loadEndPhysAddr,
    kernelEndPhysAddr: loadEndPhysAddr,
    protocolVersion: 0,
    versionString,
    prefersLguest: hadLguestEntry(versionString),
  };
}

/**
 * A vmlinux's e_entry is normally already physical (ENTRY(phys_startup_32)); if it is virtual, move it
 * by the same amount as the segment holding it (p_paddr - p_vaddr), and failing that by PAGE_OFFSET.
 */
function elfEntryPhysAddr(entry: number, segments: ElfSegment[]): number | undefined {
  for (const s of segments) {
    if (entry >= s.paddr && entry < s.paddr + s.memsz) return entry;
  }
  for (const s of segments) {
    if (entry >= s.vaddr && entry < s.vaddr + s.memsz) return entry - s.vaddr + s.paddr;
  }
  if (entry >= PAGE_OFFSET) {
    const phys = entry - PAGE_OFFSET;
    if (segments.some((s) => phys >= s.paddr && phys < s.paddr + s.memsz)) return phys;
  }
  return undefined;
}

/** The version from the kernel's "Linux version X.Y.Z-..." banner, found anywhere in the file. */
function elfVersionString(image: Uint8Array): string | undefined {
  const banner = new TextEncoder().encode("Linux version ");
  for (let at = image.indexOf(banner[0]); at !== -1; at = image.indexOf(banner[0], at + 1)) {
    if (!banner.every((b, i) => image[at + i] === b)) continue;
    const start = at + banner.length;
    let end = start;
    while (end < image.length && end - start < 256 && image[end] >= 0x20 && image[end] < 0x7F) end++;
    return new TextDecoder("latin1").decode(image.subarray(start, end));
  }
  return undefined;
}

/** True for kernel versions that had arch/x86/lguest: 2.6.24 (boot protocol 2.07) to 4.13. */
function hadLguestEntry(versionString: string | undefined): boolean {
  const m = versionString && /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(versionString);
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  const v = major * 1_000_000 + minor * 1000 + patch;
  return v >= 2_006_024 && v < 4_014_000;
}

function protocolText(version: number): string {
  return `${version >> 8}.${(version & 0xFF).toString().padStart(2, "0")}`;
}

function mibText(bytes: number): string {
  const mib = bytes / MiB;
  return Number.isInteger(mib) ? String(mib) : mib.toFixed(1);
}

function u16(b: Uint8Array, off: number): number {
  return b[off] | b[off + 1] << 8;
}

function u32(b: Uint8Array, off: number): number {
  return (b[off] | b[off + 1] << 8 | b[off + 2] << 16 | b[off + 3] << 24) >>> 0;
}

function u64(b: Uint8Array, off: number): bigint {
  return BigInt(u32(b, off)) | BigInt(u32(b, off + 4)) << 32n;
}
