/**
 * Small guest programs for the CPU benchmarks, as machine code we write ourselves (no assembler
 * needed at bench time). Each runs a counted loop and ends in HLT.
 */
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import { MmioBus, PortBus } from "../../lib/machine/bus.ts";
import { Cpu } from "../../lib/x86/cpu.ts";

function imm32(v: number): number[] {
  return [v & 0xFF, (v >>> 8) & 0xFF, (v >>> 16) & 0xFF, (v >>> 24) & 0xFF];
}

/** (a) A register ALU loop: 8 instructions per iteration. */
export function aluLoop(iterations: number): number[] {
  return [
    0xB9,
    ...imm32(iterations), // mov ecx, N
    0x01,
    0xC8, // L: add eax, ecx
    0x31,
    0xC3, //    xor ebx, eax
    0xD1,
    0xE2, //    shl edx, 1
    0x29,
    0xDA, //    sub edx, ebx
    0x46, //          inc esi
    0x39,
    0xFE, //    cmp esi, edi
    0x49, //          dec ecx
    0x75,
    0xF2, //    jnz L
    0xF4, //          hlt
  ];
}

/** (b) Loads and stores through paged memory over 64 KiB: 7 instructions per iteration. */
export function memoryLoop(iterations: number): number[] {
  return [
    0xB9,
    ...imm32(iterations), // mov ecx, N
    0xBE,
    ...imm32(0x200000), // mov esi, 0x200000
    0x8B,
    0x06, // L: mov eax, [esi]
    0x01,
    0xC8, //    add eax, ecx
    0x89,
    0x86,
    ...imm32(0x1000), // mov [esi+4096], eax
    0x83,
    0xC6,
    0x04, // add esi, 4
    0x81,
    0xE6,
    ...imm32(0x20FFFF), // and esi, 0x20FFFF
    0x49, //          dec ecx
    0x75,
    0xEA, //    jnz L
    0xF4, //          hlt
  ];
}

/** A CPU in flat 32-bit protected mode with `code` at 1 MiB; with `paging`, 4 KiB pages identity-map 8 MiB. */
export function benchCpu(code: number[], paging: boolean): Cpu {
  const mem = new GuestMemory(16 << 20);
  const cpu = new Cpu(mem, new PortBus(), new MmioBus());
  mem.u8.set(code, 0x100000);
  cpu.enterProtectedFlat(0x100000);
  cpu.regs[4] = 0x90000;
  if (paging) {
    const pd = 0x1000, pt = 0x2000;
    for (let t = 0; t < 2; t++) {
      mem.writeU32(pd + t * 4, (pt + t * 0x1000) | 7);
      for (let i = 0; i < 1024; i++) mem.writeU32(pt + t * 0x1000 + i * 4, ((t * 1024 + i) << 12) | 7);
    }
    cpu.writeControlRegister(3, pd);
    cpu.writeControlRegister(0, cpu.st[1] | 0x80000000);
  }
  return cpu;
}

/** Runs until HLT; returns instructions retired. */
export function runToHalt(cpu: Cpu): number {
  let n = 0;
  while (!cpu.halted && cpu.stopReason === "") n += cpu.execute(1_000_000);
  return n;
}
