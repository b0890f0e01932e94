/**
 * Real mode from the reset vector (SDM Vol. 3A, 9.1 and 9.9; Vol. 2 INT n/IRET, CALL/RET far):
 * testdata/x86/real_mode_rom.asm runs from F000:FFF0 through segment arithmetic, 16-bit
 * addressing, far calls and the IVT into protected mode, with 32- and 16-bit code segments.
 */
import { assertEquals } from "../../assert.ts";
import { CS } from "../../../lib/x86/cpu.ts";
import { SIGNATURE } from "../../../lib/x86/cpuid.ts";
import { systemTest, TestGuest } from "./test_guest.ts";

const ROM_SOURCE = Deno.readTextFileSync(new URL("../../../testdata/x86/real_mode_rom.asm", import.meta.url));

function runRom(): TestGuest {
  const g = TestGuest.rom(ROM_SOURCE);
  g.run(100_000);
  return g;
}

function word(g: TestGuest, index: number): number {
  return g.result(index) & 0xFFFF;
}

systemTest("Cpu reset: execution starts at F000:FFF0 and EDX holds the CPUID signature", () => {
  const g = new TestGuest(2 << 20);
  g.cpu.reset();
  assertEquals([g.cpu.segSel[CS], g.cpu.segBase[CS], g.cpu.eip], [0xF000, 0xF0000, 0xFFF0]);
  const r = runRom();
  assertEquals(r.result(0), SIGNATURE);
  assertEquals(word(r, 1), 0xF000);
  assertEquals(r.debugOutput, "RFIP6B", r.describe());
});

systemTest("Cpu real mode: segment:offset pairs that name the same byte alias it", () => {
  const g = runRom();
  assertEquals(g.mem.readU16(0x12350), 0xBEEF);
  assertEquals(word(g, 2), 0xBEEF);
});

systemTest("Cpu real mode: 16-bit addressing modes use DS, SS for BP, and wrap offsets at 64 KiB", () => {
  const g = runRom();
  const at = (phys: number) => g.mem.readU16(phys);
  assertEquals(
    [at(0x30120), at(0x30144), at(0x40220), at(0x4023E), at(0x30020), at(0x30050)],
    [0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666],
  );
  assertEquals([at(0x40200), at(0x30100), at(0x30400), at(0x30210)], [0x7777, 0x8888, 0x9999, 0xBBBB]);
  assertEquals(at(0x30110), 0xAAAA, "[bx+si+disp] wraps at 64 KiB");
  assertEquals(at(0x30030), 0xCCCC, "32-bit addressing through the 67h prefix");
});

systemTest("Cpu real mode: far CALL pushes CS:IP and RETF returns, also through an aliased segment", () => {
  const g = runRom();
  assertEquals([word(g, 4), word(g, 5), word(g, 6)], [0xF000, g.symbol("far_ret_point"), 0xF000]);
  assertEquals([word(g, 22), word(g, 24)], [0xF100, 0xF000]);
  assertEquals([word(g, 7), word(g, 26)], [0x7000, 0x7000], "SP before and after the far calls");
});

systemTest("Cpu real mode: INT n goes through the IVT with IF/TF cleared and IRET restores FLAGS", () => {
  const g = runRom();
  assertEquals(word(g, 8), 0x0003, "FLAGS in the handler: CF kept, IF cleared");
  assertEquals([word(g, 9), word(g, 10), word(g, 11)], [g.symbol("int42_ret"), 0xF000, 0x0203]);
  assertEquals([word(g, 12), word(g, 13)], [0x0203, 0x4242]);
});

systemTest("Cpu real mode: LGDT, CR0.PE and a far jump enter 32-bit protected mode", () => {
  const g = runRom();
  assertEquals(g.result(14) & 1, 1, "CR0.PE");
  assertEquals([g.result(15), g.result(16), g.result(17)], [0x08, 0x12345678, 0x8000]);
  assertEquals(g.cpu.halted, true);
  assertEquals(g.cpu.code32, true);
  assertEquals(g.cpu.segSel[CS], 0x08);
});

systemTest("Cpu protected mode: a 16-bit code segment uses 16-bit operands and near calls", () => {
  const g = runRom();
  assertEquals([g.result(18), g.result(19)], [0x18, 2]);
  assertEquals(word(g, 20), g.symbol("pm16_ret"));
  assertEquals(g.result(21), 0xB0B0CAFE);
});
