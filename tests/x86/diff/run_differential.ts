/**
 * One differential run: generate cases in chunks, run each chunk on the host (a child process) and
 * on our Cpu at the same time, compare, and tally mismatches per form. Shared by diff_test.ts and
 * tools/diff/run.ts. Chunk 0 uses the seed itself, so a bigger run begins with the CI run's cases.
 */
import { generateCases } from "./case_generator.ts";
import { compareResults, initialBytes, MismatchTally } from "./compare_results.ts";
import { CpuRunner } from "./cpu_runner.ts";
import type { DiffResult } from "./diff_case.ts";
import { HostRunner } from "./host_runner.ts";
import { VENDOR } from "../../../lib/x86/cpuid.ts";

export interface DiffRunOptions {
  readonly seed: number;
  readonly count: number;
  /** Cases per chunk (bounds memory on big runs). */
  readonly chunk?: number;
  /** Mismatch reports kept per form. */
  readonly examplesPerForm?: number;
  /** Only forms whose mnemonic is listed (upper case), when given. */
  readonly mnemonics?: ReadonlySet<string>;
  readonly onProgress?: (done: number, tally: MismatchTally) => void;
  /** Run our side through the translator, translating at first execution (default: interpreter only). */
  readonly translate?: boolean;
}

/** Runs `count` cases on both sides; the tally holds the verdicts. */
export async function runDifferential(opts: DiffRunOptions): Promise<MismatchTally> {
  const chunk = opts.chunk ?? 50_000;
  const tally = new MismatchTally(opts.examplesPerForm ?? 3);
  const host = await HostRunner.build();
  try {
    for (let done = 0, k = 0; done < opts.count; k++) {
      const n = Math.min(chunk, opts.count - done);
      const seed = k === 0 ? opts.seed : Math.imul(opts.seed ^ 0x5BD1_E995, k + 1) ^ k;
      const set = generateCases({
        seed,
        count: n,
        lowRegion: host.lowRegion,
        mnemonics: opts.mnemonics,
        hostIsOurVendor: host.vendor === VENDOR,
      });
      const hostDone = host.run(set);
      const cpu = new CpuRunner(set.regions, set.backgrounds, opts.translate ?? false);
      const ours: DiffResult[] = set.cases.map((c) => cpu.run(c));
      const theirs = await hostDone;
      set.cases.forEach((c, i) => {
        const initial = initialBytes(c, set.regions, set.backgrounds);
        tally.add(c, compareResults(c, theirs[i], ours[i], initial), theirs[i], ours[i]);
      });
      done += n;
      opts.onProgress?.(done, tally);
    }
  } finally {
    await host.dispose();
  }
  return tally;
}
