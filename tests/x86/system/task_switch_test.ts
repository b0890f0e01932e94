/**
 * Hardware task switching (SDM Vol. 3A, ch. 7; Vol. 2 JMP, CALL, IRET, INT): JMP and CALL to TSS
 * descriptors and task gates, IRET along the back link with NT, an IDT task gate for #DF (as
 * Linux i386 uses one), the busy bit, CR0.TS, CR3 and LDT switches, 16- and 32-bit TSSs, the
 * #GP/#NP/#TS checks with their error codes and EIPs, and a fault in the new task's segment loads
 * delivered in the new task. Guests are built on testdata/x86/pm_kernel.inc.
 */
import { assertEquals } from "../../assert.ts";
import { systemTest, TestGuest } from "./test_guest.ts";

const TS = 10, NP = 11, GP = 13;

/** TSS locations and selectors shared by the tests, and `tss32 base, eip, esp` (a flat ring-0 task). */
const TASKS = `
TSS_B       equ 0x8000
TSS_C       equ 0x8200
TSS_D       equ 0x8400
LDT_B       equ 0x8600
SEL_TSS_B   equ 0x60
SEL_GATE_B  equ 0x68
SEL_TSS_C   equ 0x70
SEL_TSS_D   equ 0x78
SEL_LDT_B   equ 0x80
SEL_SCRATCH equ 0x88

; tss32 base, eip, esp: a 32-bit TSS for a flat ring-0 task, EFLAGS 2, EAX..EDI = 0xA0000001..8
; (ESP excepted), no LDT, no I/O bitmap. Clobbers EAX, ECX, EDI.
%macro tss32 3
  mov edi, %1
  xor eax, eax
  mov ecx, 0x68 / 4
  rep stosd
  mov dword [%1 + 0x04], (%3) - 0x1000
  mov dword [%1 + 0x08], SEL_DATA0
  mov dword [%1 + 0x20], %2
  mov dword [%1 + 0x24], 2
  mov eax, 0xA0000001
  mov edi, %1 + 0x28
  mov ecx, 8
%%regs:
  stosd
  inc eax
  loop %%regs
  mov dword [%1 + 0x38], %3
  mov dword [%1 + 0x48], SEL_DATA0
  mov dword [%1 + 0x4C], SEL_CODE0
  mov dword [%1 + 0x50], SEL_DATA0
  mov dword [%1 + 0x54], SEL_DATA0
  mov dword [%1 + 0x58], SEL_DATA0
  mov dword [%1 + 0x5C], SEL_DATA0
  mov word [%1 + 0x66], 0x68
%endmacro

; A present task gate in the GDT: set_task_gate sel, tss_sel, access
%macro set_task_gate 3
  mov dword [gdt + (%1)], (%2) << 16
  mov dword [gdt + (%1) + 4], (%3) << 8
%endmacro
`;

function runKernel(body: string): TestGuest {
  const g = TestGuest.kernel(TASKS + body);
  g.run();
  g.expectDone();
  return g;
}

function results(g: TestGuest, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(g.result(i));
  return out;
}

/** The type nibble of a descriptor's high dword: 9 = available 32-bit TSS, 0xB = busy. */
const type = (hi: number) => (hi >>> 8) & 0xF;
/** EFLAGS without the status flags the tests' own instructions change. */
const system = (eflags: number) => eflags & ~0x8D5;

systemTest(
  "Cpu JMP to a 32-bit TSS saves the old task, loads the new one, moves the busy bit, and JMPs back",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_TSS_B, TSS_B, 0x67, 0x89, 0
  tss32 TSS_B, task_b, 0x60000
  mov eax, 0x11110000
  mov ebx, 0x22220000
  mov esi, 0x33330000
  mov ebp, 0x44440000
  jmp SEL_TSS_B:0
.back:
  store_result 0, eax
  store_result 1, ebx
  store_result 2, esi
  store_result 3, ebp
  xor eax, eax
  str ax
  store_result 4, eax
  mov eax, [gdt + SEL_TSS + 4]
  store_result 5, eax
  mov eax, [gdt + SEL_TSS_B + 4]
  store_result 6, eax
  mov eax, [TSS_B + 0x20]
  store_result 7, eax
  mov eax, [TSS_B + 0x28]
  store_result 8, eax
  mov eax, [TSS_B + 0x38]
  store_result 9, eax
  finish

task_b:
  store_result 10, eax
  store_result 11, ecx
  store_result 12, edi
  store_result 13, esp
  xor eax, eax
  str ax
  store_result 14, eax
  pushfd
  pop eax
  store_result 15, eax
  mov eax, cr0
  store_result 16, eax
  mov eax, [gdt + SEL_TSS + 4]
  store_result 17, eax
  mov eax, [gdt + SEL_TSS_B + 4]
  store_result 18, eax
  mov eax, [TSS_BASE + 0x20]
  store_result 19, eax
  mov eax, [TSS_BASE + 0x28]
  store_result 20, eax
  mov eax, [TSS_BASE + 0x34]
  store_result 21, eax
  movzx eax, word [TSS_B]
  store_result 22, eax
  mov eax, 0x55550000
  push eax
  jmp SEL_TSS:0
.after:
`);
    // In the new task: its registers, TR, EFLAGS without NT (JMP does not nest), CR0.TS.
    assertEquals(results(g, 10, 14), [0xA0000001, 0xA0000002, 0xA0000008, 0x60000, 0x60]);
    assertEquals(system(g.result(15)), 2, "EFLAGS from the TSS, NT clear");
    assertEquals(g.result(16) & 8, 8, "CR0.TS set by the task switch");
    assertEquals([type(g.result(17)), type(g.result(18))], [9, 0xB], "old task available, new busy");
    assertEquals(results(g, 19, 21), [g.symbol("test_main.back"), 0x11110000, 0x22220000], "old state saved");
    assertEquals(g.result(22), 0, "JMP writes no back link");
    // Back in the first task: its registers restored from its TSS, the busy bit moved back.
    assertEquals(results(g, 0, 4), [0x11110000, 0x22220000, 0x33330000, 0x44440000, 0x28]);
    assertEquals([type(g.result(5)), type(g.result(6))], [0xB, 9]);
    assertEquals(results(g, 7, 9), [g.symbol("task_b.after"), 0x55550000, 0x60000 - 4]);
  },
);

systemTest(
  "Cpu CALL through a task gate nests (NT, back link, both busy); IRET returns and the next CALL resumes after it",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_TSS_B, TSS_B, 0x67, 0x89, 0
  set_task_gate SEL_GATE_B, SEL_TSS_B, 0x85
  tss32 TSS_B, task_b, 0x60000
  mov ebx, 0x1234
  call SEL_GATE_B:0
.ret1:
  store_result 0, ebx
  pushfd
  pop eax
  store_result 1, eax
  mov eax, [gdt + SEL_TSS_B + 4]
  store_result 2, eax
  mov eax, [TSS_B + 0x24]
  store_result 3, eax
  mov eax, [TSS_B + 0x20]
  store_result 4, eax
  mov eax, [gdt + SEL_TSS + 4]
  store_result 5, eax
  call SEL_GATE_B:0
.ret2:
  store_result 6, ebx
  finish

task_b:
  xor eax, eax
  str ax
  store_result 10, eax
  pushfd
  pop eax
  store_result 11, eax
  movzx eax, word [TSS_B]
  store_result 12, eax
  mov eax, [gdt + SEL_TSS + 4]
  store_result 13, eax
  mov eax, [gdt + SEL_TSS_B + 4]
  store_result 14, eax
  mov eax, [TSS_BASE + 0x20]
  store_result 15, eax
  mov eax, [TSS_BASE + 0x24]
  store_result 16, eax
  iretd
.resume:
  inc dword [RESULTS + 20 * 4]
  pushfd
  pop eax
  store_result 21, eax
  mov eax, [TSS_BASE + 0x20]
  store_result 22, eax
  iretd
`);
    assertEquals(g.result(10), 0x60, "TR");
    assertEquals(system(g.result(11)), 0x4002, "CALL sets NT in the new task");
    assertEquals(g.result(12), 0x28, "back link to the caller's TSS");
    assertEquals([type(g.result(13)), type(g.result(14))], [0xB, 0xB], "both tasks busy while nested");
    assertEquals(g.result(15), g.symbol("test_main.ret1"));
    assertEquals(g.result(16) & 0x4000, 0, "the caller's saved EFLAGS keeps its own NT (clear)");
    // After the IRET: the caller runs on with its registers; task B is available, saved without NT.
    assertEquals(g.result(0), 0x1234);
    assertEquals(g.result(1) & 0x4000, 0, "NT clear in the caller");
    assertEquals(type(g.result(2)), 9, "IRET clears the returning task's busy bit");
    assertEquals(system(g.result(3)), 2, "IRET saves the old task's EFLAGS with NT cleared");
    assertEquals(g.result(4), g.symbol("task_b.resume"));
    assertEquals(type(g.result(5)), 0xB, "the caller stays busy");
    // The second CALL resumes task B after its IRET.
    assertEquals([g.result(20), system(g.result(21)), g.result(22)], [1, 0x4002, g.symbol("test_main.ret2")]);
    assertEquals(g.result(6), 0x1234);
  },
);

systemTest(
  "Cpu task switch faults: busy TSS #GP, not present #NP, short limit #TS, IRET to an available TSS #TS, all at the instruction with nothing changed",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_TSS_B, TSS_B, 0x67, 0x89, 0
  tss32 TSS_B, task_b, 0x60000
  resume_at .r1
.f1:
  jmp SEL_TSS:0
.r1:
  resume_at .r2
.f2:
  call SEL_TSS:0
.r2:
  set_desc SEL_SCRATCH, TSS_B, 0x67, 0x09, 0
  resume_at .r3
.f3:
  jmp SEL_SCRATCH:0
.r3:
  set_desc SEL_SCRATCH, TSS_B, 0x66, 0x89, 0
  resume_at .r4
.f4:
  jmp SEL_SCRATCH:0
.r4:
  mov word [TSS_BASE], SEL_TSS_B
  pushfd
  or dword [esp], 0x4000
  popfd
  resume_at .r5
.f5:
  iretd
.r5:
  pushfd
  and dword [esp], ~0x4000
  popfd
  set_task_gate SEL_GATE_B, SEL_TSS, 0x85
  resume_at .r6
.f6:
  jmp SEL_GATE_B:0
.r6:
  resume_at .r7
.f7:
  jmp (SEL_TSS_B | 3):0
.r7:
  set_task_gate SEL_GATE_B, SEL_TSS_B, 0x05
  resume_at .r8
.f8:
  call SEL_GATE_B:0
.r8:
  mov eax, [gdt + SEL_TSS_B]
  mov [LDT_B + 8], eax
  mov eax, [gdt + SEL_TSS_B + 4]
  mov [LDT_B + 12], eax
  set_desc SEL_LDT_B, LDT_B, 0xF, 0x82, 0
  mov ax, SEL_LDT_B
  lldt ax
  resume_at .r9
.f9:
  jmp 0x0C:0
.r9:
  xor eax, eax
  lldt ax
  xor eax, eax
  str ax
  store_result 0, eax
  mov eax, [gdt + SEL_TSS + 4]
  store_result 1, eax
  mov eax, [gdt + SEL_TSS_B + 4]
  store_result 2, eax
  mov eax, cr0
  store_result 3, eax
  finish
task_b:
  store_result 9, 0xBAD
  finish
`);
    const ev = g.events();
    const at = (l: string) => g.symbol(`test_main.${l}`);
    assertEquals(ev.map((e) => [e.vector, e.errorCode, e.eip]), [
      [GP, 0x28, at("f1")],
      [GP, 0x28, at("f2")],
      [NP, 0x88, at("f3")],
      [TS, 0x88, at("f4")],
      [TS, 0x60, at("f5")],
      [GP, 0x28, at("f6")],
      [GP, 0x60, at("f7")],
      [NP, 0x68, at("f8")],
      [GP, 0x0C, at("f9")],
    ]);
    assertEquals(g.result(0), 0x28, "TR unchanged");
    assertEquals([type(g.result(1)), type(g.result(2))], [0xB, 9], "busy bits unchanged");
    assertEquals(g.result(3) & 8, 0, "CR0.TS untouched by failed switches");
    assertEquals(g.result(9), 0);
  },
);

systemTest(
  "Cpu #DF through an IDT task gate runs the double-fault task with the error code on its stack",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_TSS_D, TSS_D, 0x67, 0x89, 0
  tss32 TSS_D, df_task, 0x60000
  mov dword [idt + 8 * 8], SEL_TSS_D << 16
  mov dword [idt + 8 * 8 + 4], 0x8500
  set_idt_access 13, 0x0E
  mov eax, 0x1230
.f1:
  mov ds, ax
  store_result 0, 0xBAD
  finish

df_task:
  store_result 1, esp
  pop eax
  store_result 2, eax
  xor eax, eax
  str ax
  store_result 3, eax
  movzx eax, word [TSS_D]
  store_result 4, eax
  pushfd
  pop eax
  store_result 5, eax
  mov eax, [TSS_BASE + 0x20]
  store_result 6, eax
  mov eax, [TSS_BASE + 0x28]
  store_result 7, eax
  mov eax, [gdt + SEL_TSS + 4]
  store_result 8, eax
  mov eax, [gdt + SEL_TSS_D + 4]
  store_result 9, eax
  finish
`);
    assertEquals(g.result(0), 0);
    assertEquals(results(g, 1, 4), [0x60000 - 4, 0, 0x78, 0x28]);
    assertEquals(system(g.result(5)), 0x4002, "NT: the exception nested the task");
    assertEquals(results(g, 6, 7), [g.symbol("test_main.f1"), 0x1230], "the faulting task's EIP and EAX");
    assertEquals([type(g.result(8)), type(g.result(9))], [0xB, 0xB]);
    assertEquals(g.eventSummary(), [], "nothing reached the logging stubs");
  },
);

systemTest("Cpu a bad data segment in the new TSS raises #TS in the new task, at its first EIP", () => {
  const g = runKernel(`
test_main:
  set_desc SEL_TSS_B, TSS_B, 0x67, 0x89, 0
  tss32 TSS_B, task_b, 0x60000
  mov dword [TSS_B + 0x54], 0xF0
  set_hook 10, ts_hook
  jmp SEL_TSS_B:0
.after:
  store_result 9, 0xBAD
  finish

task_b:
  xor eax, eax
  str ax
  store_result 0, eax
  mov ax, ds
  store_result 1, eax
  mov eax, [TSS_BASE + 0x20]
  store_result 2, eax
  finish

ts_hook:
  mov dword [ebp + F_DS], SEL_DATA0
  xor eax, eax
  str ax
  store_result 3, eax
  ret
`);
  const ev = g.events();
  assertEquals(ev.map((e) => [e.vector, e.errorCode, e.eip, e.cs]), [[TS, 0xF0, g.symbol("task_b"), 0x08]]);
  assertEquals(ev[0].esp, 0x60000, "on the new task's stack");
  assertEquals(results(g, 0, 3), [0x60, 0x10, g.symbol("test_main.after"), 0x60]);
  assertEquals(g.result(9), 0);
});

systemTest(
  "Cpu JMP to a 16-bit TSS: word-sized state, upper register halves all ones, FS/GS null, saved back as words",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_TSS_C, TSS_C, 0x2B, 0x81, 0
  mov edi, TSS_C
  xor eax, eax
  mov ecx, 11
  rep stosd
  mov word [TSS_C + 0x0E], task_c - IMAGE_BASE
  mov word [TSS_C + 0x10], 0x0046
  mov word [TSS_C + 0x12], 0x1111
  mov word [TSS_C + 0x18], 0x4444
  mov word [TSS_C + 0x1A], 0xFF00
  mov word [TSS_C + 0x22], SEL_DATA16
  mov word [TSS_C + 0x24], SEL_CODE16
  mov word [TSS_C + 0x26], SEL_DATA16
  mov word [TSS_C + 0x28], SEL_DATA16
  mov ebx, 0xABCD0000
  jmp SEL_TSS_C:0
.back:
  store_result 8, ebx
  movzx eax, word [TSS_C + 0x0E]
  store_result 9, eax
  movzx eax, word [TSS_C + 0x12]
  store_result 10, eax
  movzx eax, word [TSS_C + 0x10]
  store_result 11, eax
  mov eax, [gdt + SEL_TSS_C + 4]
  store_result 12, eax
  finish

bits 16
task_c:
  mov [RESULTS + 0], eax
  mov [RESULTS + 4], ebx
  mov [RESULTS + 8], esp
  xor eax, eax
  mov ax, fs
  mov [RESULTS + 12], eax
  pushfd
  pop eax
  mov [RESULTS + 16], eax
  xor eax, eax
  str ax
  mov [RESULTS + 20], eax
  mov ax, 0x7777
  jmp SEL_TSS:0
.after:
bits 32
`);
    assertEquals(results(g, 0, 5), [0xFFFF1111, 0xFFFF4444, 0xFFFFFF00, 0, 0x0046, 0x70]);
    assertEquals(g.result(8), 0xABCD0000, "the 32-bit task's EBX came back whole");
    assertEquals(g.result(9), g.symbol("task_c.after") - 0x10000, "IP saved as a word");
    assertEquals(g.result(10), 0x7777);
    assertEquals(g.result(11), 0x0046);
    assertEquals(type(g.result(12)), 1, "16-bit TSS available again");
  },
);

systemTest("Cpu a task switch loads the new task's CR3 and LDT (CR3 is not saved in the old TSS)", () => {
  const g = runKernel(`
test_main:
  call paging_build
  call paging_on
  mov eax, [PD_BASE]
  mov [PT_POOL], eax
  mov dword [PT_POOL + 4], (PT_POOL + 0x1000) | 7
  mov dword [PT_POOL + 0x1000], 0x500000 | 7
  mov dword [0x500000], 0xFEEDFACE
  mov dword [0x400000], 0x11111111
  mov dword [TSS_BASE + 0x1C], PD_BASE
  mov dword [LDT_B], 0
  mov dword [LDT_B + 4], 0
  mov dword [LDT_B + 8], DESC_LO(RESULTS, 0xFFF)
  mov dword [LDT_B + 12], DESC_HI(RESULTS, 0xFFF, 0x92, 0x4)
  set_desc SEL_LDT_B, LDT_B, 0xF, 0x82, 0
  set_desc SEL_TSS_B, TSS_B, 0x67, 0x89, 0
  tss32 TSS_B, task_b, 0x60000
  mov dword [TSS_B + 0x1C], PT_POOL
  mov dword [TSS_B + 0x60], SEL_LDT_B
  mov dword [TSS_B + 0x58], 0x0C
  jmp SEL_TSS_B:0
.back:
  mov eax, cr3
  store_result 5, eax
  mov eax, [0x400000]
  store_result 6, eax
  xor eax, eax
  sldt ax
  store_result 7, eax
  mov eax, [TSS_B + 0x1C]
  store_result 8, eax
  finish

task_b:
  mov eax, cr3
  store_result 0, eax
  mov eax, [0x400000]
  store_result 1, eax
  xor eax, eax
  sldt ax
  store_result 2, eax
  mov dword [fs:12], 0xC0FFEE
  mov ax, fs
  store_result 4, eax
  jmp SEL_TSS:0
`);
  assertEquals(results(g, 0, 4), [0x110000, 0xFEEDFACE, 0x80, 0xC0FFEE, 0x0C]);
  assertEquals(results(g, 5, 8), [0x100000, 0x11111111, 0, 0x110000]);
});

systemTest(
  "Cpu a read-only SS in the new TSS raises #TS(SS) in the new task, delivered through a #TS task gate",
  () => {
    const g = runKernel(`
test_main:
  set_desc SEL_TSS_B, TSS_B, 0x67, 0x89, 0
  set_desc SEL_TSS_D, TSS_D, 0x67, 0x89, 0
  set_desc SEL_SCRATCH, 0, 0xFFFFF, 0x90, 0xC
  tss32 TSS_B, task_b, 0x60000
  mov dword [TSS_B + 0x50], SEL_SCRATCH
  tss32 TSS_D, ts_task, 0x50000
  mov dword [idt + 10 * 8], SEL_TSS_D << 16
  mov dword [idt + 10 * 8 + 4], 0x8500
  jmp SEL_TSS_B:0
  store_result 9, 0xBAD
  finish

task_b:
  store_result 9, 0xBAD
  finish

ts_task:
  pop eax
  store_result 0, eax
  xor eax, eax
  str ax
  store_result 1, eax
  movzx eax, word [TSS_D]
  store_result 2, eax
  mov eax, [TSS_B + 0x20]
  store_result 3, eax
  movzx eax, word [TSS_B + 0x50]
  store_result 4, eax
  mov eax, [gdt + SEL_TSS_B + 4]
  store_result 5, eax
  mov eax, [gdt + SEL_TSS + 4]
  store_result 6, eax
  finish
`);
    assertEquals(results(g, 0, 2), [0x88, 0x78, 0x60], "error code SS, in the #TS task, nested from task B");
    assertEquals(
      results(g, 3, 4),
      [g.symbol("task_b"), 0x88],
      "task B saved at its first EIP with its raw SS",
    );
    assertEquals(
      [type(g.result(5)), type(g.result(6))],
      [0xB, 9],
      "B busy (nested), the first task released by the JMP",
    );
    assertEquals(g.result(9), 0);
  },
);
