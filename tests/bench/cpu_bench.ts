/**
 * Interpreter speed (issue #2): guest MIPS on (a) a register ALU loop and (b) loads and stores
 * through paged memory. `deno task bench` prints Deno's timings and, at the end, the MIPS figures.
 */
import { aluLoop, benchCpu, memoryLoop, runToHalt } from "./guest_programs.ts";

const ITERATIONS = 2_000_000;
const best: Record<string, number> = {};

function bench(name: string, code: number[], paging: boolean) {
  Deno.bench({
    name,
    n: 10,
    warmup: 3,
    fn(b) {
      const cpu = benchCpu(code, paging);
      b.start();
      const t = performance.now();
      const n = runToHalt(cpu);
      const dt = performance.now() - t;
      b.end();
      best[name] = Math.max(best[name] ?? 0, n / dt / 1000);
    },
  });
}

bench("cpu: register ALU loop (16M instructions)", aluLoop(ITERATIONS), false);
bench("cpu: paged load/store loop (14M instructions)", memoryLoop(ITERATIONS), true);

globalThis.addEventListener("unload", () => {
  for (const [name, mips] of Object.entries(best)) console.log(`${name}: ${mips.toFixed(1)} MIPS`);
});
