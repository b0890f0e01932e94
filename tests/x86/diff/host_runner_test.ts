/**
 * Checks the oracle before trusting it: host_runner.c must give the same results twice, stop every
 * case cleanly, and agree with ADD/SUB/XOR worked out by formula (SDM Vol. 1, 3.4.3 status flags).
 * Ignored, with the reason, where gcc -m32 can't build 32-bit binaries.
 */
import { assert, assertEquals } from "../../assert.ts";
import { generateCases } from "./case_generator.ts";
import { COMPARED_FLAGS, type DiffCase, STOP_HLT } from "./diff_case.ts";
import { HostRunner } from "./host_runner.ts";
import { disassemble } from "../../../lib/x86/disassembler.ts";

const unavailable = HostRunner.unavailableReason();
if (unavailable !== null) console.warn(`host_runner_test ignored: ${unavailable}`);

Deno.test({
  name: "HostRunner is deterministic and stops every case cleanly",
  ignore: unavailable !== null,
  fn: async () => {
    const host = await HostRunner.build();
    try {
      const set = generateCases({ seed: 3, count: 20_000, lowRegion: host.lowRegion });
      const a = await host.run(set), b = await host.run(set);
      for (let i = 0; i < a.length; i++) {
        assertEquals(a[i].error, null, `case ${i}: ${disassemble(set.cases[i].code, 0).text}`);
        assertEquals(b[i], a[i]);
      }
    } finally {
      await host.dispose();
    }
  },
});

/** Register-form ADD/SUB/XOR r32, r32 (01/29/31 with mod 3) computed in JS. */
function expectAlu(c: DiffCase): { dst: number; value: number; flags: number } | null {
  if (c.code.length !== 2 || (c.code[1] & 0xC0) !== 0xC0 || ![0x01, 0x29, 0x31].includes(c.code[0])) {
    return null;
  }
  const dst = c.code[1] & 7, a = c.regs[dst] >>> 0, b = c.regs[(c.code[1] >> 3) & 7] >>> 0;
  const op = c.code[0];
  const r = (op === 0x01 ? a + b : op === 0x29 ? a - b : a ^ b) >>> 0;
  let flags = 0;
  if (op === 0x01 && a + b > 0xFFFF_FFFF) flags |= 0x1;
  if (op === 0x29 && b > a) flags |= 0x1;
  let parity = r & 0xFF;
  parity ^= parity >> 4;
  parity ^= parity >> 2;
  parity ^= parity >> 1;
  if ((parity & 1) === 0) flags |= 0x4;
  if (op !== 0x31 && ((a ^ b ^ r) & 0x10) !== 0) flags |= 0x10;
  if (r === 0) flags |= 0x40;
  if (r & 0x8000_0000) flags |= 0x80;
  const sa = a >>> 31, sb = b >>> 31, sr = r >>> 31;
  if (op === 0x01 && sa === sb && sr !== sa) flags |= 0x800;
  if (op === 0x29 && sa !== sb && sr !== sa) flags |= 0x800;
  return { dst, value: r | 0, flags: flags | (c.eflags & 0x400) };
}

Deno.test({
  name: "HostRunner agrees with ADD, SUB and XOR worked out by formula",
  ignore: unavailable !== null,
  fn: async () => {
    const host = await HostRunner.build();
    try {
      const mnemonics = new Set(["ADD", "SUB", "XOR"]);
      const set = generateCases({ seed: 11, count: 30_000, lowRegion: host.lowRegion, mnemonics });
      const results = await host.run(set);
      let checked = 0;
      set.cases.forEach((c, i) => {
        const want = expectAlu(c);
        if (want === null) return;
        const got = results[i];
        const what = `${disassemble(c.code, 0).text} with ${[...c.regs].map((r) => (r >>> 0).toString(16))}`;
        assertEquals(got.stop, STOP_HLT, what);
        assertEquals(got.regs[want.dst], want.value, what);
        const mask = c.code[0] === 0x31 ? COMPARED_FLAGS & ~0x10 : COMPARED_FLAGS;
        assertEquals((got.eflags & mask).toString(16), (want.flags & mask).toString(16), what);
        checked++;
      });
      assert(checked > 200, `only ${checked} register ADD/SUB/XOR cases`);
    } finally {
      await host.dispose();
    }
  },
});
