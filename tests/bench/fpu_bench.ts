/**
 * x87 speed (issue #11): guest MIPS on (a) an arithmetic loop (loads, + * / sqrt, integer
 * conversions, a compare, stores) and (b) a transcendental loop (FSIN, FPATAN, FYL2X, F2XM1), both
 * at the FNINIT default, extended precision. `deno bench -A tests/bench/fpu_bench.ts` prints Deno's
 * timings and, at the end, the MIPS figures.
 */
import { benchCpu, runToHalt } from "./guest_programs.ts";

const DATA = 0x200000;

function imm32(v: number): number[] {
  return [v & 0xFF, (v >>> 8) & 0xFF, (v >>> 16) & 0xFF, (v >>> 24) & 0xFF];
}

/** 14 instructions per iteration, 11 of them x87. */
// deno-fmt-ignore
function arithmeticLoop(iterations: number): number[] {
  return [
    0xB9, ...imm32(iterations), // mov ecx, N
    0xBE, ...imm32(DATA), //       mov esi, DATA
    0xDB, 0xE3, //                 fninit
    0xDD, 0x06, //                 L: fld qword [esi]
    0xD8, 0xC8, //                 fmul st0, st0
    0xDC, 0x46, 0x08, //           fadd qword [esi+8]
    0xD9, 0xC0, //                 fld st0
    0xD9, 0xFA, //                 fsqrt
    0xDE, 0xF9, //                 fdivp st1, st0
    0xDD, 0x56, 0x18, //           fst qword [esi+24]
    0xDB, 0x5E, 0x10, //           fistp dword [esi+16]
    0xDB, 0x46, 0x10, //           fild dword [esi+16]
    0xDC, 0x5E, 0x08, //           fcomp qword [esi+8]
    0xDF, 0xE0, //                 fnstsw ax
    0x49, //                       dec ecx
    0x75, 0xE2, //                 jnz L
    0xF4, //                       hlt
  ];
}

/** 13 instructions per iteration, 10 of them x87. */
// deno-fmt-ignore
function transcendentalLoop(iterations: number): number[] {
  return [
    0xB9, ...imm32(iterations), // mov ecx, N
    0xBE, ...imm32(DATA), //       mov esi, DATA
    0xDB, 0xE3, //                 fninit
    0xDD, 0x06, //                 L: fld qword [esi]
    0xD9, 0xFE, //                 fsin
    0xD9, 0xE8, //                 fld1
    0xD9, 0xF3, //                 fpatan
    0xD9, 0xE8, //                 fld1
    0xD9, 0xC9, //                 fxch st1
    0xD9, 0xF1, //                 fyl2x
    0xD9, 0xF0, //                 f2xm1
    0xDD, 0x5E, 0x18, //           fstp qword [esi+24]
    0xDF, 0xE0, //                 fnstsw ax
    0x49, //                       dec ecx
    0x75, 0xE8, //                 jnz L
    0xF4, //                       hlt
  ];
}

const best: Record<string, number> = {};

function bench(name: string, code: number[]) {
  Deno.bench({
    name,
    n: 5,
    warmup: 2,
    fn(b) {
      const cpu = benchCpu(code, false);
      const data = new DataView(new ArrayBuffer(16));
      data.setFloat64(0, 1.5, true);
      data.setFloat64(8, 2.25, true);
      for (let i = 0; i < 16; i++) cpu.mem.u8[DATA + i] = data.getUint8(i);
      b.start();
      const t = performance.now();
      const n = runToHalt(cpu);
      const dt = performance.now() - t;
      b.end();
      best[name] = Math.max(best[name] ?? 0, n / dt / 1000);
    },
  });
}

bench("fpu: x87 arithmetic loop (2.8M instructions)", arithmeticLoop(200_000));
bench("fpu: x87 transcendental loop (1.3M instructions)", transcendentalLoop(100_000));

globalThis.addEventListener("unload", () => {
  for (const [name, mips] of Object.entries(best)) console.log(`${name}: ${mips.toFixed(1)} MIPS`);
});
