/**
 * Privilege transitions (SDM Vol. 3A, ch. 5 and 6; Vol. 1, 19.5 I/O protection; Vol. 2 IRET, CALL,
 * RET, SYSENTER, SYSEXIT): IRET to ring 3, INT through DPL3 and DPL0 gates, the TSS stack switch,
 * privileged instructions at CPL 3, the TSS I/O bitmap, SYSENTER/SYSEXIT and call gates with
 * parameter copy. Guests are built on testdata/x86/pm_kernel.inc.
 */
import { assertEquals } from "../../assert.ts";
import { STACK0_TOP, STACK3_TOP, systemTest, TEST_PORT, TestGuest } from "./test_guest.ts";

const GP = 13, NP = 11;

function runKernel(body: string): TestGuest {
  const g = TestGuest.kernel(body);
  g.run();
  g.expectDone();
  return g;
}

function results(g: TestGuest, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(g.result(i));
  return out;
}

systemTest("Cpu IRET to ring 3 loads CS and SS at RPL 3 and nulls FS/GS holding ring-0 data", () => {
  const g = runKernel(`
test_main:
  to_ring3 user, 0x202
user:
  store_result 5, esp
  pushfd
  pop dword [RESULTS + 6 * 4]
  xor eax, eax
  mov ax, cs
  store_result 0, eax
  mov ax, ss
  store_result 1, eax
  mov ax, ds
  store_result 2, eax
  mov ax, fs
  store_result 3, eax
  mov ax, gs
  store_result 4, eax
  finish
`);
  assertEquals(results(g, 0, 6), [0x1B, 0x23, 0x23, 0, 0, STACK3_TOP, 0x202]);
});

systemTest(
  "Cpu INT 0x80 from ring 3 through a DPL3 trap gate switches to the TSS stack and IRET returns",
  () => {
    const esp0 = STACK0_TOP - 0x100;
    const g = runKernel(`
test_main:
  set_idt 0x80, syscall_entry, 0xEF
  mov dword [TSS_BASE + 4], ${esp0}
  to_ring3 user, 0x202
user:
  mov eax, 0x1234
  int 0x80
.ret:
  store_result 10, eax
  store_result 11, esp
  xor eax, eax
  mov ax, cs
  store_result 12, eax
  mov ax, ss
  store_result 13, eax
  finish

syscall_entry:
  store_result 0, esp
  mov ecx, [esp]
  store_result 1, ecx
  mov ecx, [esp + 4]
  store_result 2, ecx
  mov ecx, [esp + 8]
  store_result 3, ecx
  mov ecx, [esp + 12]
  store_result 4, ecx
  mov ecx, [esp + 16]
  store_result 5, ecx
  pushfd
  pop ecx
  store_result 6, ecx
  xor ecx, ecx
  mov cx, ss
  store_result 7, ecx
  mov cx, cs
  store_result 8, ecx
  inc eax
  iretd
`);
    assertEquals(g.result(0), esp0 - 20, "five dwords pushed on the ring-0 stack");
    assertEquals(results(g, 1, 5), [g.symbol("user.ret"), 0x1B, 0x202, STACK3_TOP, 0x23]);
    assertEquals(g.result(6) & 0x200, 0x200, "a trap gate leaves IF set");
    assertEquals([g.result(7), g.result(8)], [0x10, 0x08]);
    assertEquals(results(g, 10, 13), [0x1235, STACK3_TOP, 0x1B, 0x23]);
  },
);

systemTest("Cpu privileged instructions at CPL 3 with IOPL=0 raise #GP(0) on the TSS stack", () => {
  const g = runKernel(`
test_main:
  to_ring3 user
user:
  resume_at .r1
.f1: hlt
.r1: resume_at .r2
.f2: cli
.r2: resume_at .r3
.f3: sti
.r3: resume_at .r4
.f4: in al, 0x71
.r4: resume_at .r5
.f5: out 0x71, al
.r5: resume_at .r6
.f6: mov eax, cr0
.r6: resume_at .r7
.f7: lgdt [gdtr]
.r7: resume_at .r8
.f8: rdmsr
.r8: resume_at .r9
.f9: invlpg [0]
.r9: resume_at .r10
.f10: mov dr7, eax
.r10:
  finish
`);
  const ev = g.events();
  assertEquals(
    ev.map((e) => [e.vector, e.errorCode, e.eip]),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => [GP, 0, g.symbol(`user.f${i}`)]),
  );
  for (const e of ev) assertEquals([e.cs, e.ss3, e.esp3, e.eflags & 0x3200], [0x1B, 0x23, STACK3_TOP, 0x200]);
});

systemTest("Cpu at CPL 3 with IOPL=3 CLI, STI and IN/OUT are allowed without the I/O bitmap", () => {
  const g = runKernel(`
test_main:
  to_ring3 user, 0x3202
user:
  cli
  pushfd
  pop eax
  store_result 0, eax
  sti
  mov dx, ${TEST_PORT + 1}
  in al, dx
  movzx eax, al
  store_result 1, eax
  finish
`);
  assertEquals(g.eventSummary(), []);
  assertEquals([g.result(0) & 0x3200, g.result(1)], [0x3000, 0xA1]);
});

systemTest(
  "Cpu IN/OUT at CPL 3 with IOPL=0 follow the TSS I/O permission bitmap, every byte of the access",
  () => {
    const g = runKernel(`
test_main:
  and byte [IOMAP_BASE + 0x60], ~0x8D   ; ports 0x300, 0x302, 0x303, 0x307
  and byte [IOMAP_BASE + 0x61], ~0x01   ; port 0x308
  to_ring3 user
user:
  mov dx, 0x300
  in al, dx
  movzx eax, al
  store_result 0, eax
  mov dx, 0x302
  in ax, dx
  movzx eax, ax
  store_result 1, eax
  mov dx, 0x307
  in ax, dx                             ; bits in two bitmap bytes
  movzx eax, ax
  store_result 2, eax
  mov dx, 0x302
  mov al, 0x55
  out dx, al
  resume_at .r1
  mov dx, 0x301
.f1: in al, dx
.r1: resume_at .r2
  mov dx, 0x303
.f2: in ax, dx                          ; 0x304 denied
.r2: resume_at .r3
  mov dx, 0x300
.f3: in ax, dx                          ; 0x301 denied
.r3: resume_at .r4
  mov dx, 0x304
.f4: out dx, al
.r4: resume_at .r5
  mov dx, 0x300
.f5: in eax, dx                         ; 0x301 denied
.r5:
  finish
`);
    assertEquals(results(g, 0, 2), [0xA0, 0xB0B2, 0xB0B7]);
    assertEquals(g.portWrites, [[0x302, 1, 0x55]]);
    assertEquals(
      g.events().map((e) => [e.vector, e.errorCode, e.eip]),
      [1, 2, 3, 4, 5].map((i) => [GP, 0, g.symbol(`user.f${i}`)]),
    );
  },
);

systemTest(
  "Cpu INT n to a DPL0 gate from ring 3 raises #GP(vector*8+2); a not-present gate raises #NP",
  () => {
    const g = runKernel(`
test_main:
  set_idt_access 0x41, 0x0E            ; not present
  resume_at .r1
.f1: int 0x41
.r1:
  to_ring3 user
user:
  resume_at .r1
.f1: int 0x40
.r1: resume_at .r2
.f2: int3
.r2: resume_at .r3
.f3: into                               ; OF clear: no interrupt, no check
  int 0xFF
.r3:
  finish
`);
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip]), [
      [NP, 0x41 * 8 + 2, g.symbol("test_main.f1")],
      [GP, 0x40 * 8 + 2, g.symbol("user.f1")],
      [GP, 3 * 8 + 2, g.symbol("user.f2")],
      [GP, 0xFF * 8 + 2, g.symbol("user.f3") + 1],
    ]);
  },
);

systemTest("Cpu IDT limit: a vector beyond it raises #GP(vector*8+2)", () => {
  const g = runKernel(`
test_main:
  mov word [SCRATCH], 0x40 * 8 - 1
  mov eax, idt
  mov [SCRATCH + 2], eax
  lidt [SCRATCH]
  resume_at .r1
.f1: int 0x40
.r1:
  lidt [idtr]
  finish
`);
  assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip]), [[
    GP,
    0x40 * 8 + 2,
    g.symbol("test_main.f1"),
  ]]);
});

systemTest("Cpu SYSENTER/SYSEXIT round trip through MSRs 0x174-0x176", () => {
  const esp0 = STACK0_TOP - 0x200;
  const g = runKernel(`
test_main:
  resume_at .r0
.f0: sysenter                           ; IA32_SYSENTER_CS = 0: #GP(0)
.r0:
  mov ecx, 0x174
  mov eax, SEL_SYSENTER
  xor edx, edx
  wrmsr
  mov ecx, 0x175
  mov eax, ${esp0}
  wrmsr
  mov ecx, 0x176
  mov eax, sysenter_entry
  wrmsr
  mov ecx, 0x176
  rdmsr
  store_result 0, eax
  to_ring3 user, 0x202
user:
  resume_at .r1
.f1: sysexit                            ; CPL 3: #GP(0)
.r1:
  mov ebp, esp
  mov edx, .back
  sysenter
.back:
  store_result 10, esp
  xor eax, eax
  mov ax, cs
  store_result 11, eax
  mov ax, ss
  store_result 12, eax
  pushfd
  pop eax
  store_result 13, eax
  finish

sysenter_entry:
  store_result 1, esp
  xor eax, eax
  mov ax, cs
  store_result 2, eax
  mov ax, ss
  store_result 3, eax
  pushfd
  pop eax
  store_result 4, eax
  mov ecx, ebp
  sysexit
`);
  assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip]), [
    [GP, 0, g.symbol("test_main.f0")],
    [GP, 0, g.symbol("user.f1")],
  ]);
  assertEquals(g.result(0), g.symbol("sysenter_entry"));
  assertEquals(results(g, 1, 3), [esp0, 0x40, 0x48]);
  assertEquals(g.result(4) & 0x200, 0, "SYSENTER clears IF");
  assertEquals(results(g, 10, 12), [STACK3_TOP, 0x53, 0x5B]);
});

systemTest(
  "Cpu far CALL through a call gate copies parameters to the ring-0 stack and RETF n returns to ring 3",
  () => {
    const g = runKernel(`
test_main:
  set_call_gate SEL_FREE, SEL_CODE0, gate_target, 0xEC, 2     ; 32-bit, DPL3, 2 parameters
  set_call_gate SEL_FREE + 8, SEL_CODE0, gate_target, 0x8C, 0 ; DPL0
  set_call_gate SEL_FREE + 16, SEL_CODE0, gate_target, 0x6C, 0 ; DPL3, not present
  to_ring3 user
user:
  push dword 0x1111
  push dword 0x2222
  call (SEL_FREE | 3):0
.ret:                                                        ; DS is null now: store through ES
  mov [es:RESULTS + 10 * 4], esp
  xor eax, eax
  mov ax, cs
  mov [es:RESULTS + 11 * 4], eax
  mov ax, ss
  mov [es:RESULTS + 12 * 4], eax
  mov ax, ds
  mov [es:RESULTS + 13 * 4], eax
  mov ax, es
  mov [es:RESULTS + 14 * 4], eax
  push dword SEL_DATA3
  pop ds
  resume_at .r1
.f1: call (SEL_FREE + 8):0
.r1: resume_at .r2
.f2: call (SEL_FREE + 16):0
.r2:
  finish

gate_target:
  store_result 0, esp
  mov eax, [esp]
  store_result 1, eax
  mov eax, [esp + 4]
  store_result 2, eax
  mov eax, [esp + 8]
  store_result 3, eax
  mov eax, [esp + 12]
  store_result 4, eax
  mov eax, [esp + 16]
  store_result 5, eax
  mov eax, [esp + 20]
  store_result 6, eax
  xor eax, eax
  mov ax, cs
  store_result 7, eax
  mov ax, SEL_DATA0
  mov ds, ax
  retf 8
`);
    assertEquals(g.result(0), STACK0_TOP - 24, "SS, ESP, two parameters, CS, EIP");
    assertEquals(results(g, 1, 7), [g.symbol("user.ret"), 0x1B, 0x2222, 0x1111, STACK3_TOP - 8, 0x23, 0x08]);
    assertEquals(results(g, 10, 12), [STACK3_TOP, 0x1B, 0x23], "RETF 8 pops the parameters on both stacks");
    assertEquals(
      [g.result(13), g.result(14)],
      [0, 0x23],
      "DS (DPL0) nulled on the return to ring 3; ES kept",
    );
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip]), [
      [GP, 0x68, g.symbol("user.f1")],
      [NP, 0x70, g.symbol("user.f2")],
    ]);
  },
);

systemTest("Cpu POPF and IRET at CPL 3 with IOPL=0 leave IF and IOPL unchanged, without faulting", () => {
  const g = runKernel(`
test_main:
  to_ring3 user, 0x202
user:
  push dword 0x3000 | 0x2            ; IF=0, IOPL=3
  popfd
  pushfd
  pop dword [RESULTS + 0 * 4]
  push dword SEL_DATA3
  push dword STACK3_TOP
  push dword 0x3002
  push dword SEL_CODE3
  push dword .after
  iretd
.after:
  pushfd
  pop dword [RESULTS + 1 * 4]
  finish
`);
  assertEquals(g.eventSummary(), []);
  assertEquals([g.result(0) & 0x3200, g.result(1) & 0x3200], [0x200, 0x200]);
});

systemTest(
  "Cpu IN at CPL 3 with IOPL=0 faults for every port when the TSS limit leaves no room for the bitmap",
  () => {
    const g = runKernel(`
SMALL_TSS equ 0x7800
test_main:
  mov dword [SMALL_TSS + 4], STACK0_TOP
  mov dword [SMALL_TSS + 8], SEL_DATA0
  mov word [SMALL_TSS + 0x66], 0x68
  set_desc SEL_FREE, SMALL_TSS, 0x67, 0x89, 0
  mov ax, SEL_FREE
  ltr ax
  to_ring3 user
user:
  mov dx, ${TEST_PORT}
  resume_at .r1
.f1: in al, dx
.r1:
  finish
`);
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip, e.esp3]), [
      [GP, 0, g.symbol("user.f1"), STACK3_TOP],
    ]);
  },
);
