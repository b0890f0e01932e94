/**
 * Virtual-8086 mode (SDM Vol. 3A, ch. 20, VME off; Vol. 2 IRET, INT, PUSHF, POPF, IN, OUT): entry by
 * IRET and by a task switch, real-mode addressing at CPL 3 under paging, the IOPL-sensitive
 * instructions and their #GP(0), INT n and exceptions to the ring-0 handler with the 9-dword
 * frame, IRET back, and the I/O bitmap (which VM86 consults whatever IOPL is). Guests are built on
 * testdata/x86/pm_kernel.inc; the VM86 code lives in the kernel image (CS 0x1000 = IMAGE_BASE).
 */
import { assertEquals } from "../../assert.ts";
import { FakeInterruptController, STACK0_TOP, systemTest, TEST_PORT, TestGuest } from "./test_guest.ts";

const BP = 3, UD = 6, GP = 13, PF = 14;

const VM86 = `
TEST_PORT equ ${TEST_PORT}
V86_CS  equ 0x1000              ; CS base = IMAGE_BASE: IP = label - IMAGE_BASE
V86_SS  equ 0x7000
V86_DS  equ 0x0200              ; DS base = RESULTS: [4 * i] is RESULTS[i]
%define V86IP(l) ((l) - IMAGE_BASE)
; Frame offsets (from EBP in a hook) of what an interrupt from VM86 pushes above EFLAGS.
F_V86_ESP equ 60
F_V86_SS  equ 64
F_V86_ES  equ 68
F_V86_DS  equ 72
F_V86_FS  equ 76
F_V86_GS  equ 80
F_V86_END equ 84

; to_vm86 label, eflags: IRETD from ring 0 to V86_CS:label with SS:SP = V86_SS:0xFFF0.
%macro to_vm86 2
  push dword 0x0305
  push dword 0x0304
  push dword V86_DS
  push dword 0x0303
  push dword V86_SS
  push dword 0xFFF0
  push dword %2
  push dword V86_CS
  push dword V86IP(%1)
  iretd
%endmacro

; #GP hook: step over the faulting VM86 instruction (1 byte; 2 for INT n or after a 66 prefix).
gp_skip:
  movzx eax, word [ebp + F_CS]
  shl eax, 4
  add eax, [ebp + F_EIP]
  movzx eax, byte [eax]
  mov ecx, 1
  cmp al, 0xCD
  je .two
  cmp al, 0x66
  jne .one
.two:
  mov ecx, 2
.one:
  add [ebp + F_EIP], ecx
  ret
hook_ret:
  ret
hook_finish:
  finish
`;

function runKernel(body: string): TestGuest {
  const g = TestGuest.kernel(VM86 + body);
  g.run();
  g.expectDone();
  return g;
}

function results(g: TestGuest, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(g.result(i));
  return out;
}

/** A VM86 label's IP (the code runs with CS = 0x1000, base IMAGE_BASE). */
function ip(g: TestGuest, label: string): number {
  return g.symbol(label) - 0x10000;
}

systemTest(
  "Cpu VM86 round trip: IRET in, real-mode code, INT n to ring 0 with the 9-dword frame and nulled segments, IRET back",
  () => {
    const g = runKernel(`
test_main:
  set_idt_access 0x21, 0xEE
  set_hook 0x21, int21_hook
  to_vm86 v86, 0x23002

int21_hook:
  mov eax, [ebp + F_EIP]
  store_result 0, eax
  mov eax, [ebp + F_CS]
  store_result 1, eax
  mov eax, [ebp + F_EFLAGS]
  store_result 2, eax
  mov eax, [ebp + F_V86_ESP]
  store_result 3, eax
  mov eax, [ebp + F_V86_SS]
  store_result 4, eax
  mov eax, [ebp + F_V86_ES]
  store_result 5, eax
  mov eax, [ebp + F_V86_DS]
  store_result 6, eax
  mov eax, [ebp + F_V86_FS]
  store_result 7, eax
  mov eax, [ebp + F_V86_GS]
  store_result 8, eax
  mov eax, [ebp + F_DS]
  store_result 9, eax
  mov eax, [ebp + F_ES]
  store_result 10, eax
  xor eax, eax
  mov ax, fs
  store_result 11, eax
  mov ax, gs
  store_result 12, eax
  lea eax, [ebp + F_V86_END]
  store_result 13, eax
  mov eax, [ebp + F_EAX]
  store_result 14, eax
  pushfd
  pop eax
  store_result 15, eax
  xor eax, eax
  mov ax, cs
  store_result 16, eax
  inc word [ebp + F_EAX]
  mov dword [ebp + F_V86_FS], 0x0404
  ret

bits 16
v86:
  mov ax, 0x1234
  int 0x21
.after_int:
  mov [4 * 20], ax
  mov [4 * 21], sp
  mov ax, fs
  mov [4 * 22], ax
  mov ax, cs
  mov [4 * 23], ax
  pushf
  pop ax
  mov [4 * 24], ax
  push word 0x0202
  popf
  pushf
  pop ax
  mov [4 * 25], ax
  pushf
  push cs
  push word V86IP(.after_iret)
  iret
  mov word [4 * 26], 0xBAD
.after_iret:
  mov word [4 * 27], 1
  call V86_CS:V86IP(far_sub)
  mov [4 * 28], ax
  mov bx, 0xFFFF
  mov ax, [bx + 1]
  mov [4 * 29], ax
  cli
  sti
  int 0xFE
far_sub:
  mov ax, 0x5A5A
  retf
bits 32
`);
    // The ring-0 handler's view: the 9-dword frame (EIP CS EFLAGS ESP SS ES DS FS GS) on the TSS's
    // ring-0 stack, data segments nulled, VM cleared in the handler's EFLAGS.
    assertEquals(results(g, 0, 8), [
      ip(g, "v86.after_int"),
      0x1000,
      0x23002,
      0xFFF0,
      0x7000,
      0x0303,
      0x0200,
      0x0304,
      0x0305,
    ]);
    assertEquals(results(g, 9, 13), [0, 0, 0, 0, STACK0_TOP], "DS ES FS GS null; frame ends at TSS.ESP0");
    assertEquals(g.result(14) & 0xFFFF, 0x1234);
    assertEquals(g.result(15) & 0x20000, 0, "VM clear in the handler");
    assertEquals(g.result(16), 0x08);
    // Back in VM86: the handler's changes to AX and the saved FS came back; SP as before.
    assertEquals(results(g, 20, 23), [0x1235, 0xFFF0, 0x0404, 0x1000]);
    assertEquals(g.result(24) & 0x3200, 0x3000, "IOPL 3 visible to PUSHF, IF clear");
    assertEquals(g.result(25) & 0x3200, 0x3200, "POPF changes IF at IOPL 3 but not IOPL");
    assertEquals(
      [g.result(26), g.result(27), g.result(28)],
      [0, 1, 0x5A5A],
      "IRET and far CALL/RETF real-mode style",
    );
    assertEquals(g.result(29), ip(g, "v86.after_int"), "[bx+1] with BX=0xFFFF wraps to offset 0");
  },
);

systemTest(
  "Cpu VM86 at IOPL 0: CLI STI PUSHF POPF INT n IRET PUSHFD raise #GP(0) at the instruction; INT3 and I/O do not",
  () => {
    const g = runKernel(`
test_main:
  set_hook 13, gp_skip
  set_hook 3, hook_ret
  set_hook 6, hook_finish
  set_idt_access 3, 0xEE
  set_idt_access 0x21, 0xEE
  and byte [IOMAP_BASE + (TEST_PORT >> 3)], ~0x03
  to_vm86 v86, 0x20002

bits 16
v86:
.f1:
  cli
.f2:
  sti
.f3:
  pushf
.f4:
  popf
.f5:
  int 0x21
.f6:
  iret
.f7:
  pushfd
  int3
.after_int3:
  mov dx, TEST_PORT
  in al, dx
  mov [4 * 0], al
  inc dx
  out dx, al
  mov [4 * 1], sp
  mov dx, TEST_PORT + 2
.f9:
  in al, dx
  mov dx, TEST_PORT - 1
.f10:
  in ax, dx
.f11:
  ud2
bits 32
`);
    const at = (l: string) => ip(g, `v86.${l}`);
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip, e.cs]), [
      [GP, 0, at("f1"), 0x1000],
      [GP, 0, at("f2"), 0x1000],
      [GP, 0, at("f3"), 0x1000],
      [GP, 0, at("f4"), 0x1000],
      [GP, 0, at("f5"), 0x1000],
      [GP, 0, at("f6"), 0x1000],
      [GP, 0, at("f7"), 0x1000],
      [BP, 0, at("after_int3"), 0x1000],
      [GP, 0, at("f9"), 0x1000],
      [GP, 0, at("f10"), 0x1000],
      [UD, 0, at("f11"), 0x1000],
    ]);
    for (const e of g.events()) assertEquals(e.eflags & 0x23000, 0x20000, "VM set, IOPL 0 in every frame");
    assertEquals(g.result(0), 0xA0, "IN from a port the bitmap allows");
    assertEquals(g.portWrites, [[TEST_PORT + 1, 1, 0xA0]]);
    assertEquals(g.result(1), 0xFFF0, "the faulting PUSHF/POPF moved no stack");
  },
);

systemTest(
  "Cpu VM86 at IOPL 3 still checks the I/O bitmap, and a handler that is not DPL-0 code is #GP(selector)",
  () => {
    const g = runKernel(`
test_main:
  set_hook 13, gp_skip
  set_idt_access 0x22, 0xEE
  mov word [idt + 0x22 * 8 + 2], SEL_CODE3
  and byte [IOMAP_BASE + (TEST_PORT >> 3)], ~0x01
  to_vm86 v86, 0x23002

bits 16
v86:
  mov dx, TEST_PORT
  in al, dx
  mov [4 * 0], al
  inc dx
.f1:
  out dx, al
.f2:
  int 0x22
  int 0xFE
bits 32
`);
    const at = (l: string) => ip(g, `v86.${l}`);
    assertEquals(g.eventSummary(), [[GP, 0], [GP, 0x18]]);
    assertEquals(g.events().map((e) => e.eip), [at("f1"), at("f2")]);
    assertEquals(g.result(0), 0xA0);
    assertEquals(g.portWrites, []);
  },
);

systemTest(
  "Cpu VM86 runs at CPL 3 under paging: a supervisor page raises #PF with U=1 and the linear address",
  () => {
    const g = runKernel(`
test_main:
  call paging_build
  and dword [PTE(0x60000)], ~PG_U
  call paging_on
  set_hook 14, pf_fix
  to_vm86 v86, 0x23002

pf_fix:
  or dword [PTE(0x60000)], PG_U
  invlpg [0x60000]
  ret

bits 16
v86:
  mov ax, 0x6000
  mov es, ax
.f1:
  mov byte [es:0x10], 0x77
  mov al, [es:0x10]
  mov [4 * 0], al
  int 0xFE
bits 32
`);
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip, e.cr2]), [
      [PF, 7, ip(g, "v86.f1"), 0x60010],
    ]);
    assertEquals(g.result(0), 0x77);
    assertEquals(g.mem.readU8(0x60010), 0x77);
  },
);

systemTest(
  "Cpu a task switch to a TSS with EFLAGS.VM runs VM86 code; its interrupts use the new task's ESP0",
  () => {
    const g = runKernel(`
TSS_B equ 0x8000
SEL_TSS_B equ 0x60
test_main:
  set_desc SEL_TSS_B, TSS_B, 0x67, 0x89, 0
  mov edi, TSS_B
  xor eax, eax
  mov ecx, 0x68 / 4
  rep stosd
  mov dword [TSS_B + 0x04], 0x68000
  mov dword [TSS_B + 0x08], SEL_DATA0
  mov dword [TSS_B + 0x20], V86IP(v86)
  mov dword [TSS_B + 0x24], 0x23002
  mov dword [TSS_B + 0x28], 0xAAAA5555
  mov dword [TSS_B + 0x38], 0xFFF0
  mov dword [TSS_B + 0x48], 0x0303
  mov dword [TSS_B + 0x4C], V86_CS
  mov dword [TSS_B + 0x50], V86_SS
  mov dword [TSS_B + 0x54], V86_DS
  mov dword [TSS_B + 0x58], 0x0304
  mov dword [TSS_B + 0x5C], 0x0305
  mov word [TSS_B + 0x66], 0x68
  set_idt_access 0x21, 0xEE
  set_hook 0x21, int21_hook
  jmp SEL_TSS_B:0

int21_hook:
  lea eax, [ebp + F_V86_END]
  store_result 10, eax
  xor eax, eax
  str ax
  store_result 11, eax
  mov eax, [ebp + F_EFLAGS]
  store_result 12, eax
  ret

bits 16
v86:
  mov [4 * 0], eax
  mov ax, cs
  mov [4 * 1], ax
  mov ax, fs
  mov [4 * 2], ax
  mov ax, es
  mov [4 * 3], ax
  mov [4 * 4], sp
  int 0x21
  int 0xFE
bits 32
`);
    assertEquals(results(g, 0, 4), [0xAAAA5555, 0x1000, 0x0304, 0x0303, 0xFFF0]);
    assertEquals(results(g, 10, 12), [0x68000, 0x60, 0x23002]);
  },
);

systemTest(
  "Cpu an external interrupt in VM86 (IF=1, IOPL 0) reaches the ring-0 handler, whose IRET resumes VM86",
  () => {
    const g = TestGuest.kernel(
      VM86 + `
test_main:
  set_hook 0x40, hook_ret
  set_hook 6, hook_finish
  to_vm86 v86, 0x20202

bits 16
v86:
  mov word [4 * 0], 0x1111
  ud2
bits 32
`,
    );
    const pic = new FakeInterruptController();
    g.cpu.interrupts = pic;
    pic.raise(0x40);
    g.run();
    g.expectDone();
    const ev = g.events();
    assertEquals(ev.map((e) => [e.vector, e.eip, e.cs]), [[0x40, ip(g, "v86"), 0x1000], [
      UD,
      ip(g, "v86") + 6,
      0x1000,
    ]]);
    assertEquals(ev[0].eflags & 0x20200, 0x20200, "VM and IF in the interrupted EFLAGS");
    assertEquals(g.result(0), 0x1111, "VM86 ran on after the handler's IRET");
    assertEquals(pic.acknowledged, 1);
  },
);
