/**
 * Cross-check of kernel_image.ts, boot_params.ts and boot_gdt.ts against a real machine: QEMU runs a
 * 64 KiB ROM of ours that enters boot.rst's 32-bit protocol with our Guest RAM image (zero page at
 * 0x7000, GDT at 0x6000, initrd at the top), and the real Debian kernel must reach /init. Ignored
 * unless qemu-system-i386 is installed (apt-get install qemu-system-x86); no lguest.ts CPU involved.
 */

import { assert } from "../assert.ts";
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import { loadKernelImage } from "../../lib/launcher/kernel_image.ts";
import { writeBootParams } from "../../lib/launcher/boot_params.ts";
import {
  BOOT_CS,
  BOOT_DS,
  BOOT_GDT_LIMIT,
  BOOT_GDT_PHYS_ADDR,
  writeBootGdt,
} from "../../lib/launcher/boot_gdt.ts";
import { READY_MARKER } from "../../tools/fetch_guest.ts";
import { guest } from "../tools/guest_fixture.ts";

const QEMU = "qemu-system-i386";
// Opt-in (LGUEST_QEMU_TESTS=1): a cross-check of our zero page against another emulator, not part of CI.
const wanted = Deno.env.get("LGUEST_QEMU_TESTS") === "1";
const hasQemu = wanted &&
  await new Deno.Command("sh", { args: ["-c", `command -v ${QEMU}`], stdout: "null" }).output()
    .then((o) => o.success, () => false);
if (!hasQemu) console.warn(`QEMU boot cross-check ignored: set LGUEST_QEMU_TESTS=1 with ${QEMU} installed`);

/**
 * The ROM: the reset vector jumps to F000:0000, which loads GDTR with the boot GDT in RAM, sets
 * CR0.PE, far-jumps to 32-bit code, loads __BOOT_DS, sets esi = zero page, ebp = edi = ebx = 0 and
 * jumps to the kernel entry, exactly the state boot.rst's "32-bit Boot Protocol" asks for.
 */
function trampolineRom(bootParamsPhysAddr: number, entryPhysAddr: number): Uint8Array {
  const rom = new Uint8Array(64 * 1024).fill(0xF4); // hlt
  const le32 = (n: number) => [n & 0xFF, (n >>> 8) & 0xFF, (n >>> 16) & 0xFF, n >>> 24];
  const gdtDesc = 0x200;
  const code: number[] = [];
  code.push(0xFA); // cli
  code.push(0x2E, 0x0F, 0x01, 0x16, gdtDesc & 0xFF, gdtDesc >> 8); // lgdt cs:[gdtDesc]
  code.push(0x0F, 0x20, 0xC0, 0x0C, 0x01, 0x0F, 0x22, 0xC0); // mov eax, cr0; or al, 1; mov cr0, eax
  const pm32 = 0xF0000 + code.length + 8;
  code.push(0x66, 0xEA, ...le32(pm32), BOOT_CS, 0x00); // jmp dword BOOT_CS:pm32
  code.push(0x66, 0xB8, BOOT_DS, 0x00); // mov ax, BOOT_DS
  code.push(0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0, 0x8E, 0xE0, 0x8E, 0xE8); // mov ds/es/ss/fs/gs, ax
  code.push(0xBE, ...le32(bootParamsPhysAddr)); // mov esi, boot_params
  code.push(0x31, 0xED, 0x31, 0xFF, 0x31, 0xDB); // xor ebp, ebp; xor edi, edi; xor ebx, ebx
  code.push(0xB8, ...le32(entryPhysAddr), 0xFF, 0xE0); // mov eax, entry; jmp eax
  rom.set(code, 0);
  rom.set([BOOT_GDT_LIMIT & 0xFF, BOOT_GDT_LIMIT >> 8, ...le32(BOOT_GDT_PHYS_ADDR)], gdtDesc);
  rom.set([0xEA, 0x00, 0x00, 0x00, 0xF0], 0xFFF0); // reset vector: jmp far F000:0000
  return rom;
}

/** Boots `kernelPath` in QEMU from our RAM image; resolves to the serial output up to the exit marker. */
async function bootInQemu(kernelPath: string, initrdPath: string, cmdline: string): Promise<string> {
  const mem = new GuestMemory(128 * 1024 * 1024);
  const kernel = loadKernelImage(mem, await Deno.readFile(kernelPath), kernelPath);
  const info = writeBootParams(mem, kernel, {
    style: "native",
    cmdline,
    initrd: await Deno.readFile(initrdPath),
  });
  writeBootGdt(mem);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/low.bin`, mem.u8.subarray(0, 0xA0000));
    await Deno.writeFile(`${dir}/high.bin`, mem.u8.subarray(0x100000));
    await Deno.writeFile(`${dir}/rom.bin`, trampolineRom(info.bootParamsPhysAddr, kernel.entryPhysAddr));
    const child = new Deno.Command(QEMU, {
      args: [
        ...["-m", "128", "-bios", `${dir}/rom.bin`, "-nographic", "-display", "none", "-no-reboot"],
        ...[
          "-device",
          `loader,file=${dir}/low.bin,addr=0`,
          "-device",
          `loader,file=${dir}/high.bin,addr=0x100000`,
        ],
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // The Guest halts after powering off (no ACPI), so stop at its exit marker; the time limit only
    // keeps a broken boot from hanging the test run.
    const deadline = setTimeout(() => child.kill(), 120_000);
    let output = "";
    const decoder = new TextDecoder();
    try {
      for await (const chunk of child.stdout) {
        output += decoder.decode(chunk, { stream: true });
        if (output.includes("LGUEST-TS-EXIT")) break;
      }
    } finally {
      clearTimeout(deadline);
      try {
        child.kill();
      } catch {
        // already gone
      }
      await child.status;
    }
    return output;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const CMDLINE = 'console=ttyS0 cryptomgr.notests=1 noisapnp lguest_run="cat /proc/cmdline"';

for (const which of ["kernel", "vmlinux"] as const) {
  Deno.test({
    name: `writeBootParams boots the real Debian ${
      which === "kernel" ? "bzImage" : "ELF vmlinux"
    } to /init in QEMU with the native layout`,
    ignore: !hasQemu || !guest || !guest[which],
    fn: async () => {
      const out = await bootInQemu(guest![which]!, guest!.initrd, CMDLINE);
      const tail = out.slice(-2000);
      assert(out.includes("BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved"), tail);
      assert(out.includes(`Kernel command line: ${CMDLINE}`), tail);
      assert(out.includes("Freeing initrd memory"), tail);
      assert(out.includes(`${READY_MARKER} ${guest!.version}`), tail);
      assert(
        out.includes(`\n${CMDLINE}\r\nLGUEST-TS-EXIT 0`) || out.includes(`\n${CMDLINE}\nLGUEST-TS-EXIT 0`),
        tail,
      );
    },
  });
}
