/**
 * The translator (lib/x86/jit/translator.ts) is exact (issue #10): the same program run with it and
 * with the pure interpreter ends with the same registers, flags, memory, EIP and retired count, also
 * when sliced into odd budgets, when a page fault hits the middle of a translated block, when a block
 * rewrites its own next instruction, and when a device (DMA) rewrites translated code.
 */
import { assert, assertEquals } from "../../assert.ts";
import { aluLoop, benchCpu, memoryLoop } from "../../bench/guest_programs.ts";
import type { Cpu } from "../../../lib/x86/cpu.ts";

function imm32(v: number): number[] {
  return [v & 0xFF, (v >>> 8) & 0xFF, (v >>> 16) & 0xFF, (v >>> 24) & 0xFF];
}

/** Everything a program can leave behind, as one comparable string. */
function snapshot(cpu: Cpu, memFrom = 0x100000, memTo = 0x220000): string {
  let h = 0x811C9DC5;
  const ram = cpu.ram8;
  for (let i = memFrom; i < memTo; i++) h = Math.imul(h ^ ram[i], 0x01000193);
  return `regs=${Array.from(cpu.regs).join(",")} eflags=${cpu.getEflags()} eip=${cpu.eip} ` +
    `n=${cpu.instructionsRetired()} halted=${cpu.halted} exc=${cpu.lastException} cr2=${cpu.st[2]} mem=${h}`;
}

/** Runs to HLT (or a stop) in slices of `slice` instructions; returns the slice-by-slice EIPs too. */
function runSliced(cpu: Cpu, slice: number, max = 50_000_000): string[] {
  const trace: string[] = [];
  let total = 0;
  while (!cpu.halted && cpu.stopReason === "" && total < max) {
    total += cpu.execute(slice);
    trace.push(`${cpu.instructionsRetired()}@${cpu.eip}`);
  }
  return trace;
}

/** Runs `code` both ways (translator on, off) and checks they agree at every slice boundary. */
function bothWays(make: (jit: boolean) => Cpu, slice: number): { on: Cpu; off: Cpu } {
  const off = make(false), on = make(true);
  const traceOff = runSliced(off, slice), traceOn = runSliced(on, slice);
  assertEquals(traceOn, traceOff);
  assertEquals(snapshot(on), snapshot(off));
  return { on, off };
}

function program(code: number[], paging: boolean, jit: boolean): Cpu {
  const cpu = benchCpu(code, paging);
  cpu.jit.enabled = jit;
  return cpu;
}

Deno.test("translator runs hot loops exactly as the interpreter, slice by slice", () => {
  for (const slice of [1_000_003, 997, 7]) {
    const { on } = bothWays((jit) => program(aluLoop(20_000), false, jit), slice);
    assert(on.jit.stats.units > 0, on.jit.describe());
    // An 8-instruction block never fits in a 7-instruction slice: the interpreter runs it then.
    if (slice > 7) assert(on.jit.stats.compiledInstructions > 0, on.jit.describe());
    bothWays((jit) => program(memoryLoop(20_000), true, jit), slice);
  }
});

Deno.test("translator: a unit that leaves by a taken Jcc in its middle and follows a JMP counts exactly", () => {
  // The unit from L runs on through the not-taken JZ (a side exit when taken) and the JMP (followed
  // to its target on the same page) to the JNE that closes the loop.
  const code = [
    0x31,
    0xD2, //                 xor edx, edx
    0xB9,
    ...imm32(0), //          mov ecx, 0
    0x41, //              L: inc ecx
    0x89,
    0xC8, //                 mov eax, ecx
    0x83,
    0xE0,
    0x03, //                 and eax, 3
    0x74,
    0x04, //                 jz SKIP      <- taken one time in four: leaves the unit here
    0x01,
    0xCB, //                 add ebx, ecx
    0xEB,
    0x03, //                 jmp J        <- followed inside the unit
    0x83,
    0xC2,
    0x01, //           SKIP: add edx, 1
    0x81,
    0xF9,
    ...imm32(30_000), //  J: cmp ecx, 30000
    0x75,
    0xE9, //                 jne L
    0xF4, //                 hlt
  ];
  for (const eager of [false, true]) {
    for (const slice of [1_000_003, 997, 13, 7]) {
      const { on, off } = bothWays((jit) => {
        const cpu = program(code, false, jit);
        cpu.jit.eager = jit && eager;
        return cpu;
      }, slice);
      assertEquals(off.regs[2], 7_500);
      if (slice > 13) assert(on.jit.stats.compiledInstructions > 100_000, on.jit.describe());
    }
  }
});

Deno.test("translator: a page fault in the middle of a translated block leaves EIP, registers and the count exact", () => {
  // Identity paging covers 8 MiB: the load faults once ESI passes it.
  const code = [
    0xBE,
    ...imm32(0x200000), //   mov esi, 0x200000
    0x43, //              L: inc ebx
    0x42, //                 inc edx
    0x8B,
    0x06, //                 mov eax, [esi]     <- #PF here, third instruction of the block
    0x81,
    0xC6,
    ...imm32(0x1000), //     add esi, 0x1000
    0xEB,
    0xF3, //                 jmp L
  ];
  const make = (jit: boolean) => {
    const cpu = program(code, true, jit);
    cpu.jit.eager = jit; // translated at first execution (the loop is too short to get hot)
    cpu.stopOnException = true;
    return cpu;
  };
  const { on } = bothWays(make, 1_000);
  assertEquals(on.lastException, 14);
  assertEquals(on.st[2] >>> 0, 0x800000);
  assert(on.jit.stats.compiledInstructions > 0, on.jit.describe());
});

Deno.test("translator: a block that rewrites its own next instruction runs the new one", () => {
  const base = 0x100000;
  const patched = base + 5 + 6 + 2; // the imm8 of the ADD below
  const code = [
    0xB9,
    ...imm32(300), //        mov ecx, 300
    0x88,
    0x0D,
    ...imm32(patched), //  L: mov [patched], cl
    0x83,
    0xC0,
    0x00, //                 add eax, imm8      <- its immediate was just written
    0x49, //                 dec ecx
    0x75,
    0xF4, //                 jnz L
    0xF4, //                 hlt
  ];
  const { on } = bothWays((jit) => program(code, false, jit), 1_000_000);
  let sum = 0;
  for (let c = 300; c >= 1; c--) sum += (c << 24) >> 24;
  assertEquals(on.regs[0], sum);
  assert(on.jit.stats.codeInvalidations > 0, on.jit.describe());
});

Deno.test("translator: code rewritten by a device (DMA) after it was translated runs afresh", () => {
  const make = (jit: boolean) => {
    const cpu = program(aluLoop(5_000), false, jit);
    runSliced(cpu, 100_000);
    // The loop's "add eax, ecx" becomes "sub eax, ecx" through the device write path.
    cpu.mem.write(0x100005, new Uint8Array([0x29, 0xC8]));
    cpu.halted = false;
    cpu.st[0] = 0x100000;
    return cpu;
  };
  const { on } = bothWays(make, 1_000_000);
  assert(on.jit.stats.units > 1, on.jit.describe());
});
