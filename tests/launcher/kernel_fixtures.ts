/**
 * Synthetic kernel images built in memory for the loader tests: a minimal bzImage (just a setup
 * header per boot.rst and a payload) and a minimal ELF32 vmlinux (header and program headers). Neither
 * would run; they only have to look right to kernel_image.ts.
 */

/** Options for makeBzImage; anything left out gets a plausible modern value. */
export interface BzImageSpec {
  setupSects?: number;
  version?: number;
  loadflags?: number;
  payload?: Uint8Array;
  /** Bytes to cut off the end of the file. */
  truncateBy?: number;
  prefAddress?: number;
  kernelAlignment?: number;
  relocatable?: boolean;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  /** Written into the setup code, pointed at by kernel_version. */
  versionString?: string;
}

/** A bzImage: boot sector + setup sectors with the header at 0x1F1, then the payload. */
export function makeBzImage(spec: BzImageSpec = {}): Uint8Array {
  const setupSects = spec.setupSects ?? 4;
  const realSects = setupSects === 0 ? 4 : setupSects;
  const payload = spec.payload ?? Uint8Array.from({ length: 8192 }, (_, i) => (i * 7 + 3) & 0xFF);
  const setupBytes = (realSects + 1) * 512;
  const image = new Uint8Array(setupBytes + payload.length);
  const v = new DataView(image.buffer);
  image[0x1F1] = setupSects;
  v.setUint32(0x1F4, payload.length / 16, true); // syssize
  v.setUint16(0x1FE, 0xAA55, true);
  image[0x200] = 0xEB;
  image[0x201] = 0x6A; // header ends at 0x26C, like 6.1's
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, spec.version ?? 0x020F, true);
  image[0x211] = spec.loadflags ?? 0x01;
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22C, spec.initrdAddrMax ?? 0x7FFFFFFF, true);
  v.setUint32(0x230, spec.kernelAlignment ?? 0x1000000, true);
  image[0x234] = spec.relocatable === false ? 0 : 1;
  v.setUint32(0x238, spec.cmdlineSize ?? 2047, true);
  v.setBigUint64(0x258, BigInt(spec.prefAddress ?? 0x1000000), true);
  v.setUint32(0x260, spec.initSize ?? 0x400000, true);
  if (spec.versionString !== undefined) {
    const at = 0x400;
    image.set(new TextEncoder().encode(spec.versionString + "\0"), at);
    v.setUint16(0x20E, at - 0x200, true);
  }
  image.set(payload, setupBytes);
  return image.subarray(0, image.length - (spec.truncateBy ?? 0));
}

/** A PT_LOAD segment for makeElf32: `data` is the file part, memsz - data.length bytes are bss. */
export interface ElfSegmentSpec {
  vaddr: number;
  paddr: number;
  data: Uint8Array;
  memsz?: number;
}

/** An ELF32 executable: 52-byte header, program headers, then the segments' data. */
export function makeElf32(
  spec: { entry: number; segments: ElfSegmentSpec[]; machine?: number; type?: number; cls?: number },
): Uint8Array {
  const phoff = 52;
  let dataAt = phoff + spec.segments.length * 32;
  const size = dataAt + spec.segments.reduce((n, s) => n + s.data.length, 0);
  const image = new Uint8Array(size);
  const v = new DataView(image.buffer);
  image.set([0x7F, 0x45, 0x4C, 0x46, spec.cls ?? 1, 1, 1], 0);
  v.setUint16(16, spec.type ?? 2, true); // ET_EXEC
  v.setUint16(18, spec.machine ?? 3, true); // EM_386
  v.setUint32(20, 1, true);
  v.setUint32(24, spec.entry, true);
  v.setUint32(28, phoff, true);
  v.setUint16(40, 52, true);
  v.setUint16(42, 32, true);
  v.setUint16(44, spec.segments.length, true);
  spec.segments.forEach((s, i) => {
    const ph = phoff + i * 32;
    v.setUint32(ph, 1, true); // PT_LOAD
    v.setUint32(ph + 4, dataAt, true);
    v.setUint32(ph + 8, s.vaddr, true);
    v.setUint32(ph + 12, s.paddr, true);
    v.setUint32(ph + 16, s.data.length, true);
    v.setUint32(ph + 20, s.memsz ?? s.data.length, true);
    image.set(s.data, dataAt);
    dataAt += s.data.length;
  });
  return image;
}
