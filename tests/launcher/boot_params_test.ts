/**
 * Tests for lib/launcher/boot_params.ts and boot_gdt.ts: field offsets checked against the tables in
 * boot.rst and zero-page.rst, both boot styles' zero pages (LGUEST-ABI section 3 for `lguest`), the
 * setup header copied from the real Debian bzImage, command-line limits and initrd placement.
 */

import { assert, assertEquals, assertThrows } from "../assert.ts";
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import { type KernelImage, loadKernelImage } from "../../lib/launcher/kernel_image.ts";
import {
  BOOT_PARAMS_OFFSETS,
  E820_RAM,
  E820_RESERVED,
  LGUEST_BOOT_LAYOUT,
  NATIVE_BOOT_LAYOUT,
  writeBootParams,
} from "../../lib/launcher/boot_params.ts";
import { BOOT_CS, BOOT_DS, BOOT_GDT_LIMIT, bootGdtBytes } from "../../lib/launcher/boot_gdt.ts";
import { LaunchError } from "../../lib/support/errors.ts";
import { makeBzImage, makeElf32 } from "./kernel_fixtures.ts";
import { guest } from "../tools/guest_fixture.ts";

const MiB = 1024 * 1024;

function setup(memBytes: number, image = makeBzImage()): { mem: GuestMemory; kernel: KernelImage } {
  const mem = new GuestMemory(memBytes);
  return { mem, kernel: loadKernelImage(mem, image, "bz") };
}

Deno.test("BOOT_PARAMS_OFFSETS match boot.rst's setup header table and zero-page.rst", () => {
  // Copied by hand from Documentation/arch/x86/boot.rst ("Offset/Size Proto Name") and zero-page.rst.
  const documented: Record<string, number> = {
    screen_info: 0x000,
    apm_bios_info: 0x040,
    tboot_addr: 0x058,
    acpi_rsdp_addr: 0x070,
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
    ext_mem_k: 0x002, // struct screen_info: orig_x, orig_y (u8 each), then ext_mem_k (u16)
  };
  assertEquals({ ...BOOT_PARAMS_OFFSETS }, documented);
});

Deno.test("writeBootParams builds lguest's zero page at 0 with the command line at 0x1000", () => {
  const { mem, kernel } = setup(64 * MiB);
  const info = writeBootParams(mem, kernel, { style: "lguest", cmdline: "console=hvc0 root=/dev/vda" });
  assertEquals([info.bootParamsPhysAddr, info.cmdlinePhysAddr], [0, 0x1000]);
  const o = BOOT_PARAMS_OFFSETS;
  assertEquals(mem.readU16(o.version), 0x0207);
  assertEquals(mem.readU32(o.hardware_subarch), 1);
  assertEquals(mem.readU8(o.loadflags), 0x01 | 0x40 | 0x80); // LOADED_HIGH | KEEP_SEGMENTS | CAN_USE_HEAP
  assertEquals(mem.readU8(o.type_of_loader), 0xFF);
  assertEquals(mem.readU32(o.kernel_alignment), 0x1000000);
  assertEquals(mem.readU32(o.cmd_line_ptr), 0x1000);
  assertEquals(mem.readU8(o.e820_entries), 1);
  assertEquals(mem.readU64(o.e820_table), 0n);
  assertEquals(mem.readU64(o.e820_table + 8), BigInt(64 * MiB));
  assertEquals(mem.readU32(o.e820_table + 16), E820_RAM);
  assertEquals(mem.readU32(o.ramdisk_image), 0);
  assertEquals(mem.readU32(o.ramdisk_size), 0);
  const cmdline = new TextDecoder().decode(mem.u8.subarray(0x1000, mem.u8.indexOf(0, 0x1000)));
  assertEquals(cmdline, "console=hvc0 root=/dev/vda");
});

Deno.test("writeBootParams builds a PC zero page at 0x7000 with the ISA hole in e820", () => {
  const { mem, kernel } = setup(128 * MiB);
  const info = writeBootParams(mem, kernel, { style: "native", cmdline: "console=ttyS0" });
  assertEquals(info.bootParamsPhysAddr, NATIVE_BOOT_LAYOUT.bootParamsPhysAddr);
  assertEquals(info.bootParamsPhysAddr, 0x7000);
  const bp = (off: number) => 0x7000 + off;
  const o = BOOT_PARAMS_OFFSETS;
  assertEquals(mem.readU16(bp(o.version)), 0x020F); // the kernel's own
  assertEquals(mem.readU32(bp(o.hardware_subarch)), 0);
  assertEquals(mem.readU8(bp(o.loadflags)), 0x01 | 0x80);
  assertEquals(mem.readU16(bp(o.heap_end_ptr)), 0xDE00);
  assertEquals(mem.readU32(bp(o.cmd_line_ptr)), 0x20000);
  assertEquals(mem.readU8(0x20000 + "console=ttyS0".length), 0);
  assertEquals(info.e820, [
    { addr: 0, size: 0x9FC00, type: E820_RAM },
    { addr: 0x9FC00, size: 0x100000 - 0x9FC00, type: E820_RESERVED },
    { addr: 0x100000, size: 127 * MiB, type: E820_RAM },
  ]);
  assertEquals(mem.readU8(bp(o.e820_entries)), 3);
  info.e820.forEach((e, i) => {
    const at = bp(o.e820_table + i * 20);
    assertEquals([mem.readU64(at), mem.readU64(at + 8), mem.readU32(at + 16)], [
      BigInt(e.addr),
      BigInt(e.size),
      e.type,
    ]);
  });
  assertEquals(mem.readU16(bp(o.ext_mem_k)), 0xFFFF); // 127 MiB in KiB overflows the u16
  assertEquals(mem.readU32(bp(o.alt_mem_k)), 127 * 1024);
  // screen_info is zero apart from ext_mem_k: no VGA text console for the decompressor to write to.
  const screen = mem.u8.subarray(bp(0), bp(0x40));
  assert(screen.every((b, i) => b === 0 || i === 2 || i === 3), "screen_info zero");
  assertEquals(mem.readU8(bp(o.sentinel)), 0);
});

Deno.test({
  name: "writeBootParams copies the real bzImage's setup header, changing only loader-written fields",
  ignore: !guest,
  fn: async () => {
    const file = await Deno.readFile(guest!.kernel);
    const mem = new GuestMemory(64 * MiB);
    const kernel = loadKernelImage(mem, file, "vmlinuz");
    const initrd = await Deno.readFile(guest!.initrd);
    writeBootParams(mem, kernel, { style: "native", cmdline: "console=ttyS0", initrd });
    const o = BOOT_PARAMS_OFFSETS;
    const written = new Set<number>();
    const mark = (off: number, len: number) => {
      for (let i = 0; i < len; i++) written.add(off + i);
    };
    mark(o.type_of_loader, 1);
    mark(o.loadflags, 1);
    mark(o.ramdisk_image, 8);
    mark(o.heap_end_ptr, 2);
    mark(o.cmd_line_ptr, 4);
    mark(o.hardware_subarch, 4);
    const headerEnd = 0x202 + file[0x201];
    for (let off = 0x1F1; off < headerEnd; off++) {
      if (!written.has(off)) assertEquals(mem.u8[0x7000 + off], file[off], `byte 0x${off.toString(16)}`);
    }
    assertEquals(mem.readU32(0x7000 + o.init_size), new DataView(file.buffer).getUint32(0x260, true));
    // The initrd went to the top of RAM (initrd_addr_max is 2 GiB here), page-aligned, above init_size.
    const image = mem.readU32(0x7000 + o.ramdisk_image);
    assertEquals(image, Math.floor((64 * MiB - initrd.length) / 4096) * 4096);
    assert(image >= kernel.kernelEndPhysAddr, "initrd above the decompressor's area");
    assertEquals(mem.readU32(0x7000 + o.ramdisk_size), initrd.length);
    assertEquals(mem.u8.subarray(image, image + initrd.length), initrd);
  },
});

Deno.test("writeBootParams stores acpiRsdpPhysAddr as the u64 acpi_rsdp_addr, zero when absent", () => {
  const { mem, kernel } = setup(128 * MiB);
  const at = 0x7000 + BOOT_PARAMS_OFFSETS.acpi_rsdp_addr;
  writeBootParams(mem, kernel, { style: "native", cmdline: "" });
  assertEquals(mem.readU64(at), 0n);
  writeBootParams(mem, kernel, { style: "native", cmdline: "", acpiRsdpPhysAddr: 0xE0000 });
  assertEquals(mem.readU64(at), 0xE0000n);
});

Deno.test("writeBootParams places the initrd page-aligned below initrd_addr_max and above the kernel", () => {
  const { mem, kernel } = setup(64 * MiB, makeBzImage({ initrdAddrMax: 0x1FFFFFF }));
  const initrd = Uint8Array.from({ length: 10000 }, (_, i) => i % 251);
  const info = writeBootParams(mem, kernel, { style: "lguest", cmdline: "", initrd });
  assertEquals(info.initrdPhysAddr, Math.floor((32 * MiB - 10000) / 4096) * 4096);
  assertEquals(info.initrdPhysAddr % 4096, 0);
  assertEquals(info.initrdSizeBytes, 10000);
  assertEquals(mem.readU32(BOOT_PARAMS_OFFSETS.ramdisk_image), info.initrdPhysAddr);
  assertEquals(mem.readU32(BOOT_PARAMS_OFFSETS.ramdisk_size), 10000);
  assertEquals(mem.u8.subarray(info.initrdPhysAddr, info.initrdPhysAddr + 10000), initrd);
});

Deno.test("writeBootParams refuses an initrd that does not fit above the kernel", () => {
  const { mem, kernel } = setup(24 * MiB); // kernel needs up to 20 MiB (pref 16 MiB + init_size 4 MiB)
  const initrd = new Uint8Array(5 * MiB);
  assertThrows(
    () => writeBootParams(mem, kernel, { style: "native", cmdline: "", initrd, initrdName: "big.gz" }),
    (e: unknown) =>
      e instanceof LaunchError &&
      e.message ===
        'Cannot place initrd "big.gz" (5 MiB): it does not fit between the kernel\'s end at 20 MiB and the top of 24 MiB of memory',
  );
  // 4 MiB fits exactly.
  writeBootParams(mem, kernel, { style: "native", cmdline: "", initrd: new Uint8Array(4 * MiB) });
});

Deno.test("writeBootParams bounds the command line by the header's cmdline_size", () => {
  const { mem, kernel } = setup(32 * MiB, makeBzImage({ cmdlineSize: 16 }));
  writeBootParams(mem, kernel, { style: "native", cmdline: "x".repeat(16) });
  assertThrows(
    () => writeBootParams(mem, kernel, { style: "native", cmdline: "x".repeat(17) }),
    (e: unknown) =>
      e instanceof LaunchError &&
      e.message === "Kernel command line is too long: 17 bytes, this kernel accepts at most 16",
  );
  assertThrows(() => writeBootParams(mem, kernel, { style: "lguest", cmdline: "a\0b" }), LaunchError);
});

Deno.test("writeBootParams gives an ELF kernel a minimal setup header", () => {
  const mem = new GuestMemory(32 * MiB);
  const kernel = loadKernelImage(
    mem,
    makeElf32({
      entry: 0x1000000,
      segments: [{ vaddr: 0xC1000000, paddr: 0x1000000, data: new Uint8Array(64) }],
    }),
    "vmlinux",
  );
  writeBootParams(mem, kernel, { style: "lguest", cmdline: "x".repeat(2047) });
  const o = BOOT_PARAMS_OFFSETS;
  assertEquals(mem.readU32(o.header), 0x53726448);
  assertEquals(mem.readU16(o.boot_flag), 0xAA55);
  assertEquals(mem.readU16(o.version), 0x0207);
  assertEquals(mem.readU32(o.hardware_subarch), 1);
  assertEquals(mem.readU32(o.code32_start), 0x1000000);
  assertThrows(
    () => writeBootParams(mem, kernel, { style: "lguest", cmdline: "x".repeat(2048) }),
    LaunchError,
  );
});

Deno.test("writeBootParams refuses a kernel loaded over the boot parameters", () => {
  const mem = new GuestMemory(32 * MiB);
  const kernel = loadKernelImage(
    mem,
    makeElf32({ entry: 0x1000, segments: [{ vaddr: 0x1000, paddr: 0x1000, data: new Uint8Array(64) }] }),
    "low",
  );
  assertThrows(() => writeBootParams(mem, kernel, { style: "lguest", cmdline: "" }), LaunchError);
  assertEquals(LGUEST_BOOT_LAYOUT.cmdlinePhysAddr, 0x1000);
});

Deno.test("bootGdtBytes holds flat 4 GiB __BOOT_CS (0x10) and __BOOT_DS (0x18) descriptors", () => {
  const gdt = bootGdtBytes();
  assertEquals(gdt.length, BOOT_GDT_LIMIT + 1);
  assertEquals([BOOT_CS, BOOT_DS], [0x10, 0x18]);
  const v = new DataView(gdt.buffer);
  assertEquals(v.getBigUint64(0, true), 0n);
  assertEquals(v.getBigUint64(8, true), 0n);
  for (const [sel, type] of [[BOOT_CS, 0xA], [BOOT_DS, 0x2]]) {
    const lo = v.getUint32(sel, true);
    const hi = v.getUint32(sel + 4, true);
    const base = (lo >>> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000);
    const limit = (lo & 0xFFFF) | (hi & 0xF0000);
    assertEquals(base, 0);
    assertEquals(limit, 0xFFFFF);
    assertEquals((hi >>> 8) & 0xF, type);
    assertEquals((hi >>> 12) & 1, 1, "S: code/data");
    assertEquals((hi >>> 13) & 3, 0, "DPL 0");
    assertEquals((hi >>> 15) & 1, 1, "present");
    assertEquals((hi >>> 22) & 1, 1, "D: 32-bit");
    assertEquals((hi >>> 23) & 1, 1, "G: 4 KiB granularity");
  }
});
