/**
 * Traps, port I/O and the early console (LGUEST-ABI 4b): #GP(0) port I/O from ring 1 emulated as
 * lguest's launcher did (PCI conf1 real, port 0x64 reads 1, other reads all ones, writes ignored), a
 * raw cli skipped, other faults reflected through the Guest's IDT with cr2 in lguest_data, user mode
 * entering the kernel on the SET_STACK stack, CR0.TS from LHCALL_TS, and the rule violations.
 */
import { assert, assertEquals } from "../assert.ts";
import { lguestTest, runGuest } from "./lguest_guest.ts";

lguestTest("ring-1 port I/O is emulated as lguest's launcher did; a raw cli is skipped", async () => {
  const g = await runGuest(`
test_main:
  in al, 0x64
  movzx eax, al
  result 0, eax
  in al, 0x60
  movzx eax, al
  result 1, eax
  mov dx, 0x3F8
  in ax, dx
  movzx eax, ax
  result 2, eax
  in eax, dx
  result 3, eax
  out 0x80, al                  ; ignored
  mov eax, 0x80000000           ; 00:00.0, the host bridge
  call pci_read
  result 4, eax
  mov eax, 0x80000800           ; 00:01.0, the console
  call pci_read
  result 5, eax
  mov eax, 0x80000800 | 0x3C    ; its INTERRUPT_LINE
  call pci_read
  movzx eax, al
  result 6, eax
  cli
  result 7, 1
  poweroff
`);
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals(
    [g.r(0), g.r(1), g.r(2), g.r(3), g.r(4), g.r(5), g.r(6), g.r(7)],
    [1, 0xFF, 0xFFFF, 0xFFFFFFFF, 0x12378086, 0x10431AF4, 5, 1],
  );
  assert(g.host.portIoEmulated >= 12, `${g.host.portIoEmulated} emulated`);
});

lguestTest("the early console writes emerg_wr through the PCI-config-access capability", async () => {
  const g = await runGuest(`
test_main:
  mov ebx, hello
  call early_puts
  poweroff
hello: db "early hvc0 via PCI config", 0
`);
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals(g.console, "early hvc0 via PCI config");
});

/** A trap handler that records the frame (vector in EBP by its stub) and skips the faulting insn. */
const RECORDER = `
; stubs: push the vector, then a common recorder; error-code traps have the code pushed already
ud_stub:   push 0
           push 6
           jmp record
gp_stub:   push 13
           jmp record
pf_stub:   push 14
           jmp record
nm_stub:   push 0
           push 7
           jmp record
sys_stub:  push 0
           push 0x80
           jmp record
record:
  mov cx, ss                    ; DS may be null (an IRET to ring 3 nulls a DPL-1 DS): reload it,
  mov ds, cx                    ; as Linux's entry code does
  mov eax, [events]
  shl eax, 5
  add eax, event_log
  mov ecx, [esp]                ; vector
  mov [eax], ecx
  mov ecx, [esp + 4]            ; error code
  mov [eax + 4], ecx
  mov ecx, [esp + 8]            ; EIP
  mov [eax + 8], ecx
  mov ecx, [esp + 12]           ; CS
  mov [eax + 12], ecx
  mov ecx, [LD_cr2]
  mov [eax + 16], ecx
  mov [eax + 20], esp
  mov ecx, [esp + 20]           ; user ESP (from user mode)
  mov [eax + 24], ecx
  mov ecx, [esp + 16]           ; EFLAGS
  mov [eax + 28], ecx
  inc dword [events]
  mov ecx, [events]
  cmp ecx, [stop_at]
  jne .go_on
  poweroff
.go_on:
  mov ecx, [skip]
  add [esp + 8], ecx            ; skip the faulting instruction
  add esp, 8
  jmp lguest_iret
events: dd 0
skip: dd 0
stop_at: dd 0
align 32
event_log: times 8 * 8 dd 0
`;

lguestTest("faults are reflected through the guest's IDT, with cr2 written for #PF", async () => {
  const g = await runGuest(`
test_main:
  set_gate 6, ud_stub, 0xF, 0
  set_gate 13, gp_stub, 0xE, 0
  set_gate 14, pf_stub, 0xE, 0
  mov dword [skip], 2
ud_at:
  ud2
  mov dword [skip], 1
  hlt                            ; not emulated: #GP(0) to the guest
  mov dword [skip], 10
  mov dword [0x5000000], 1       ; beyond the identity map: #PF, write, not present
  mov ax, 0x1234
  mov dword [skip], 2
  mov ds, ax                     ; #GP(0x1234): beyond the GDT
  result 0, 1
  int 0x33                       ; no gate: #GP(0x33 * 8 + 2)
  hcall LHCALL_SET_STACK, 0x69, kstack_top, 2
  int 0x44                       ; still none, and now the guest's kill
  poweroff
${RECORDER}
`);
  const log = g.symbols.get("event_log")!;
  const ev = (i: number) => [0, 1, 2, 4].map((k) => g.machine.mem.readU32(log + i * 32 + k * 4));
  assertEquals(ev(0).slice(0, 3), [6, 0, g.symbols.get("ud_at")]);
  assertEquals(ev(1)[0], 13);
  assertEquals(ev(1)[1], 0, "hlt at CPL 1: #GP(0)");
  assertEquals(ev(2).slice(0, 2), [14, 2]);
  assertEquals(ev(2)[3], 0x5000000, "lguest_data.cr2");
  assertEquals(ev(3).slice(0, 2), [13, 0x1234]);
  assertEquals(g.r(0), 1);
  assertEquals(ev(4).slice(0, 2), [13, 0x33 * 8 + 2]);
  assertEquals(g.machine.mem.readU32(log + 12), 0x61, "the frame's CS is the ring-1 kernel CS");
  assertEquals(g.result.kind, "poweroff", g.result.reason);
});

lguestTest("a trap with no gate kills the guest: unhandled trap", async () => {
  const g = await runGuest(`test_main:\n  ud2\n`);
  assert(/^unhandled trap 6 at 0x[0-9a-f]+ \(0x0\)$/.test(g.result.reason), g.result.reason);
  assertEquals(g.result.kind, "error");
});

lguestTest("user mode enters the kernel on the SET_STACK stack; int $0x1F from user is #GP", async () => {
  const g = await runGuest(`
test_main:
  call user_segments
  set_gate 0x80, sys_stub, 0xF, 3
  set_gate 13, gp_stub, 0xE, 0
  hcall LHCALL_SET_STACK, 0x69, kstack_top, 2
  mov dword [skip], 0
  mov dword [stop_at], 2
  ; iret to ring 3: SS, ESP, EFLAGS, CS, EIP
  push 0x7B
  push user_stack_top
  push 0x202
  push 0x73
  push user_code
  jmp lguest_iret
user_code:
  int 0x80
  mov ax, 0x7B                   ; the IRET back nulled the kernel's DS: load the user one
  mov ds, ax
  mov dword [user_marker], 0x5EC0DE   ; a user write (the page is user-accessible: PTE 0x67)
  mov eax, LHCALL_SHUTDOWN
  int 0x1f                       ; not a hypercall from ring 3
  jmp $
user_marker: dd 0
  times 1024 db 0
user_stack_top:
${RECORDER}
`);
  const log = g.symbols.get("event_log")!;
  const word = (i: number, k: number) => g.machine.mem.readU32(log + i * 32 + k * 4);
  assertEquals(word(0, 0), 0x80);
  assertEquals(word(0, 3), 0x73, "frame CS: user");
  assertEquals(
    word(0, 5),
    g.symbols.get("kstack_top")! - 28,
    "handler stack: kstack_top - SS,ESP,EFLAGS,CS,EIP - 2 stub words",
  );
  assertEquals(word(0, 6), g.symbols.get("user_stack_top"), "user ESP pushed");
  assertEquals(word(1, 0), 13);
  assertEquals(word(1, 1), 0x1F * 8 + 2);
  assertEquals(g.machine.mem.readU32(g.symbols.get("user_marker")!), 0x5EC0DE);
  assertEquals(g.result.kind, "poweroff", g.result.reason);
});

lguestTest("LHCALL_TS sets CR0.TS: the next FPU instruction raises #NM to the guest", async () => {
  const g = await runGuest(`
test_main:
  set_gate 7, nm_stub, 0xE, 0
  mov dword [skip], 0
  fninit
  result 0, [events]
  hcall LHCALL_TS, 1
  mov dword [skip], 2
  fninit                          ; #NM (2 bytes: DB E3)
  result 1, [events]
  hcall LHCALL_TS, 0
  fninit
  result 2, [events]
  poweroff
${RECORDER}
`);
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals([g.r(0), g.r(1), g.r(2)], [0, 1, 1]);
});

lguestTest("delivering onto an unmapped stack kills the guest: Bad address", async () => {
  const g = await runGuest(`
test_main:
  set_gate 6, ud_stub, 0xF, 0
  mov esp, 0x5000000
  ud2
${RECORDER}
`);
  assertEquals(g.result, { kind: "error", reason: "Bad address 0x4fffffc (delivering trap 6)" });
});
