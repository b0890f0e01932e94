/**
 * CPU speed (issues #2, #10): guest MIPS on (a) a register ALU loop and (b) loads and stores
 * through paged memory, with the translator and with the pure interpreter (--no-jit), interleaved in
 * one run. `deno task bench` prints Deno's timings and, at the end, the MIPS figures and ratios.
 */
import { aluLoop, benchCpu, memoryLoop, runToHalt } from "./guest_programs.ts";

const ITERATIONS = 2_000_000;
const best: Record<string, number> = {};

function bench(name: string, code: number[], paging: boolean, jit: boolean) {
  Deno.bench({
    name,
    n: 10,
    warmup: 3,
    fn(b) {
      const cpu = benchCpu(code, paging);
      cpu.jit.enabled = jit;
      b.start();
      const t = performance.now();
      const n = runToHalt(cpu);
      const dt = performance.now() - t;
      b.end();
      best[name] = Math.max(best[name] ?? 0, n / dt / 1000);
    },
  });
}

for (const jit of [true, false]) {
  const mode = jit ? "translator" : "interpreter";
  bench(`cpu ${mode}: register ALU loop (16M instructions)`, aluLoop(ITERATIONS), false, jit);
  bench(`cpu ${mode}: paged load/store loop (14M instructions)`, memoryLoop(ITERATIONS), true, jit);
}

globalThis.addEventListener("unload", () => {
  for (const [name, mips] of Object.entries(best)) console.log(`${name}: ${mips.toFixed(1)} MIPS`);
});
