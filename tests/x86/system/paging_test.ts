/**
 * Paging as the guest sees it (SDM Vol. 3A, ch. 4 and 6.15 #PF): 32-bit paging with 4 KiB and
 * 4 MiB pages, PAE with NX, page-fault error codes, CR2 and restartable faulting instructions,
 * A/D bits, CR0.WP, U/S, global pages, INVLPG and self-modifying code. Guests are built on
 * testdata/x86/pm_kernel.inc; DATA (4 MiB) and up are pages the tests remap freely.
 */
import { assert, assertEquals } from "../../assert.ts";
import { STACK3_TOP, systemTest, TestGuest } from "./test_guest.ts";

const DATA = 0x400000;
const PF = 14;

function runKernel(body: string): TestGuest {
  const g = TestGuest.kernel(`DATA equ ${DATA}\n${body}`);
  g.run();
  g.expectDone();
  return g;
}

systemTest("Cpu paging: 32-bit 4 KiB pages translate linear to physical addresses", () => {
  const g = runKernel(`
test_main:
  call paging_build
  mov dword [PDE(0x40000000)], PT_POOL | PG_P | PG_W
  mov dword [PT_POOL], 0x200000 | PG_P | PG_W
  mov dword [PT_POOL + 4], 0x201000 | PG_P | PG_W
  mov dword [PT_POOL + 8], 0x250000 | PG_P | PG_W
  call paging_on
  mov dword [0x40000010], 0xA1A1A1A1
  mov dword [0x40001FFE], 0xB2B2C3C3      ; crosses into the page at 0x250000
  mov eax, [0x200010]                     ; the same byte through the 1:1 map
  store_result 0, eax
  mov eax, [0x40001FFE]
  store_result 1, eax
  finish
`);
  assertEquals(g.mem.readU32(0x200010), 0xA1A1A1A1);
  assertEquals([g.mem.readU16(0x201FFE), g.mem.readU16(0x250000)], [0xC3C3, 0xB2B2]);
  assertEquals([g.result(0), g.result(1)], [0xA1A1A1A1, 0xB2B2C3C3]);
});

systemTest("Cpu paging: a PDE with PS maps a 4 MiB page when CR4.PSE=1 and is ignored when 0", () => {
  const g = runKernel(`
test_main:
  call paging_build
  mov dword [PDE(0x80000000)], 0x400000 | PG_P | PG_W | PG_PS
  mov dword [0x400000], 0x600000 | PG_P | PG_W   ; the same PDE read as a page-table pointer
  call paging_on
  mov dword [0x80000010], 0x0BAD0BAD              ; CR4.PSE=0: PS ignored, page 0 of "table" 0x400000
  mov eax, cr4
  or eax, 0x10
  mov cr4, eax
  mov dword [0x80123456], 0xC3C3C3C3              ; 4 MiB page: physical 0x523456
  mov eax, [0x803FFFFC]
  store_result 0, eax
  mov eax, [PDE(0x80000000)]
  store_result 1, eax
  finish
`);
  assertEquals(g.mem.readU32(0x600010), 0x0BAD0BAD, "PS ignored without CR4.PSE");
  assertEquals(g.mem.readU32(0x523456), 0xC3C3C3C3);
  assertEquals(g.result(1), 0x400000 | 0x80 | 0x40 | 0x20 | 3, "PDE of a written 4 MiB page: A and D set");
});

systemTest("Cpu paging: PAE maps 4 KiB and 2 MiB pages and NX faults instruction fetches only", () => {
  const g = runKernel(`
test_main:
  call pae_build
  mov dword [PDPT_BASE + 8], PAE_PT_POOL | PG_P             ; 1-2 GiB
  mov dword [PAE_PT_POOL], 0x600000 | PG_P | PG_W | PG_PS   ; 0x40000000: 2 MiB page at 6 MiB
  mov dword [PAE_PT_POOL + 8], 0x800000 | PG_P | PG_W | PG_PS
  mov dword [PAE_PT_POOL + 12], 0x80000000                  ; 0x40200000: NX at the PDE
  mov dword [PAE_PTE(0x700000) + 4], 0x80000000             ; NX 4 KiB page
  mov dword [PAE_PTE(0x701000)], 0                          ; not present
  mov byte [0x700000], 0xC3
  call pae_on
  mov dword [0x40012345], 0xD4D4D4D4
  mov eax, [0x700000]                                       ; reading an NX page is fine
  store_result 0, eax
  resume_at .r1
  mov eax, 0x700000
.f1:
  jmp eax
.r1:
  resume_at .r2
  mov eax, 0x40200000
  jmp eax
.r2:
  resume_at .r3
  mov eax, 0x701000
  jmp eax
.r3:
  mov eax, [PAE_PTE(0x700000)]
  store_result 1, eax
  finish
`);
  assertEquals(g.mem.readU32(0x612345), 0xD4D4D4D4);
  assertEquals(g.result(0), 0xC3);
  const ev = g.events().map((e) => [e.vector, e.errorCode, e.cr2, e.eip]);
  assertEquals(ev, [
    [PF, 0x11, 0x700000, 0x700000], // present, instruction fetch
    [PF, 0x11, 0x40200000, 0x40200000],
    [PF, 0x10, 0x701000, 0x701000], // not present, instruction fetch
  ]);
  assertEquals(g.result(1), 0x700000 | 0x27, "PAE PTE after a read: A set, D clear");
});

systemTest("Cpu paging: with EFER.NXE=0 a PAE entry's bit 63 is reserved (error code 9)", () => {
  const g = runKernel(`
test_main:
  call pae_build
  mov dword [PAE_PTE(DATA) + 4], 0x80000000
  mov eax, cr4
  or eax, 0x20
  mov cr4, eax
  mov eax, PDPT_BASE
  mov cr3, eax
  mov eax, cr0
  or eax, 0x80000000
  mov cr0, eax
  resume_at .r1
.f1:
  mov eax, [DATA + 8]
.r1:
  finish
`);
  assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.cr2, e.eip]), [
    [PF, 9, DATA + 8, g.symbol("test_main.f1")],
  ]);
});

const ERROR_CODES = `
test_main:
  call paging_build
  mov dword [PTE(DATA)], 0                                  ; not present
  mov dword [PTE(DATA + 0x1000)], (DATA + 0x1000) | PG_P | PG_U  ; read-only, user
  mov dword [PTE(DATA + 0x2000)], (DATA + 0x2000) | PG_P | PG_W  ; supervisor
  call paging_on
  mov eax, cr0
  or eax, 0x10000                                           ; WP
  mov cr0, eax
  resume_at .r1
.f1: mov eax, [DATA + 0x10]
.r1:
  resume_at .r2
.f2: mov dword [DATA + 0x20], 1
.r2:
  resume_at .r3
.f3: mov dword [DATA + 0x1004], 1
.r3:
  to_ring3 user
user:
  resume_at .r1
.f1: mov eax, [DATA + 0x30]
.r1:
  resume_at .r2
.f2: mov dword [DATA + 0x1008], 1
.r2:
  resume_at .r3
.f3: mov eax, [DATA + 0x2010]
.r3:
  resume_at .r4
.f4: mov dword [DATA + 0x2014], 1
.r4:
  resume_at .r5
  mov eax, DATA + 0x2000
  jmp eax
.r5:
  mov eax, [DATA + 0x1010]                                  ; user read of a user page: fine
  finish
`;

systemTest("Cpu paging: page faults report P, W/R and U/S in the error code and the address in CR2", () => {
  const g = runKernel(ERROR_CODES);
  const ev = g.events().map((e) => [e.vector, e.errorCode, e.cr2 - DATA, e.eip]);
  const at = (l: string) => g.symbol(l);
  assertEquals(ev, [
    [PF, 0, 0x10, at("test_main.f1")], // supervisor read, not present
    [PF, 2, 0x20, at("test_main.f2")], // supervisor write, not present
    [PF, 3, 0x1004, at("test_main.f3")], // supervisor write, read-only, WP=1
    [PF, 4, 0x30, at("user.f1")], // user read, not present
    [PF, 7, 0x1008, at("user.f2")], // user write, read-only
    [PF, 5, 0x2010, at("user.f3")], // user read, supervisor page
    [PF, 7, 0x2014, at("user.f4")], // user write, supervisor page
    [PF, 5, 0x2000, DATA + 0x2000], // user fetch, supervisor page (no I/D bit without NXE)
  ]);
});

systemTest("Cpu paging: user access to a supervisor page faults on a privilege change to ring 0", () => {
  const g = runKernel(ERROR_CODES);
  const user = g.events().filter((e) => (e.cs & 3) === 3);
  assertEquals(user.length, 5);
  for (const e of user) {
    assertEquals([e.cs, e.ss3, e.esp3], [0x1B, 0x23, STACK3_TOP]);
    assert((e.errorCode & 4) !== 0, "U/S set for CPL 3 accesses");
  }
});

systemTest(
  "Cpu paging: a supervisor write to a read-only page faults only with CR0.WP=1 (error code 3)",
  () => {
    const g = runKernel(`
test_main:
  call paging_build
  mov dword [PTE(DATA)], DATA | PG_P
  call paging_on
  mov dword [DATA + 0x10], 0x5A5A5A5A                       ; WP=0: allowed
  mov eax, cr0
  or eax, 0x10000
  mov cr0, eax
  resume_at .r1
.f1:
  mov dword [DATA + 0x14], 0x6B6B6B6B
.r1:
  mov eax, cr0
  and eax, ~0x10000
  mov cr0, eax
  mov dword [DATA + 0x18], 0x7C7C7C7C                       ; WP=0 again: allowed
  finish
`);
    assertEquals([g.mem.readU32(DATA + 0x10), g.mem.readU32(DATA + 0x14)], [0x5A5A5A5A, 0]);
    assertEquals(g.mem.readU32(DATA + 0x18), 0x7C7C7C7C);
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.cr2, e.eip]), [
      [PF, 3, DATA + 0x14, g.symbol("test_main.f1")],
    ]);
  },
);

systemTest("Cpu paging: faulting instructions leave registers, ESP and flags unchanged", () => {
  const g = runKernel(`
test_main:
  call paging_build
  mov dword [PTE(DATA)], 0
  call paging_on
  to_ring3 user
user:
  mov eax, 0x11111111
  mov ecx, 0x22222222
  mov edx, 0x33333333
  mov ebx, 0x44444444
  mov ebp, 0x55555555
  mov esi, 0x66666666
  mov edi, 0x77777777
  push dword 0x8D7                  ; CF PF AF ZF SF OF
  popfd
  resume_at .r1
.f1:
  add [DATA + 0x100], eax
.r1:
  mov esp, DATA + 0x1000
  resume_at .r2
.f2:
  push eax
.r2:
  mov esp, STACK3_TOP
  finish
`);
  const [add, push] = g.events();
  const regs = (e: typeof add) => [e.eax, e.ecx, e.edx, e.ebx, e.ebp, e.esi, e.edi];
  const expected = [0x11111111, 0x22222222, 0x33333333, 0x44444444, 0x55555555, 0x66666666, 0x77777777];
  assertEquals([add.vector, add.errorCode, add.eip], [PF, 6, g.symbol("user.f1")]);
  assertEquals(regs(add), expected);
  assertEquals(add.eflags & 0x8D5, 0x8D5, "the faulting ADD must not update the flags");
  assertEquals(add.esp3, STACK3_TOP);
  assertEquals([push.vector, push.errorCode, push.eip, push.cr2], [PF, 6, g.symbol("user.f2"), DATA + 0xFFC]);
  assertEquals(push.esp3, DATA + 0x1000, "the faulting PUSH must not move ESP");
  assertEquals(regs(push), expected);
});

systemTest(
  "Cpu paging: ADC to a read-only page re-executes with the original CF after the handler maps it",
  () => {
    const g = runKernel(`
test_main:
  call paging_build
  mov dword [DATA + 0x1000], 10
  mov dword [PTE(DATA + 0x1000)], (DATA + 0x1000) | PG_P | PG_U
  call paging_on
  set_hook 14, make_writable
  to_ring3 user
user:
  mov eax, 5
  stc
.f1:
  adc [DATA + 0x1000], eax
  setc al
  movzx eax, al
  store_result 0, eax
  finish

make_writable:
  or dword [PTE(DATA + 0x1000)], PG_W
  invlpg [DATA + 0x1000]
  ret
`);
    assertEquals(g.mem.readU32(DATA + 0x1000), 16, "10 + 5 + CF");
    assertEquals(g.result(0), 0);
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.eip]), [[PF, 7, g.symbol("user.f1")]]);
  },
);

systemTest("Cpu paging: a page-crossing write that faults on its second page writes neither page", () => {
  const g = runKernel(`
test_main:
  call paging_build
  mov dword [PTE(DATA + 0x1000)], 0
  mov dword [DATA + 0xFFC], 0x11223344
  call paging_on
  resume_at .r1
.f1:
  mov dword [DATA + 0xFFE], 0xAABBCCDD
.r1:
  finish
`);
  assertEquals(g.mem.readU32(DATA + 0xFFC), 0x11223344);
  const [e] = g.events();
  assertEquals([e.vector, e.errorCode, e.eip], [PF, 2, g.symbol("test_main.f1")]);
  assertEquals(e.cr2 >>> 12, (DATA + 0x1000) >>> 12, "CR2 lies in the page that faulted");
});

systemTest("Cpu paging: reads set the accessed bit, writes set accessed and dirty", () => {
  const g = runKernel(`
test_main:
  call paging_build
  call paging_on
  mov eax, [DATA + 0x10]
  mov eax, [PTE(DATA)]
  store_result 0, eax
  mov dword [DATA + 0x1010], 1
  mov eax, [PTE(DATA + 0x1000)]
  store_result 1, eax
  mov eax, [DATA + 0x2000]
  mov eax, [PTE(DATA + 0x2000)]
  store_result 2, eax
  mov dword [DATA + 0x2000], 1
  mov eax, [PTE(DATA + 0x2000)]
  store_result 3, eax
  mov eax, [PDE(DATA)]
  store_result 4, eax
  mov eax, [PTE(DATA + 0x3000)]
  store_result 5, eax
  finish
`);
  const P_W_U = 7, A = 0x20, D = 0x40;
  assertEquals(g.result(0), DATA | P_W_U | A, "read: A");
  assertEquals(g.result(1), (DATA + 0x1000) | P_W_U | A | D, "write: A and D");
  assertEquals(g.result(2), (DATA + 0x2000) | P_W_U | A, "read first: A only");
  assertEquals(g.result(3), (DATA + 0x2000) | P_W_U | A | D, "then a write: D too");
  assertEquals(g.result(4), (0x101000 + 0x1000) | P_W_U | A, "the PDE gets A (never D)");
  assertEquals(g.result(5), (DATA + 0x3000) | P_W_U, "an untouched page stays clean");
});

systemTest("Cpu paging: global pages survive a CR3 reload with CR4.PGE but not a CR4.PGE toggle", () => {
  const g = runKernel(`
test_main:
  call paging_build
  mov dword [0x500000], 0xAAAAAAAA
  mov dword [0x600000], 0xBBBBBBBB
  mov dword [0x501000], 0xCCCCCCCC
  mov dword [0x601000], 0xDDDDDDDD
  mov dword [PTE(0x500000)], 0x500000 | PG_P | PG_W | PG_G
  mov eax, cr4
  or eax, 0x80
  mov cr4, eax
  call paging_on
  mov eax, [0x500000]
  store_result 0, eax
  mov eax, [0x501000]
  store_result 1, eax
  mov dword [PTE(0x500000)], 0x600000 | PG_P | PG_W | PG_G
  mov dword [PTE(0x501000)], 0x601000 | PG_P | PG_W
  mov eax, cr3
  mov cr3, eax
  mov eax, [0x500000]
  store_result 2, eax
  mov eax, [0x501000]
  store_result 3, eax
  mov eax, cr4
  and eax, ~0x80
  mov cr4, eax
  or eax, 0x80
  mov cr4, eax
  mov eax, [0x500000]
  store_result 4, eax
  finish
`);
  assertEquals([g.result(0), g.result(1)], [0xAAAAAAAA, 0xCCCCCCCC]);
  assertEquals(g.result(2), 0xAAAAAAAA, "the global page's stale translation survives MOV CR3");
  assertEquals(g.result(3), 0xDDDDDDDD, "a non-global page is re-walked after MOV CR3");
  assertEquals(g.result(4), 0xBBBBBBBB, "toggling CR4.PGE flushes global pages");
});

systemTest("Cpu paging: INVLPG drops one page's translation, global or not", () => {
  const g = runKernel(`
test_main:
  call paging_build
  mov eax, cr4
  or eax, 0x80
  mov cr4, eax
  mov dword [0x502000], 0xEEEEEEEE
  mov dword [0x602000], 0xFFFFFFFF
  mov dword [0x503000], 0x12121212
  mov dword [0x603000], 0x34343434
  mov dword [PTE(0x503000)], 0x503000 | PG_P | PG_W | PG_G
  call paging_on
  mov eax, [0x502000]
  mov eax, [0x503000]
  mov dword [PTE(0x502000)], 0x602000 | PG_P | PG_W
  mov dword [PTE(0x503000)], 0x603000 | PG_P | PG_W | PG_G
  mov eax, [0x502000]
  store_result 0, eax
  invlpg [0x502000]
  mov eax, [0x502000]
  store_result 1, eax
  invlpg [0x503000]
  mov eax, [0x503000]
  store_result 2, eax
  finish
`);
  assertEquals(g.result(0), 0xEEEEEEEE, "stale until invalidated");
  assertEquals([g.result(1), g.result(2)], [0xFFFFFFFF, 0x34343434]);
});

systemTest(
  "Cpu self-modifying code: stores to executed code take effect, repeatedly and for the next instruction",
  () => {
    const g = runKernel(`
align 4096
test_main:
  call smc_fn
  store_result 0, eax
  mov byte [smc_fn + 1], 2
  call smc_fn
  store_result 1, eax
  mov byte [smc_fn + 1], 3
  call smc_fn
  store_result 2, eax
  mov byte [.next + 1], 0x42
.next:
  mov al, 0
  movzx eax, al
  store_result 3, eax
  finish
smc_fn:
  mov eax, 1
  ret
`);
    assertEquals([g.result(0), g.result(1), g.result(2), g.result(3)], [1, 2, 3, 0x42]);
  },
);

systemTest("Cpu self-modifying code: a store through another linear alias of the code page is seen", () => {
  const g = runKernel(`
ALIAS equ 0x700000
test_main:
  call paging_build
  mov eax, alias_fn
  and eax, ~0xFFF
  or eax, PG_P | PG_W
  mov [PTE(ALIAS)], eax
  call paging_on
  call alias_fn
  store_result 0, eax
  mov eax, alias_fn
  and eax, 0xFFF
  mov byte [ALIAS + eax + 1], 7
  call alias_fn
  store_result 1, eax
  mov eax, alias_fn
  and eax, 0xFFF
  mov byte [ALIAS + eax + 1], 8
  call alias_fn
  store_result 2, eax
  finish
alias_fn:
  mov eax, 1
  ret
`);
  assertEquals([g.result(0), g.result(1), g.result(2)], [1, 7, 8]);
});

systemTest("Cpu self-modifying code: a device write to a code page is seen on the next execution", () => {
  const g = TestGuest.kernel(`
test_main:
  call dev_fn
  store_result 0, eax
  hlt
  call dev_fn
  store_result 1, eax
  finish
dev_fn:
  mov eax, 1
  ret
`);
  g.run();
  assertEquals([g.cpu.halted, g.result(0)], [true, 1]);
  g.mem.writeU8(g.symbol("dev_fn") + 1, 9);
  g.cpu.halted = false;
  g.run();
  g.expectDone();
  assertEquals(g.result(1), 9);
});

systemTest(
  "Cpu paging: an instruction that runs into a not-present page faults with CR2 in that page",
  () => {
    const g = runKernel(`
test_main:
  call paging_build
  mov dword [PTE(DATA + 0x1000)], 0
  mov dword [DATA + 0xFFD], 0x000000B8                  ; mov eax, imm32: 3 of its bytes on the next page
  call paging_on
  resume_at .r1
  mov eax, DATA + 0xFFD
  jmp eax
.r1:
  finish
`);
    assertEquals(g.events().map((e) => [e.vector, e.errorCode, e.cr2, e.eip]), [
      [PF, 0, DATA + 0x1000, DATA + 0xFFD],
    ]);
  },
);
