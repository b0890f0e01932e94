/**
 * VirtualClock in host mode (issue #11): while the CPU runs, time advances with retired
 * instructions at a steered rate, so a host stall never shows as a gap between two guest
 * instructions; it converges on host time by slewing, and catches up at once while the CPU halts.
 * The host clock is a fake the tests move by hand: nothing here depends on real timing.
 */
import { assert, assertEquals } from "../assert.ts";
import { VirtualClock } from "../../lib/machine/clock.ts";
import { Machine } from "../../lib/machine/machine.ts";
import { PcPlatform } from "../../lib/machine/pc_platform.ts";
import { assemble, nasmUnavailableReason } from "../x86/system/asm.ts";

Deno.test("VirtualClock host mode: a host stall inside a slice is not a jump in virtual time", () => {
  let hostMs = 0, instructions = 0;
  const clock = new VirtualClock("host", 10, () => hostMs);
  clock.setInstructionCounter(() => instructions);
  clock.steer(20);
  const t0 = clock.nowNs();
  instructions += 100;
  hostMs += 50; // the host stopped for 50 ms between two instructions
  instructions += 1;
  assertEquals(clock.nowNs() - t0, 101 * 20, "time follows instructions within the slice");
});

Deno.test("VirtualClock host mode: slews towards host time, never backwards, catches up timer by timer when halted", () => {
  let hostMs = 0, instructions = 0;
  const clock = new VirtualClock("host", 10, () => hostMs);
  clock.setInstructionCounter(() => instructions);
  hostMs = 10; // 10 ms behind
  clock.steer(20);
  assert(clock.rateNsPerInstruction > 20, `faster while behind: ${clock.rateNsPerInstruction}`);
  let last = clock.nowNs();
  for (let slice = 0; slice < 2000; slice++) {
    instructions += 10_000;
    hostMs += 0.2; // the host runs 10 000 instructions per 0.2 ms: 20 ns each
    assert(clock.nowNs() >= last, "monotonic");
    last = clock.nowNs();
    clock.steer(20);
  }
  const lagMs = (clock.hostNs() - clock.nowNs()) / 1e6;
  assert(Math.abs(lagMs) < 1, `converged: lag ${lagMs} ms`);
  hostMs += 5; // halted for 5 ms, with a timer due 2 ms from now
  const before = clock.nowNs();
  clock.catchUp(before + 2e6);
  assertEquals(clock.nowNs(), before + 2e6, "up to the next timer only");
  clock.catchUp(Infinity);
  assertEquals(clock.nowNs(), clock.hostNs(), "then up to host time");
  clock.catchUp(Infinity);
  assertEquals(clock.nowNs(), clock.hostNs(), "never past it");
});

Deno.test({
  name: "Machine host clock: a PIT-polling TSC calibration succeeds however the host stalls",
  ignore: nasmUnavailableReason() !== null,
  async fn() {
    const { bytes } = assemble(
      Deno.readTextFileSync(new URL("../../testdata/x86/pit_quick_calibration.asm", import.meta.url)),
    );
    // A host that runs 50 ns per call of its clock, with a 3 ms stall every 500 calls.
    let calls = 0, hostMs = 0;
    const stallingHost = () => {
      calls++;
      hostMs += 50e-6 + (calls % 500 === 0 ? 3 : 0);
      return hostMs;
    };
    const m = new Machine({ memBytes: 16 << 20, clock: "host", hostMs: stallingHost });
    new PcPlatform(m, { serial: { write: () => {} }, onReset: () => {} });
    m.mem.write(0x10000, bytes);
    m.cpu.enterProtectedFlat(0x10000);
    // The run loop's event-loop yields use an unref'd channel: a timer keeps the test's loop alive.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await m.run();
    } finally {
      clearInterval(keepAlive);
    }
    const result = (i: number) => m.mem.readU32(0x2000 + i * 4);
    assertEquals(
      result(5),
      1,
      `verdict (steps ${result(0)}, d1 ${result(1)}, d2 ${result(2)}, first ${result(4)})`,
    );
    // The TSC counts 1 per virtual ns: delta / (steps * 256 PIT ticks) is the TSC per PIT tick.
    const tscPerPitTick = result(3) / (result(0) * 256);
    assert(Math.abs(tscPerPitTick - 1e9 / 1_193_182) < 2, `${tscPerPitTick} TSC ticks per PIT tick`);
  },
});

Deno.test({
  name:
    "Machine deterministic clock: never reads the host clock; the PIT calibration is the same run after run",
  ignore: nasmUnavailableReason() !== null,
  async fn() {
    const { bytes } = assemble(
      Deno.readTextFileSync(new URL("../../testdata/x86/pit_quick_calibration.asm", import.meta.url)),
    );
    const runOnce = async (jit: boolean) => {
      const hostMs = () => {
        throw new Error("the deterministic clock read the host clock");
      };
      const m = new Machine({ memBytes: 16 << 20, clock: "deterministic", hostMs, jit });
      new PcPlatform(m, { serial: { write: () => {} }, onReset: () => {} });
      m.mem.write(0x10000, bytes);
      m.cpu.enterProtectedFlat(0x10000);
      const keepAlive = setInterval(() => {}, 1000);
      try {
        await m.run();
      } finally {
        clearInterval(keepAlive);
      }
      return [
        m.cpu.instructionsRetired(),
        ...Array.from({ length: 6 }, (_, i) => m.mem.readU32(0x2000 + i * 4)),
      ];
    };
    const first = await runOnce(true);
    assertEquals(first[6], 1, "the calibration succeeds");
    assertEquals(await runOnce(true), first, "same instructions, same PIT and TSC readings");
    assertEquals(await runOnce(false), first, "and the same without the translator");
  },
});
