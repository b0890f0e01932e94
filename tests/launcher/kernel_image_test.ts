/**
 * Tests for lib/launcher/kernel_image.ts against the real Debian 6.1 bzImage and its ELF payload
 * (STYLE rule 11), and against synthetic images for the cases no real kernel shows: old protocols,
 * truncation, ELF64, other machines, images too big for RAM, garbage.
 */

import { assert, assertEquals, assertThrows } from "../assert.ts";
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import { BZIMAGE_LOAD_PHYS_ADDR, loadKernelImage } from "../../lib/launcher/kernel_image.ts";
import { LaunchError } from "../../lib/support/errors.ts";
import { makeBzImage, makeElf32 } from "./kernel_fixtures.ts";
import { guest } from "../tools/guest_fixture.ts";

const MiB = 1024 * 1024;

function loadError(image: Uint8Array, memBytes = 64 * MiB): string {
  const err = assertThrowsLaunchError(() => loadKernelImage(new GuestMemory(memBytes), image, "k.img"));
  assert(err.message.startsWith('Cannot load kernel "k.img": '), err.message);
  return err.message.slice('Cannot load kernel "k.img": '.length);
}

function assertThrowsLaunchError(fn: () => unknown): LaunchError {
  try {
    fn();
  } catch (e) {
    assert(e instanceof LaunchError, `expected LaunchError, got ${e}`);
    assert(!e.message.includes("\n"), "one-line message");
    return e;
  }
  throw new Error("expected a LaunchError");
}

Deno.test({
  name: "loadKernelImage loads the real Debian bzImage's protected-mode part at 1 MiB",
  ignore: !guest,
  fn: async () => {
    const file = await Deno.readFile(guest!.kernel);
    const mem = new GuestMemory(64 * MiB);
    const k = loadKernelImage(mem, file, guest!.kernel);
    assertEquals(k.kind, "bzImage");
    assertEquals(k.protocolVersion, 0x020F);
    assertEquals(k.entryPhysAddr, 0x100000);
    assertEquals(k.loadPhysAddr, 0x100000);
    const setupBytes = (file[0x1F1] + 1) * 512;
    assertEquals(k.loadEndPhysAddr, 0x100000 + file.length - setupBytes);
    assertEquals(mem.u8.subarray(k.loadPhysAddr, k.loadEndPhysAddr), file.subarray(setupBytes));
    // Decompressor runs at pref_address (16 MiB) and needs init_size bytes from there.
    const view = new DataView(file.buffer);
    assertEquals(k.kernelEndPhysAddr, 0x1000000 + view.getUint32(0x260, true));
    assertEquals(k.setupHeader, file.subarray(0x1F1, 0x202 + file[0x201]));
    assert(k.versionString?.startsWith(`${guest!.version} (debian-kernel@`), k.versionString);
    assertEquals(k.prefersLguest, false); // 6.1 has no lguest entry any more
  },
});

Deno.test({
  name: "loadKernelImage refuses the real bzImage when init_size does not fit in RAM",
  ignore: !guest,
  fn: async () => {
    const file = await Deno.readFile(guest!.kernel);
    const err = assertThrowsLaunchError(() => loadKernelImage(new GuestMemory(32 * MiB), file, "vmlinuz"));
    assert(err.message.endsWith("does not fit in 32 MiB of memory"), err.message);
  },
});

Deno.test({
  name: "loadKernelImage loads the real ELF vmlinux at its physical addresses with bss zeroed",
  ignore: !guest?.vmlinux,
  fn: async () => {
    const file = await Deno.readFile(guest!.vmlinux!);
    const mem = new GuestMemory(64 * MiB);
    mem.u8.fill(0xAA);
    const k = loadKernelImage(mem, file, guest!.vmlinux!);
    assertEquals(k.kind, "elf");
    assertEquals(k.entryPhysAddr, 0x1000000); // ENTRY(phys_startup_32)
    assertEquals(k.loadPhysAddr, 0x1000000);
    assertEquals(k.protocolVersion, 0);
    assertEquals(k.setupHeader, undefined);
    assert(k.versionString?.startsWith(guest!.version), k.versionString);
    assertEquals(k.prefersLguest, false);
    // Cross-check against the program headers: every PT_LOAD byte copied, the rest of memsz zero.
    const v = new DataView(file.buffer);
    const phoff = v.getUint32(28, true);
    let end = 0;
    for (let i = 0; i < v.getUint16(44, true); i++) {
      const ph = phoff + i * v.getUint16(42, true);
      if (v.getUint32(ph, true) !== 1) continue;
      const [off, paddr, filesz, memsz] = [4, 12, 16, 20].map((o) => v.getUint32(ph + o, true));
      assertEquals(mem.u8.subarray(paddr, paddr + filesz), file.subarray(off, off + filesz));
      assert(mem.u8.subarray(paddr + filesz, paddr + memsz).every((b) => b === 0), "bss zeroed");
      end = Math.max(end, paddr + memsz);
    }
    assertEquals(k.loadEndPhysAddr, end);
    assertEquals(k.kernelEndPhysAddr, end);
  },
});

Deno.test("loadKernelImage loads a synthetic bzImage and keeps its setup header", () => {
  const image = makeBzImage({ versionString: "4.9.0-lguest (me@here) #1" });
  const mem = new GuestMemory(32 * MiB);
  const k = loadKernelImage(mem, image, "bz");
  assertEquals(k.entryPhysAddr, BZIMAGE_LOAD_PHYS_ADDR);
  assertEquals(mem.u8.subarray(0x100000, 0x100000 + 8192), image.subarray(5 * 512));
  assertEquals(k.loadEndPhysAddr, 0x100000 + 8192);
  assertEquals(k.kernelEndPhysAddr, 0x1000000 + 0x400000);
  assertEquals(k.setupHeader!.length, 0x26C - 0x1F1);
  assertEquals(k.versionString, "4.9.0-lguest (me@here) #1");
  assertEquals(k.prefersLguest, true);
});

Deno.test("loadKernelImage takes setup_sects 0 as 4", () => {
  const image = makeBzImage({ setupSects: 0 });
  const mem = new GuestMemory(32 * MiB);
  loadKernelImage(mem, image, "bz");
  assertEquals(mem.u8.subarray(0x100000, 0x100000 + 8192), image.subarray(5 * 512));
});

Deno.test("loadKernelImage places a relocatable kernel's decompressor at max(align_up(1 MiB), pref_address)", () => {
  const reloc = loadKernelImage(
    new GuestMemory(32 * MiB),
    makeBzImage({ prefAddress: 0x100000, kernelAlignment: 0x200000, initSize: 0x300000 }),
    "bz",
  );
  assertEquals(reloc.kernelEndPhysAddr, 0x200000 + 0x300000);
  const fixed = loadKernelImage(
    new GuestMemory(32 * MiB),
    makeBzImage({ relocatable: false, prefAddress: 0x100000, initSize: 0x300000 }),
    "bz",
  );
  assertEquals(fixed.kernelEndPhysAddr, 0x100000 + 0x300000);
});

Deno.test("loadKernelImage knows which kernel versions had the lguest entry", () => {
  const prefers = (v: string) =>
    loadKernelImage(new GuestMemory(32 * MiB), makeBzImage({ versionString: v }), "k")
      .prefersLguest;
  assertEquals(prefers("2.6.23 (x)"), false);
  assertEquals(prefers("2.6.24-rc1 (x)"), true);
  assertEquals(prefers("4.13.16 (x)"), true);
  assertEquals(prefers("4.14.0 (x)"), false);
  assertEquals(prefers("6.1.0-50-686 (x)"), false);
});

Deno.test("loadKernelImage refuses boot protocols before 2.04", () => {
  assertEquals(
    loadError(makeBzImage({ version: 0x0203 })),
    "boot protocol 2.03 is too old: 2.04 or later is needed",
  );
});

Deno.test("loadKernelImage refuses zImages (LOADED_HIGH clear)", () => {
  assert(loadError(makeBzImage({ loadflags: 0 })).startsWith("it is a zImage"));
});

Deno.test("loadKernelImage refuses a truncated bzImage", () => {
  assertEquals(
    loadError(makeBzImage({ truncateBy: 100 })),
    `the file is truncated: ${5 * 512 + 8192 - 100} bytes, the header says ${5 * 512 + 8192}`,
  );
  assert(loadError(makeBzImage().subarray(0, 0x300)).startsWith("the file is truncated"));
});

Deno.test("loadKernelImage refuses a bzImage whose payload or init_size does not fit in RAM", () => {
  const big = makeBzImage({ payload: new Uint8Array(20 * MiB), prefAddress: 0x100000, initSize: 0 });
  assertEquals(loadError(big, 16 * MiB), "its 20 MiB payload does not fit in 16 MiB of memory");
  assertEquals(
    loadError(makeBzImage({ initSize: 0x1800000 }), 32 * MiB),
    "it needs memory up to 40 MiB to decompress (init_size), so it does not fit in 32 MiB of memory",
  );
});

Deno.test("loadKernelImage loads ELF PT_LOAD segments at p_paddr and zeroes bss up to p_memsz", () => {
  const text = Uint8Array.from({ length: 300 }, (_, i) => i & 0xFF);
  const data = Uint8Array.of(1, 2, 3, 4);
  const image = makeElf32({
    entry: 0x1000010,
    segments: [
      { vaddr: 0xC1000000, paddr: 0x1000000, data: text },
      { vaddr: 0xC1002000, paddr: 0x1002000, data, memsz: 0x1000 },
    ],
  });
  const mem = new GuestMemory(32 * MiB);
  mem.u8.fill(0xAA);
  const k = loadKernelImage(mem, image, "vmlinux");
  assertEquals(k.kind, "elf");
  assertEquals(k.entryPhysAddr, 0x1000010);
  assertEquals(mem.u8.subarray(0x1000000, 0x1000000 + 300), text);
  assertEquals(mem.u8.subarray(0x1002000, 0x1002004), data);
  assert(mem.u8.subarray(0x1002004, 0x1003000).every((b) => b === 0), "bss zeroed");
  assertEquals(mem.u8[0x1003000], 0xAA);
  assertEquals([k.loadPhysAddr, k.loadEndPhysAddr, k.kernelEndPhysAddr], [0x1000000, 0x1003000, 0x1003000]);
});

Deno.test("loadKernelImage converts a virtual ELF entry point by its segment's p_vaddr - p_paddr", () => {
  const entryOf = (image: Uint8Array) => loadKernelImage(new GuestMemory(16 * MiB), image, "v").entryPhysAddr;
  const seg = { vaddr: 0xC0100000, paddr: 0x100000, data: new Uint8Array(64) };
  assertEquals(entryOf(makeElf32({ entry: 0xC0100020, segments: [seg] })), 0x100020);
  // Not inside any segment's virtual range, but PAGE_OFFSET-based like an old vmlinux's.
  const seg2 = { vaddr: 0x100000, paddr: 0x100000, data: new Uint8Array(64) };
  assertEquals(entryOf(makeElf32({ entry: 0xC0100008, segments: [seg2] })), 0x100008);
  assertEquals(
    loadError(makeElf32({ entry: 0x5000, segments: [seg2] })),
    "its entry point 0x5000 is outside its loadable segments",
  );
});

Deno.test("loadKernelImage refuses ELF64, non-x86, non-executable and truncated ELF files", () => {
  const seg = { vaddr: 0x100000, paddr: 0x100000, data: new Uint8Array(64) };
  assertEquals(
    loadError(makeElf32({ entry: 0x100000, segments: [seg], cls: 2 })),
    "64-bit kernels are not supported: use a 32-bit x86 kernel",
  );
  assertEquals(
    loadError(makeElf32({ entry: 0x100000, segments: [seg], machine: 40 })),
    "it is not an x86 kernel (ELF machine 40, not EM_386)",
  );
  assertEquals(
    loadError(makeElf32({ entry: 0x100000, segments: [seg], type: 3 })),
    "it is not an executable (ELF type 3, not ET_EXEC)",
  );
  const image = makeElf32({ entry: 0x100000, segments: [seg] });
  assertEquals(
    loadError(image.subarray(0, image.length - 1)),
    `the ELF file is truncated: segment 0 needs bytes up to ${image.length}`,
  );
  assertEquals(
    loadError(image.subarray(0, 60)),
    "the ELF file is truncated: its program headers are missing",
  );
  assertEquals(
    loadError(makeElf32({ entry: 0, segments: [] })),
    "the ELF file has no loadable (PT_LOAD) segments",
  );
});

Deno.test("loadKernelImage refuses ELF segments outside RAM", () => {
  const image = makeElf32({
    entry: 0x1000000,
    segments: [{ vaddr: 0xC1000000, paddr: 0x1000000, data: new Uint8Array(16), memsz: 0x100000 }],
  });
  assertEquals(
    loadError(image, 16 * MiB),
    "segment 0 at physical 0x1000000+0x100000 does not fit in 16 MiB of memory",
  );
});

Deno.test("loadKernelImage refuses files that are neither bzImage nor ELF", () => {
  assertEquals(
    loadError(new TextEncoder().encode("#!/bin/sh\necho not a kernel\n")),
    "not a Linux kernel: neither bzImage nor ELF",
  );
  assertEquals(loadError(new Uint8Array(4096)), "not a Linux kernel: neither bzImage nor ELF");
  assertEquals(loadError(new Uint8Array(0)), "the file is empty");
  assertThrows(
    () => loadKernelImage(new GuestMemory(16 * MiB), Uint8Array.of(0x7F, 0x45, 0x4C, 0x46), "x"),
    LaunchError,
  );
});
