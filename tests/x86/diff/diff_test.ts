/**
 * The CPU checked against the real CPU (STYLE rule 11): generated cases for every user-level integer
 * form run natively (gcc -m32) and on lib/x86's Cpu; every defined result must agree. Ignored, with
 * the reason, where the host can't run 32-bit x86 code. LGUEST_DIFF_CASES / LGUEST_DIFF_SEED
 * override the case count and seed; tools/diff/run.ts runs bigger batches with a per-form table.
 */
import { assert } from "../../assert.ts";
import { HostRunner } from "./host_runner.ts";
import { runDifferential } from "./run_differential.ts";

const COUNT = Number(Deno.env.get("LGUEST_DIFF_CASES") ?? 200_000);
/** Cases also run through the translator (translated at first execution): half as many, the same seed. */
const TRANSLATED_COUNT = Math.ceil(COUNT / 2);
const SEED = Number(Deno.env.get("LGUEST_DIFF_SEED") ?? 0x1A6E57);
const unavailable = HostRunner.unavailableReason();
if (unavailable !== null) console.warn(`diff_test ignored: ${unavailable}`);

Deno.test({
  name: `Cpu agrees with the host CPU on ${COUNT} generated cases`,
  ignore: unavailable !== null,
  fn: async () => {
    const tally = await runDifferential({ seed: SEED, count: COUNT, examplesPerForm: 2 });
    if (tally.bad > 0) {
      console.log(`\nBy symptom:\n${tally.symptoms()}\n\nBy form:\n${tally.table()}\n\n${tally.reports()}\n`);
    }
    assert(
      tally.hostErrors === 0,
      `${tally.hostErrors} cases the host could not run (a generator bug); see the reports above`,
    );
    assert(
      tally.bad === 0,
      `${tally.bad} of ${tally.total} cases differ from the host CPU (seed ${SEED}); see the table above`,
    );
  },
});

Deno.test({
  name: `Cpu through the translator agrees with the host CPU on ${TRANSLATED_COUNT} generated cases`,
  ignore: unavailable !== null,
  fn: async () => {
    const tally = await runDifferential({
      seed: SEED,
      count: TRANSLATED_COUNT,
      examplesPerForm: 2,
      translate: true,
    });
    if (tally.bad > 0) {
      console.log(`\nBy symptom:\n${tally.symptoms()}\n\nBy form:\n${tally.table()}\n\n${tally.reports()}\n`);
    }
    assert(tally.hostErrors === 0, `${tally.hostErrors} cases the host could not run`);
    assert(
      tally.bad === 0,
      `${tally.bad} of ${tally.total} translated cases differ from the host CPU (seed ${SEED}); see the table above`,
    );
  },
});
