/**
 * Instructions that change SS and the stack pointer together, and ENTER (SDM Vol. 2 POP, LSS,
 * ENTER): the stack pointer moves by the width of the stack it was used on, ENTER's frame pointer
 * is the full ESP for o32, and a faulting ENTER leaves EBP and ESP alone. Guests are built on
 * testdata/x86/pm_kernel.inc (SEL_DATA16 is a 16-bit data segment with base 0).
 */
import { assertEquals } from "../../assert.ts";
import { systemTest, TestGuest } from "./test_guest.ts";

const PF = 14;

function runKernel(body: string): TestGuest {
  const g = TestGuest.kernel(body);
  g.run();
  g.expectDone();
  return g;
}

systemTest("Cpu POP SS on a 16-bit stack into a 32-bit SS moves only SP, by the old stack's width", () => {
  const g = runKernel(`
test_main:
  mov dword [0xFFFC], SEL_DATA0
  mov ax, SEL_DATA16
  mov ss, ax
  mov esp, 0x2FFFC
  pop ss                        ; reads SS:SP = 0xFFFC; SP wraps to 0, ESP's upper half stays
  store_result 0, esp
  mov ax, SEL_DATA16
  mov ss, ax
  mov esp, 0x2FFFE
  mov word [0xFFFE], SEL_DATA0
  o16 pop ss
  store_result 1, esp
  mov ax, ss
  movzx eax, ax
  store_result 2, eax
  mov ax, SEL_DATA16            ; o16 LSS writes SP only
  mov ss, ax
  mov esp, 0x12345678
  mov word [SCRATCH], 0x1000
  mov word [SCRATCH + 2], SEL_DATA0
  o16 lss sp, [SCRATCH]
  store_result 3, esp
  mov esp, STACK0_TOP
  finish
`);
  assertEquals(g.result(0).toString(16), "20000");
  assertEquals(g.result(1).toString(16), "20000");
  assertEquals(g.result(2), 0x10);
  assertEquals(g.result(3).toString(16), "12341000");
});

systemTest("Cpu ENTER: o32 on a 16-bit stack keeps ESP's upper half in EBP; the wrap is on SP", () => {
  const g = runKernel(`
test_main:
  mov ax, SEL_DATA16
  mov ss, ax
  mov esp, 0x10000              ; SP = 0
  mov ebp, 0xF000
  mov dword [0xEFFC], 0x11111111
  mov dword [0xEFF8], 0x22222222
  mov dword [0xEFF4], 0x33333333
  o32 enter 8, 36               ; level 36 & 31 = 4
  store_result 0, ebp
  store_result 1, esp
  mov eax, [0xFFFC]             ; the old EBP
  store_result 2, eax
  mov eax, [0xFFEC]             ; the frame pointer pushed last
  store_result 3, eax
  mov eax, [0xFFF0]             ; the third copied frame pointer
  store_result 4, eax
  mov ax, SEL_DATA0
  mov ss, ax
  mov esp, STACK0_TOP
  finish
`);
  assertEquals(g.result(0).toString(16), "1fffc", "EBP = ESP after pushing EBP");
  assertEquals(g.result(1).toString(16), "1ffe4", "ESP = frame - 4 * 3 copies - 4 - 8");
  assertEquals(g.result(2).toString(16), "f000");
  assertEquals(g.result(3).toString(16), "1fffc");
  assertEquals(g.result(4).toString(16), "33333333");
});

systemTest(
  "Cpu ENTER at CPL 3 whose final ESP is in a supervisor page: #PF(7) with EBP and ESP unchanged",
  () => {
    const g = runKernel(`
test_main:
  call paging_build
  mov dword [PTE(0x7E000)], 0x7E000 | PG_P | PG_W   ; supervisor page below the user stack
  call paging_on
  to_ring3 user
user:
  mov esp, 0x7F008
  mov ebp, 0x5A5A5A5A
  resume_at .r1
.f1: enter 0x20, 0
.r1:
  finish
`);
    const ev = g.events()[0];
    assertEquals([ev.vector, ev.errorCode, ev.eip, ev.cr2], [PF, 7, g.symbol("user.f1"), 0x7EFE4]);
    assertEquals([ev.esp3, ev.ebp], [0x7F008, 0x5A5A5A5A], "ESP and EBP at the fault");
  },
);
