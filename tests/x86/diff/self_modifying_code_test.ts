/**
 * Self-modifying code against the host CPU: x86 keeps stores to code coherent with execution (SDM
 * Vol. 3A, 11.6), so our decode cache must drop what a store overwrites, including an instruction
 * already decoded, the one right after the store, and one straddling two pages.
 */
import { assertEquals } from "../../assert.ts";
import { compareResults, initialBytes } from "./compare_results.ts";
import { CpuRunner } from "./cpu_runner.ts";
import { DATA_REGION, type DiffCase, ENTRY_EIP, makeBackground } from "./diff_case.ts";
import { HostRunner } from "./host_runner.ts";
import { disassemble } from "../../../lib/x86/disassembler.ts";

const unavailable = HostRunner.unavailableReason();

function scenario(note: string, code: number[], entryEip: number, edi = 0): DiffCase {
  const bytes = new Uint8Array(code);
  return {
    form: disassemble(bytes, entryEip).form!,
    code: bytes,
    entryEip,
    regs: Int32Array.from([0x100, 0, 0, 0, DATA_REGION.base + 0xF000, 0, 0, edi]),
    eflags: 2,
    patches: [],
    undefFlags: 0,
    undefRegBits: null,
    memMask: null,
    note,
  };
}

const E = ENTRY_EIP;
const le = (a: number) => [a & 0xFF, (a >> 8) & 0xFF, (a >> 16) & 0xFF, a >>> 24];
const SCENARIOS = [
  // mov ecx,2; L: inc eax; mov byte [L],0x48 (dec eax); loop L — the second pass must run DEC.
  scenario("re-executes an instruction after patching it", [
    0xB9,
    2,
    0,
    0,
    0,
    0x40,
    0xC6,
    0x05,
    ...le(E + 5),
    0x48,
    0xE2,
    0xF6,
  ], E),
  // mov byte [next],0x48; inc eax — the store patches the very next instruction.
  scenario("patches the next instruction", [0xC6, 0x05, ...le(E + 7), 0x48, 0x40], E),
  // mov al,0x48; stosb; inc eax — a string store patches the next instruction.
  scenario("STOSB patches the next instruction", [0xB0, 0x48, 0xAA, 0x40], E, E + 3),
  // At 0x300FF0: mov ecx,2; 8 NOPs; L: add eax,1 (straddles 0x301000); mov byte [0x301000],0x10; loop L.
  scenario(
    "patches the second page of an instruction straddling two pages",
    [
      0xB9,
      2,
      0,
      0,
      0,
      ...Array(8).fill(0x90),
      0x05,
      1,
      0,
      0,
      0,
      0xC6,
      0x05,
      ...le(0x30_1000),
      0x10,
      0xE2,
      0xF2,
    ],
    0x30_0FF0,
  ),
];

Deno.test({
  name: "Cpu agrees with the host CPU on self-modifying code",
  ignore: unavailable !== null,
  fn: async () => {
    const host = await HostRunner.build();
    try {
      const regions = [DATA_REGION], backgrounds = [makeBackground(DATA_REGION, 1)];
      const set = { cases: SCENARIOS, regions, backgrounds };
      const theirs = await host.run(set);
      const cpu = new CpuRunner(regions, backgrounds);
      const failures = SCENARIOS.flatMap((c, i) => {
        const diffs = compareResults(c, theirs[i], cpu.run(c), initialBytes(c, regions, backgrounds));
        return diffs.length === 0 ? [] : [`${c.note}: ${diffs.join("; ")}`];
      });
      assertEquals(failures, []);
    } finally {
      await host.dispose();
    }
  },
});
