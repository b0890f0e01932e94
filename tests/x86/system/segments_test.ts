/**
 * Segment-register loads and their faults (SDM Vol. 2 MOV, LAR, LSL, VERR/VERW; Vol. 3A 5.4-5.6),
 * and segment bases applied to ordinary accesses, as Linux's per-CPU data uses FS. Limit and type
 * checks of the accesses themselves are in segment_limits_test.ts. Guests are built on
 * testdata/x86/pm_kernel.inc; descriptors go in its free GDT slots from SEL_FREE (0x60).
 */
import { assertEquals } from "../../assert.ts";
import { systemTest, TestGuest } from "./test_guest.ts";

const NP = 11, SS_FAULT = 12, GP = 13;

function runKernel(body: string): TestGuest {
  const g = TestGuest.kernel(body);
  g.run();
  g.expectDone();
  return g;
}

function faults(g: TestGuest): [number, number, number][] {
  return g.events().map((e) => [e.vector, e.errorCode, e.eip]);
}

systemTest(
  "Cpu segment loads: SS needs a present writable data segment at CPL, else #GP(sel) or #SS(sel)",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0, 0xFFFFF, 0x90, 0xC          ; 0x60 read-only data
  set_desc SEL_FREE + 8, 0, 0xFFFFF, 0x12, 0xC      ; 0x68 writable data, not present
  set_desc SEL_FREE + 16, 0, 0xFFFFF, 0x9A, 0xC     ; 0x70 code
  mov ax, SEL_FREE
  resume_at .r1
.f1: mov ss, ax
.r1: resume_at .r2
  mov ax, SEL_FREE + 8
.f2: mov ss, ax
.r2: resume_at .r3
  mov ax, SEL_FREE + 16
.f3: mov ss, ax
.r3: resume_at .r4
  mov ax, SEL_DATA3                                 ; DPL 3 at CPL 0
.f4: mov ss, ax
.r4: resume_at .r5
  mov ax, SEL_DATA0 | 3                             ; RPL 3 at CPL 0
.f5: mov ss, ax
.r5: resume_at .r6
  xor eax, eax
.f6: mov ss, ax
.r6:
  xor eax, eax
  mov ax, ss
  store_result 0, eax
  finish
`);
    const at = (i: number) => g.symbol(`test_main.f${i}`);
    assertEquals(faults(g), [
      [GP, 0x60, at(1)],
      [SS_FAULT, 0x68, at(2)],
      [GP, 0x70, at(3)],
      [GP, 0x20, at(4)],
      [GP, 0x10, at(5)],
      [GP, 0, at(6)],
    ]);
    assertEquals(g.result(0), 0x10, "SS unchanged by the failed loads");
  },
);

systemTest(
  "Cpu segment loads: DS faults with #NP(sel) when not present and #GP(sel) past the GDT limit",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_FREE + 8, 0, 0xFFFFF, 0x12, 0xC      ; 0x68 not present
  set_desc SEL_FREE + 16, 0, 0xFFFFF, 0x98, 0xC     ; 0x70 execute-only code
  set_desc SEL_FREE + 24, 0, 0xFFFFF, 0x9A, 0xC     ; 0x78 readable code: loadable
  mov ax, SEL_FREE + 8
  resume_at .r1
.f1: mov ds, ax
.r1: resume_at .r2
  mov ax, 0x100 | 3                                 ; GDT limit is 0xFF
.f2: mov es, ax
.r2: resume_at .r3
  mov ax, 0x104                                     ; TI=1 with no LDT
.f3: mov fs, ax
.r3: resume_at .r4
  mov ax, SEL_FREE + 16
.f4: mov gs, ax
.r4: resume_at .r5
  mov ax, SEL_TSS                                   ; a system descriptor
.f5: mov ds, ax
.r5:
  mov ax, SEL_FREE + 24
  mov gs, ax
  xor eax, eax
  mov ds, ax                                        ; a null selector is fine in DS (until used)
  xor ebx, ebx
  mov bx, ds
  mov ax, SEL_DATA0
  mov ds, ax
  store_result 0, ebx
  finish
`);
    const at = (i: number) => g.symbol(`test_main.f${i}`);
    assertEquals(faults(g), [
      [NP, 0x68, at(1)],
      [GP, 0x100, at(2)],
      [GP, 0x104, at(3)],
      [GP, 0x70, at(4)],
      [GP, SEL_TSS_NUMBER, at(5)],
    ]);
    assertEquals(g.result(0), 0);
  },
);

const SEL_TSS_NUMBER = 0x28;

systemTest("Cpu segment loads at CPL 3: a DPL0 data segment raises #GP(sel) through the TSS stack", () => {
  const g = runKernel(`
test_main:
  to_ring3 user
user:
  mov ax, SEL_DATA0
  resume_at .r1
.f1: mov ds, ax
.r1:
  finish
`);
  const [e] = g.events();
  assertEquals([e.vector, e.errorCode, e.eip, e.cs, e.ss3], [GP, 0x10, g.symbol("user.f1"), 0x1B, 0x23]);
});

systemTest("Cpu segment loads set the descriptor's accessed bit", () => {
  const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0, 0xFFFFF, 0x92, 0xC
  mov eax, [gdt + SEL_FREE + 4]
  store_result 0, eax
  mov ax, SEL_FREE
  mov ds, ax
  mov eax, [gdt + SEL_FREE + 4]
  store_result 1, eax
  finish
`);
  assertEquals([g.result(0) & 0x100, g.result(1) & 0x100], [0, 0x100]);
});

systemTest("Cpu segment bases apply to data, string and stack accesses (FS as Linux's per-CPU base)", () => {
  const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0x300000, 0xFFFFF, 0x92, 0xC   ; FS: per-CPU area at 3 MiB
  set_desc SEL_FREE + 8, 0x310000, 0xFFFF, 0x92, 0x0 ; GS: 16-bit data, base 0x310000
  set_desc SEL_FREE + 16, 0x320000, 0xFFFFF, 0x92, 0xC ; SS with a base
  mov dword [0x300020], 0x600DF00D
  mov dword [0x300030], 0x5EC0DE5
  mov ax, SEL_FREE
  mov fs, ax
  mov ax, SEL_FREE + 8
  mov gs, ax
  mov dword [fs:0x10], 0x12345678
  mov eax, [fs:0x20]
  store_result 0, eax
  lea eax, [fs:0x10]                                ; LEA ignores the base
  store_result 1, eax
  mov word [gs:0xFFFE], 0xABCD
  mov esi, 0x30
  mov edi, SCRATCH
  fs movsd
  mov eax, [SCRATCH]
  store_result 2, eax
  mov ebx, esp
  mov ax, SEL_FREE + 16
  mov ss, ax
  mov esp, 0x1000
  push dword 0xCAFEBABE
  mov ax, SEL_DATA0
  mov ss, ax
  mov esp, ebx
  finish
`);
  assertEquals(g.mem.readU32(0x300010), 0x12345678);
  assertEquals([g.result(0), g.result(1)], [0x600DF00D, 0x10]);
  assertEquals(g.mem.readU16(0x31FFFE), 0xABCD);
  assertEquals(g.result(2), 0x5EC0DE5);
  assertEquals(g.mem.readU32(0x320FFC), 0xCAFEBABE);
});

systemTest("Cpu LAR/LSL/VERR/VERW report access rights, limits and accessibility in ZF", () => {
  const g = runKernel(`
%macro probe 3 ; index, lar/lsl, selector: RESULTS[2i] = value (0xDEADBEEF if unchanged), [2i+1] = ZF
  mov eax, 0xDEADBEEF
  mov ecx, %3
  %2 eax, cx
  setz bl
  movzx ebx, bl
  mov [RESULTS + (%1) * 8], eax
  mov [RESULTS + (%1) * 8 + 4], ebx
%endmacro
%macro verify 3 ; index, verr/verw, selector: RESULTS[64 + i] = ZF
  mov ecx, %3
  %2 cx
  setz bl
  movzx ebx, bl
  mov [RESULTS + 256 + (%1) * 4], ebx
%endmacro

test_main:
  set_desc SEL_FREE, 0, 0xFFFFF, 0x98, 0xC          ; 0x60 execute-only code
  set_desc SEL_FREE + 8, 0, 0x12345, 0x90, 0x4      ; 0x68 read-only data, byte granular
  set_desc SEL_FREE + 16, 0, 0xFFFFF, 0xF2, 0xC     ; 0x70 writable data, DPL3
  set_desc SEL_FREE + 24, 0, 0xFFFFF, 0x9A, 0xC     ; 0x78 readable code
  set_call_gate SEL_FREE + 32, SEL_CODE0, 0x10000, 0xEC, 0 ; 0x80 call gate
  set_desc SEL_FREE + 40, 0, 0, 0x8E, 0             ; 0x88 interrupt gate type (not for LAR)
  set_desc SEL_FREE + 48, 0x1000, 0x57, 0x82, 0     ; 0x90 LDT
  probe 0, lar, SEL_FREE
  probe 1, lar, SEL_FREE + 8
  probe 2, lar, SEL_FREE + 32
  probe 3, lar, SEL_FREE + 40
  probe 4, lar, SEL_TSS
  probe 5, lar, 0
  probe 6, lar, 0x100
  probe 7, lsl, SEL_FREE
  probe 8, lsl, SEL_FREE + 8
  probe 9, lsl, SEL_TSS
  probe 10, lsl, SEL_FREE + 32
  probe 11, lsl, SEL_FREE + 48
  verify 0, verr, SEL_FREE
  verify 1, verr, SEL_FREE + 24
  verify 2, verr, SEL_FREE + 8
  verify 3, verw, SEL_FREE + 8
  verify 4, verw, SEL_FREE + 16
  verify 5, verw, SEL_FREE + 24
  verify 6, verr, SEL_FREE + 32
  verify 7, verr, 0
  to_ring3 user
user:
  probe 12, lar, SEL_DATA0
  probe 13, lar, SEL_CODE3
  probe 14, lsl, SEL_FREE + 8
  verify 8, verr, SEL_DATA0
  verify 9, verw, SEL_DATA3
  verify 10, verr, SEL_CODE3
  verify 11, verw, SEL_FREE + 16 | 3
  finish
`);
  const probe = (i: number) => [g.result(2 * i) >>> 0, g.result(2 * i + 1)];
  const rights = (i: number) => [g.result(2 * i) & 0x00F0FF00, g.result(2 * i + 1)];
  const MISS = [0xDEADBEEF, 0];
  assertEquals(rights(0), [0x00C09800, 1], "LAR execute-only code: G, D, P, type 8");
  assertEquals(rights(1), [0x00409000, 1], "LAR read-only data: the accessed bit was never set");
  assertEquals(rights(2), [0x0000EC00, 1], "LAR call gate");
  assertEquals(probe(3), MISS, "LAR interrupt gate: ZF=0, destination unchanged");
  assertEquals(rights(4), [0x00008B00, 1], "LAR busy TSS");
  assertEquals([probe(5), probe(6)], [MISS, MISS], "LAR null and out-of-limit selectors");
  assertEquals([probe(7), probe(8), probe(9)], [[0xFFFFFFFF, 1], [0x12345, 1], [0x2068, 1]]);
  assertEquals([probe(10), probe(11)], [MISS, [0x57, 1]], "LSL: call gate invalid, LDT valid");
  const verified = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((i) => g.result(64 + i));
  assertEquals(verified, [0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1]);
  assertEquals([probe(12), rights(13)], [MISS, [0x00C0FA00 | 0x100, 1]], "at CPL 3: DPL0 data invisible");
  assertEquals(probe(14), MISS, "LSL at CPL 3 of a DPL0 segment");
});

systemTest("Cpu LLDT: selectors with TI=1 index the LDT and are checked against its limit", () => {
  const g = runKernel(`
LDT_BASE equ 0x7000
test_main:
  mov dword [LDT_BASE + 8], DESC_LO(0x330000, 0xFFFFF)
  mov dword [LDT_BASE + 12], DESC_HI(0x330000, 0xFFFFF, 0x92, 0xC)
  set_desc SEL_FREE, LDT_BASE, 0x0F, 0x82, 0             ; two entries
  mov ax, SEL_FREE
  lldt ax
  mov ax, 0x0C                                          ; index 1, TI=1
  mov fs, ax
  mov dword [fs:0x40], 0x1D7D1D7D
  sldt eax
  store_result 0, eax
  mov ax, 0x14                                          ; index 2: past the LDT limit
  resume_at .r1
.f1: mov gs, ax
.r1:
  finish
`);
  assertEquals(g.mem.readU32(0x330040), 0x1D7D1D7D);
  assertEquals(g.result(0) & 0xFFFF, 0x60);
  assertEquals(faults(g), [[GP, 0x14, g.symbol("test_main.f1")]]);
});

systemTest("Cpu LTR marks the TSS busy; loading a busy TSS raises #GP(sel)", () => {
  const g = runKernel(`
test_main:
  mov eax, [gdt + SEL_TSS + 4]
  store_result 0, eax
  mov ax, SEL_TSS
  resume_at .r1
.f1: ltr ax
.r1:
  str eax
  store_result 1, eax
  finish
`);
  assertEquals((g.result(0) >> 8) & 0xF, 0xB, "busy 32-bit TSS");
  assertEquals(g.result(1) & 0xFFFF, 0x28);
  assertEquals(faults(g), [[GP, 0x28, g.symbol("test_main.f1")]]);
});
