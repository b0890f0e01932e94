/**
 * A short fixed-seed pass of `deno task fuzz` (issue #8 §5) over every virtio device and the
 * virtio-pci transport, the user network's packet parsers and the lguest hypercalls: no exception out of a guest access, no device error behind the barrier,
 * no write outside guest RAM, bounded heap; and the same seed replays the same guest. The long run
 * (10 M operations per device) is the tool's job; its figures are in the README.
 */
import { assert, assertEquals } from "../assert.ts";
import { FUZZ_TARGETS } from "../../tools/fuzz/targets.ts";
import { fuzzDevice } from "../../tools/fuzz/virtio_fuzzer.ts";
import { fuzzLguest } from "../../tools/fuzz/lguest_fuzzer.ts";

const SEED = 0x5EED;
const OPS = 4000;

for (const target of FUZZ_TARGETS) {
  Deno.test(`fuzzDevice ${target.name}: ${OPS} hostile guest operations, nothing escapes`, async () => {
    const r = await fuzzDevice(target, SEED, OPS);
    assertEquals(
      [r.exceptions, r.deviceErrors, r.outsideRam, r.hostViolations],
      [0, 0, 0, 0],
      r.firstFailure,
    );
    assert(r.completions > 100, `the device did real work (${r.completions} completions)`);
    assert(r.needsReset > 10, `the fuzzer broke rings (${r.needsReset} resets)`);
    assert(r.heapGrowthBytes < 64 << 20, `heap grew ${r.heapGrowthBytes} bytes`);
    // The same seed replays the same guest operations; where the device completes on the event
    // loop after real host I/O (9p), when each completion lands may differ, and so may the counts.
    if (target.settleEvery === undefined) {
      const again = await fuzzDevice(target, SEED, OPS);
      assertEquals(
        [again.completions, again.needsReset],
        [r.completions, r.needsReset],
        "same seed, same guest",
      );
    }
  });
}

for (const pae of [false, true]) {
  Deno.test(`fuzzLguest ${pae ? "PAE" : "non-PAE"}: ${OPS} hostile hypercalls, nothing escapes`, async () => {
    const r = await fuzzLguest(SEED, OPS, pae);
    assertEquals([r.exceptions, r.outsideRam], [0, 0], r.firstFailure);
    assert(r.completions > OPS / 4, `Guests survived calls (${r.completions})`);
    assert(r.needsReset > 100, `the host stopped rule-breaking Guests (${r.needsReset})`);
    const again = await fuzzLguest(SEED, OPS, pae);
    assertEquals(
      [again.completions, again.needsReset],
      [r.completions, r.needsReset],
      "same seed, same Guests",
    );
  });
}
