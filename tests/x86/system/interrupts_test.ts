/**
 * Interrupt and exception delivery (SDM Vol. 3A, ch. 6; 17.3.1.4 single-step): external
 * interrupts from an InterruptSource gated by IF, the STI shadow, HLT wake-up, the TF trap with
 * DR6.BS, double and triple faults (task gates: task_switch_test.ts). Guests are built on
 * testdata/x86/pm_kernel.inc.
 */
import { assert, assertEquals } from "../../assert.ts";
import { FakeInterruptController, STACK0_TOP, STACK3_TOP, systemTest, TestGuest } from "./test_guest.ts";

const DB = 1, DF = 8, GP = 13;

/**
 * IRQ handler used by the tests below: RESULTS[1] counts; 2-3 the interrupted EIP and EFLAGS; 4
 * the handler's CS; 5-7 the frame's CS, ESP and SS (the last two only after a privilege change);
 * 8 the handler's ESP on entry.
 */
const IRQ_HANDLER = `
irq_handler:
  mov [RESULTS + 8 * 4], esp
  inc dword [RESULTS + 1 * 4]
  push eax
  mov eax, [esp + 4]
  mov [RESULTS + 2 * 4], eax
  mov eax, [esp + 8]
  mov [RESULTS + 5 * 4], eax
  mov eax, [esp + 12]
  mov [RESULTS + 3 * 4], eax
  mov eax, [esp + 16]
  mov [RESULTS + 6 * 4], eax
  mov eax, [esp + 20]
  mov [RESULTS + 7 * 4], eax
  mov ax, cs
  mov [RESULTS + 4 * 4], ax
  pop eax
  iretd
`;

function withController(body: string): { g: TestGuest; pic: FakeInterruptController } {
  const g = TestGuest.kernel(body + IRQ_HANDLER);
  const pic = new FakeInterruptController();
  g.cpu.interrupts = pic;
  return { g, pic };
}

systemTest("Cpu external interrupts are delivered only with IF=1, one instruction after STI", () => {
  const { g, pic } = withController(`
test_main:
  set_idt 0x20, irq_handler, 0x8E
  mov ecx, 100
.spin:
  loop .spin
  mov eax, [RESULTS + 1 * 4]
  store_result 0, eax
  sti
  nop
.after_nop:
  cli
  finish
`);
  pic.raise(0x20);
  g.run();
  g.expectDone();
  assertEquals(g.result(0), 0, "nothing delivered while IF=0");
  assertEquals([g.result(1), g.result(2)], [1, g.symbol("test_main.after_nop")]);
  assertEquals(g.result(3) & 0x200, 0x200, "the interrupted code had IF=1");
  assertEquals(pic.acknowledged, 1);
});

systemTest("Cpu STI; HLT takes a pending interrupt after HLT, returning past it", () => {
  const { g, pic } = withController(`
test_main:
  set_idt 0x20, irq_handler, 0x8E
  sti
  hlt
.after_hlt:
  cli
  finish
`);
  pic.raise(0x20);
  g.run();
  g.expectDone();
  assertEquals([g.result(1), g.result(2)], [1, g.symbol("test_main.after_hlt")]);
});

systemTest("Cpu HLT stays halted with IF=0 and wakes on an interrupt with IF=1", () => {
  const { g, pic } = withController(`
test_main:
  set_idt 0x20, irq_handler, 0x8E
  sti
  hlt
.woke:
  cli
  hlt
.woke_again:
  finish
`);
  g.run();
  assertEquals([g.cpu.halted, g.result(1)], [true, 0]);
  assertEquals(g.cpu.execute(1000), 0, "a halted CPU retires nothing");
  pic.raise(0x20);
  g.run();
  assertEquals([g.cpu.halted, g.result(1), g.result(2)], [true, 1, g.symbol("test_main.woke")]);
  pic.raise(0x20);
  g.run();
  assertEquals(
    [g.cpu.halted, g.result(1), pic.acknowledged],
    [true, 1, 1],
    "IF=0: still halted, not acknowledged",
  );
  g.cpu.halted = false; // as after an NMI or INIT would do: let the program finish
  g.run();
  g.expectDone();
});

systemTest("Cpu external interrupts at CPL 3 ignore the gate's DPL and switch to the TSS stack", () => {
  const { g, pic } = withController(`
test_main:
  set_idt 0x20, irq_handler, 0x8E
  to_ring3 user, 0x202
user:
  nop
.spin:
  cmp dword [RESULTS + 1 * 4], 0
  je .spin
  finish
`);
  pic.raise(0x20);
  g.run();
  g.expectDone();
  assertEquals([g.result(1), g.result(4)], [1, 0x08]);
  const eip = g.result(2);
  assert(eip >= g.symbol("user") && eip <= g.symbol("user.spin"), "interrupted in user code");
  assertEquals([g.result(5) & 0xFFFF, g.result(6), g.result(7) & 0xFFFF], [0x1B, STACK3_TOP, 0x23]);
  assertEquals(g.result(8), STACK0_TOP - 20, "SS, ESP, EFLAGS, CS, EIP on the TSS stack");
});

systemTest("Cpu single-step: TF traps with #DB after each instruction and sets DR6.BS", () => {
  const g = TestGuest.kernel(`
test_main:
  set_hook 1, db_hook
  pushfd
  or dword [esp], 0x100
  popfd
.s0: mov eax, 1
.s1: mov ebx, 2
.s2: add eax, ebx
.s3: mov ecx, 3
.s4: nop
  store_result 1, eax
  finish

db_hook:
  mov eax, dr6
  mov [RESULTS], eax
  xor eax, eax
  mov dr6, eax
  inc dword [RESULTS + 2 * 4]
  cmp dword [RESULTS + 2 * 4], 3
  jb .keep
  and dword [ebp + F_EFLAGS], ~0x100
.keep:
  ret
`);
  g.run();
  g.expectDone();
  assertEquals(g.result(0) & 0x4000, 0x4000, "DR6.BS");
  assertEquals(g.result(1), 3);
  const ev = g.events();
  assertEquals(ev.map((e) => [e.vector, e.eip]), [
    [DB, g.symbol("test_main.s1")],
    [DB, g.symbol("test_main.s2")],
    [DB, g.symbol("test_main.s3")],
  ]);
  for (const e of ev) assertEquals(e.eflags & 0x100, 0x100, "TF in the pushed EFLAGS");
});

systemTest("Cpu #NP while delivering #GP becomes a double fault with error code 0", () => {
  const g = TestGuest.kernel(`
test_main:
  set_idt_access 13, 0x0E
  set_hook 8, df_hook
  mov ax, 0x1230
.f1:
  mov ds, ax
  store_result 0, 0xBAD
  finish
df_hook:
  finish
`);
  g.run();
  g.expectDone();
  assertEquals(g.eventSummary(), [[DF, 0]]);
  assertEquals(g.result(0), 0);
});

systemTest("Cpu a fault while delivering a double fault shuts the CPU down (triple fault)", () => {
  const g = TestGuest.kernel(`
test_main:
  lidt [zero_idtr]
  ud2
  finish
zero_idtr:
  dw 0
  dd 0
`);
  g.run();
  assertEquals(g.cpu.stopReason, "shutdown", g.describe());
  assert(g.cpu.stopMessage.includes("triple fault"), g.cpu.stopMessage);
  assertEquals(g.done, false);
});

systemTest("Cpu.stopOnException stops at the faulting instruction with the vector and error code", () => {
  const g = TestGuest.kernel(`
test_main:
  mov eax, 0x1234
  mov ax, 0x1230
.f1:
  mov ds, ax
  finish
`);
  g.cpu.stopOnException = true;
  g.run();
  assertEquals(g.cpu.stopReason, "exception");
  assertEquals([g.cpu.lastException, g.cpu.lastErrorCode, g.cpu.eip], [GP, 0x1230, g.symbol("test_main.f1")]);
  assertEquals(g.cpu.regs[0], 0x1230);
});

systemTest(
  "Cpu an external interrupt through a not-present gate raises #NP with EXT set (vector*8+3)",
  () => {
    const { g, pic } = withController(`
test_main:
  set_idt_access 0x20, 0x0E
  resume_at .after_nop
  sti
  nop
.after_nop:
  cli
  finish
`);
    pic.raise(0x20);
    g.run();
    g.expectDone();
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip]), [[
      11,
      0x20 * 8 + 3,
      g.symbol("test_main.after_nop"),
    ]]);
  },
);

systemTest("Cpu STI; SYSEXIT takes a pending interrupt after SYSEXIT, in user mode", () => {
  const { g, pic } = withController(`
test_main:
  set_idt 0x20, irq_handler, 0x8E
  mov ecx, 0x174
  mov eax, SEL_SYSENTER
  xor edx, edx
  wrmsr
  mov ecx, STACK3_TOP
  mov edx, user
  sti
  sysexit
user:
  nop
  finish
`);
  pic.raise(0x20);
  g.run();
  g.expectDone();
  assertEquals([g.result(1), g.result(2), g.result(5) & 0xFFFF], [1, g.symbol("user"), 0x53]);
});

systemTest("Cpu a #PF while delivering a #PF becomes a #DF, and CR2 holds the second fault's address", () => {
  const g = TestGuest.kernel(`
DATA equ 0x400000
NEW_IDT equ DATA + 0x1000 - 0x48        ; gate 8 in a mapped page, gate 14 in the next, unmapped
test_main:
  call paging_build
  mov esi, idt
  mov edi, NEW_IDT
  mov ecx, 512
  rep movsd
  mov dword [PTE(DATA + 0x1000)], 0
  mov dword [PTE(DATA + 0x5000)], 0
  call paging_on
  mov word [SCRATCH], 0x7FF
  mov dword [SCRATCH + 2], NEW_IDT
  mov eax, df_direct
  mov [NEW_IDT + 8 * 8], ax
  shr eax, 16
  mov [NEW_IDT + 8 * 8 + 6], ax
  lidt [SCRATCH]
.f1:
  mov eax, [DATA + 0x5000]
  finish
df_direct:
  pop dword [RESULTS + 0 * 4]
  pop dword [RESULTS + 1 * 4]
  mov eax, cr2
  mov [RESULTS + 2 * 4], eax
  mov dword [DONE], DONE_MAGIC
  cli
  hlt
`);
  g.run();
  g.expectDone();
  assertEquals(g.result(0), 0, "#DF error code");
  assertEquals(g.result(2), 0x400000 + 0x1000 - 0x48 + 14 * 8, "CR2: the #PF gate's address");
});
