/**
 * The zero page (struct boot_params, Documentation/arch/x86/zero-page.rst and boot.rst's "32-bit Boot
 * Protocol"), the kernel command line and the initrd, in two styles: `native` (a PC: subarch 0, an
 * e820 map with the ISA hole) and `lguest` (subarch 1, version 2.07, KEEP_SEGMENTS, one RAM entry,
 * zero page at 0 as Linux's lguest launcher did). Leaves out EDD, video modes, setup_data and EFI.
 */

import { LaunchError } from "../support/errors.ts";
import type { GuestMemory } from "../machine/guest_memory.ts";
import type { KernelImage } from "./kernel_image.ts";

/** `native` boots like a PC (hardware_subarch 0); `lguest` takes the kernel's lguest paravirt entry. */
export type BootStyle = "native" | "lguest";

/** Where the zero page and the command line go, both below the kernel at 1 MiB. */
export interface BootLayout {
  bootParamsPhysAddr: number;
  cmdlinePhysAddr: number;
}

/**
 * PC layout, kept clear of what a PC's low memory holds and of the e820 hole:
 *   0x00000-0x004FF  real-mode IVT and BIOS data area (left to the Machine)
 *   0x06000          boot GDT for the 32-bit protocol (boot_gdt.ts)
 *   0x07000-0x07FFF  boot_params (the zero page)
 *   0x20000-...      kernel command line (at most cmdline_size + 1 bytes)
 *   0x9FC00-0xFFFFF  reserved: EBDA, VGA window, option and BIOS ROMs
 *   0x100000-        the kernel's protected-mode part, then the initrd at the top of RAM
 */
export const NATIVE_BOOT_LAYOUT: Readonly<BootLayout> = Object.freeze({
  bootParamsPhysAddr: 0x7000,
  cmdlinePhysAddr: 0x20000,
});

/** lguest's layout (LGUEST-ABI section 3): zero page at 0, so esi = 0, and the command line right after. */
export const LGUEST_BOOT_LAYOUT: Readonly<BootLayout> = Object.freeze({
  bootParamsPhysAddr: 0,
  cmdlinePhysAddr: 0x1000,
});

/** Size of struct boot_params. */
export const BOOT_PARAMS_SIZE = 4096;

/** Field offsets in struct boot_params, named as in zero-page.rst and boot.rst ("hdr." dropped). */
export const BOOT_PARAMS_OFFSETS = Object.freeze({
  screen_info: 0x000,
  ext_mem_k: 0x002, // screen_info.ext_mem_k, u16: KiB above 1 MiB
  apm_bios_info: 0x040,
  tboot_addr: 0x058,
  acpi_rsdp_addr: 0x070, // u64, read from protocol 2.14 on
  alt_mem_k: 0x1E0,
  scratch: 0x1E4,
  e820_entries: 0x1E8,
  sentinel: 0x1EF,
  setup_sects: 0x1F1,
  syssize: 0x1F4,
  boot_flag: 0x1FE,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  type_of_loader: 0x210,
  loadflags: 0x211,
  code32_start: 0x214,
  ramdisk_image: 0x218,
  ramdisk_size: 0x21C,
  heap_end_ptr: 0x224,
  cmd_line_ptr: 0x228,
  initrd_addr_max: 0x22C,
  kernel_alignment: 0x230,
  relocatable_kernel: 0x234,
  cmdline_size: 0x238,
  hardware_subarch: 0x23C,
  hardware_subarch_data: 0x240,
  pref_address: 0x258,
  init_size: 0x260,
  e820_table: 0x2D0,
});
const O = BOOT_PARAMS_OFFSETS;

/** loadflags bits (boot.rst). */
export const LOADED_HIGH = 0x01;
export const KEEP_SEGMENTS = 0x40;
export const CAN_USE_HEAP = 0x80;
/** hardware_subarch values. */
export const X86_SUBARCH_PC = 0;
export const X86_SUBARCH_LGUEST = 1;
/** e820 entry types. */
export const E820_RAM = 1;
export const E820_RESERVED = 2;
/** One e820 entry: u64 addr, u64 size, u32 type, packed. */
export const E820_ENTRY_SIZE = 20;
/** e820_table holds 128 entries (0xA00 bytes). */
export const E820_MAX_ENTRIES = 128;
/** Where a PC's conventional memory ends and the EBDA begins. */
export const ISA_HOLE_START = 0x9FC00;
export const ISA_HOLE_END = 0x100000;

/** type_of_loader for a loader without an assigned id. */
const LOADER_UNDEFINED = 0xFF;
/** heap_end_ptr for a heap ending at 0xE000 in the real-mode segment, boot.rst's sample configuration. */
const HEAP_END_PTR = 0xE000 - 0x200;
/** boot.rst: before protocol 2.03 the initrd must end at or below this. */
const DEFAULT_INITRD_ADDR_MAX = 0x37FFFFFF;
/** boot.rst: before protocol 2.06 the command line is at most 255 characters. */
const DEFAULT_CMDLINE_SIZE = 255;
/** x86 COMMAND_LINE_SIZE - 1, the limit for an ELF kernel, which has no setup header to say. */
const ELF_CMDLINE_SIZE = 2047;
const PAGE_SIZE = 4096;
const MiB = 1024 * 1024;

/** What to put in the zero page besides what the kernel image says. */
export interface BootParamsOptions {
  style: BootStyle;
  /** The kernel command line, without the terminating NUL. */
  cmdline: string;
  /** The initrd's contents, if any; `initrdName` names it in errors. */
  initrd?: Uint8Array;
  initrdName?: string;
  /** Where the ACPI RSDP is, so the kernel need not scan 0xE0000-0xFFFFF for it (boot.rst, 2.14+). */
  acpiRsdpPhysAddr?: number;
}

/** Where things went: `bootParamsPhysAddr` is what the kernel expects in %esi at entry. */
export interface BootParamsInfo {
  bootParamsPhysAddr: number;
  cmdlinePhysAddr: number;
  /** 0 when there is no initrd. */
  initrdPhysAddr: number;
  initrdSizeBytes: number;
  /** The e820 map as written, for --verbose and tests. */
  e820: { addr: number; size: number; type: number }[];
}

/**
 * Writes the zero page, the command line and the initrd into `mem` for `kernel` (already loaded).
 * Throws `LaunchError` when the command line is too long or the initrd does not fit.
 */
export function writeBootParams(
  mem: GuestMemory,
  kernel: KernelImage,
  opts: BootParamsOptions,
): BootParamsInfo {
  const layout = opts.style === "lguest" ? LGUEST_BOOT_LAYOUT : NATIVE_BOOT_LAYOUT;
  const bp = new Uint8Array(BOOT_PARAMS_SIZE);
  const view = new DataView(bp.buffer);

  // The setup header: the bzImage's own (boot.rst: copy 0x1F1 up to 0x202 + the byte at 0x201), or
  // for an ELF kernel the few fields a loader would have found there.
  if (kernel.setupHeader) {
    bp.set(kernel.setupHeader, O.setup_sects);
  } else {
    view.setUint16(O.boot_flag, 0xAA55, true);
    view.setUint32(O.header, 0x53726448, true); // "HdrS"
    view.setUint16(O.version, 0x020F, true);
    bp[O.loadflags] = LOADED_HIGH;
    view.setUint32(O.code32_start, kernel.entryPhysAddr, true);
  }
  const version = view.getUint16(O.version, true);
  const cmdlineMax = !kernel.setupHeader
    ? ELF_CMDLINE_SIZE
    : version >= 0x0206
    ? view.getUint32(O.cmdline_size, true)
    : DEFAULT_CMDLINE_SIZE;
  const initrdAddrMax = kernel.setupHeader && version >= 0x0203
    ? view.getUint32(O.initrd_addr_max, true)
    : DEFAULT_INITRD_ADDR_MAX;

  bp[O.type_of_loader] = LOADER_UNDEFINED;
  if (opts.acpiRsdpPhysAddr !== undefined) {
    view.setBigUint64(O.acpi_rsdp_addr, BigInt(opts.acpiRsdpPhysAddr), true);
  }
  bp[O.loadflags] |= CAN_USE_HEAP;
  view.setUint16(O.heap_end_ptr, HEAP_END_PTR, true);
  if (opts.style === "lguest") {
    // LGUEST-ABI section 3: head_32.S only dispatches on hardware_subarch from protocol 2.07 on, and a
    // ring-1 Guest cannot reload segments, so KEEP_SEGMENTS; lguest also fixed the alignment at 16 MiB.
    view.setUint16(O.version, 0x0207, true);
    bp[O.loadflags] |= KEEP_SEGMENTS;
    view.setUint32(O.hardware_subarch, X86_SUBARCH_LGUEST, true);
    view.setUint32(O.kernel_alignment, 0x1000000, true);
  } else {
    view.setUint32(O.hardware_subarch, X86_SUBARCH_PC, true);
  }

  // Memory size, three ways: the e820 map, which every kernel we boot reads first, and the older
  // ext_mem_k / alt_mem_k counts of KiB above 1 MiB.
  const e820 = opts.style === "lguest" ? [{ addr: 0, size: mem.sizeBytes, type: E820_RAM }] : [
    { addr: 0, size: ISA_HOLE_START, type: E820_RAM },
    { addr: ISA_HOLE_START, size: ISA_HOLE_END - ISA_HOLE_START, type: E820_RESERVED },
    { addr: ISA_HOLE_END, size: mem.sizeBytes - ISA_HOLE_END, type: E820_RAM },
  ];
  bp[O.e820_entries] = e820.length;
  e820.forEach((e, i) => {
    const at = O.e820_table + i * E820_ENTRY_SIZE;
    view.setBigUint64(at, BigInt(e.addr), true);
    view.setBigUint64(at + 8, BigInt(e.size), true);
    view.setUint32(at + 16, e.type, true);
  });
  const kibAbove1M = Math.max(0, (mem.sizeBytes - MiB) / 1024);
  view.setUint16(O.ext_mem_k, Math.min(kibAbove1M, 0xFFFF), true);
  view.setUint32(O.alt_mem_k, kibAbove1M, true);

  // The command line: NUL-terminated, at most cmdline_size characters (boot.rst "The Kernel Command Line").
  const cmdline = new TextEncoder().encode(opts.cmdline);
  if (cmdline.length > cmdlineMax) {
    throw new LaunchError(
      `Kernel command line is too long: ${cmdline.length} bytes, this kernel accepts at most ${cmdlineMax}`,
    );
  }
  if (cmdline.includes(0)) throw new LaunchError("Kernel command line contains a NUL character");
  view.setUint32(O.cmd_line_ptr, layout.cmdlinePhysAddr, true);
  const lowEnd = layout.cmdlinePhysAddr + cmdline.length + 1;
  const lowLimit = opts.style === "native" ? ISA_HOLE_START : kernel.loadPhysAddr;
  if (lowEnd > lowLimit || lowEnd > kernel.loadPhysAddr) {
    throw new LaunchError(
      `Kernel at physical 0x${
        kernel.loadPhysAddr.toString(16)
      } overlaps the boot parameters and command line below 0x${lowEnd.toString(16)}`,
    );
  }

  // The initrd: page-aligned, as high as the kernel allows (boot.rst initrd_addr_max is the highest
  // byte it may occupy) and above everything the kernel needs while it decompresses.
  let initrdPhysAddr = 0;
  const initrdSizeBytes = opts.initrd?.length ?? 0;
  if (opts.initrd && initrdSizeBytes > 0) {
    const ceiling = Math.min(initrdAddrMax + 1, mem.sizeBytes);
    const floor = Math.ceil(kernel.kernelEndPhysAddr / PAGE_SIZE) * PAGE_SIZE;
    initrdPhysAddr = Math.floor((ceiling - initrdSizeBytes) / PAGE_SIZE) * PAGE_SIZE;
    if (initrdPhysAddr < floor) {
      const name = opts.initrdName ?? "initrd";
      throw new LaunchError(
        `Cannot place initrd "${name}" (${
          mibText(initrdSizeBytes)
        } MiB): it does not fit between the kernel's end at ${mibText(floor)} MiB and the top of ${
          mibText(ceiling)
        } MiB of memory`,
      );
    }
    mem.write(initrdPhysAddr, opts.initrd, "initrd");
    view.setUint32(O.ramdisk_image, initrdPhysAddr, true);
    view.setUint32(O.ramdisk_size, initrdSizeBytes, true);
  }

  mem.write(layout.bootParamsPhysAddr, bp, "boot_params");
  const cmdlineZ = new Uint8Array(cmdline.length + 1);
  cmdlineZ.set(cmdline);
  mem.write(layout.cmdlinePhysAddr, cmdlineZ, "command line");
  return {
    bootParamsPhysAddr: layout.bootParamsPhysAddr,
    cmdlinePhysAddr: layout.cmdlinePhysAddr,
    initrdPhysAddr,
    initrdSizeBytes,
    e820,
  };
}

function mibText(bytes: number): string {
  const mib = bytes / MiB;
  return Number.isInteger(mib) ? String(mib) : mib.toFixed(1);
}
