/**
 * Runs the differential test (tests/x86/diff/) on a bigger batch and prints mismatches by symptom
 * and by form, then example reports (not with --quiet; --all lists clean forms too). Usage:
 *   deno run -A tools/diff/run.ts [--cases N] [--seed S] [--only ADD,SHLD] [--examples K] [--all] [--quiet]
 */
import { parseArgs } from "../../lib/support/node_util.ts";
import { HostRunner } from "../../tests/x86/diff/host_runner.ts";
import { runDifferential } from "../../tests/x86/diff/run_differential.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    cases: { type: "string", default: "1000000" },
    seed: { type: "string", default: String(0x1A6E57) },
    only: { type: "string" },
    examples: { type: "string", default: "3" },
    all: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
  },
});

const unavailable = HostRunner.unavailableReason();
if (unavailable !== null) {
  console.error(`Cannot run the differential test: ${unavailable}`);
  Deno.exit(2);
}
const count = Number(values.cases), seed = Number(values.seed);
const mnemonics = values.only === undefined ? undefined : new Set(values.only.toUpperCase().split(","));
const t0 = performance.now();
const tally = await runDifferential({
  seed,
  count,
  mnemonics,
  examplesPerForm: Number(values.examples),
  onProgress: (done, t) => {
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    console.error(`${done}/${count} cases, ${t.bad} differ, ${s}s`);
  },
});
console.log(`By symptom:\n${tally.symptoms()}\n\nBy form:\n${tally.table(values.all)}`);
if (!values.quiet && tally.bad > 0) console.log(`\n${tally.reports()}`);
const byMn = [...tally.byMnemonic()].filter(([, e]) => e.bad > 0).map(([m, e]) => `${m} ${e.bad}/${e.cases}`);
console.log(
  `\n${tally.bad} of ${tally.total} cases differ (seed ${seed}, ${
    ((performance.now() - t0) / 1000).toFixed(1)
  }s)`,
);
if (byMn.length > 0) console.log(`by mnemonic: ${byMn.join(", ")}`);
Deno.exit(tally.bad === 0 ? 0 : 1);
