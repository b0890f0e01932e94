/**
 * Limit and type checks on data accesses (SDM Vol. 3A 5.3 limit checking, 5.5 type checking, and
 * Vol. 2's "#GP(0) If a memory operand effective address is outside the segment limit" / "#SS(0)
 * ... outside the SS segment limit"): each fault with its vector, error code 0 and the EIP of the
 * faulting instruction, nothing written. Guests are built on testdata/x86/pm_kernel.inc;
 * descriptors go in its free GDT slots from SEL_FREE (0x60). Every test runs twice: in the
 * interpreter alone, and through the translator compiling each instruction sequence at its first
 * execution (jit/translator.ts must check as the interpreter does, at the same instruction).
 */
import { assert, assertEquals } from "../../assert.ts";
import { systemTest, TestGuest } from "./test_guest.ts";

const SS_FAULT = 12, GP = 13;

const MODES = [
  { jit: false, label: "interpreter" },
  { jit: true, label: "translator at first execution" },
];

/** A system test registered once per mode; `runKernel` builds and runs its guests. */
function segmentTest(
  name: string,
  fn: (runKernel: (body: string, fpu?: boolean) => TestGuest) => void,
): void {
  for (const { jit, label } of MODES) {
    systemTest(`${name} (${label})`, () =>
      fn((body, fpu = false) => {
        const g = TestGuest.kernel(body, { cpu: { jit, fpu } });
        g.run();
        g.expectDone();
        if (jit) assert(g.cpu.jit.stats.compiledInstructions > 0, "the translator ran the program");
        return g;
      }));
  }
}

function faults(g: TestGuest): [number, number, number][] {
  return g.events().map((e) => [e.vector, e.errorCode, e.eip]);
}

segmentTest(
  "Cpu data accesses: a write through a read-only data segment is #GP(0); reads are fine",
  (runKernel) => {
    const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0, 0xFFFFF, 0x90, 0xC          ; read-only data, 4 GiB
  mov dword [SCRATCH], 0x11
  mov ax, SEL_FREE
  mov es, ax
  mov eax, [es:SCRATCH]
  store_result 0, eax
  resume_at .r1
.f1: mov dword [es:SCRATCH], 0x22
.r1: resume_at .r2
  mov edi, SCRATCH
.f2: stosd
.r2:
  mov eax, [SCRATCH]
  store_result 1, eax
  finish
`);
    assertEquals(faults(g), [[GP, 0, g.symbol("test_main.f1")], [GP, 0, g.symbol("test_main.f2")]]);
    assertEquals([g.result(0), g.result(1)], [0x11, 0x11], "read through it; nothing written");
  },
);

segmentTest(
  "Cpu data accesses: a dword at 0x9FFFD past limit 0x9FFFF is #GP(0), byte- and page-granular",
  (runKernel) => {
    const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0, 0x9FFFF, 0x92, 0x4          ; byte granular, limit 0x9FFFF
  set_desc SEL_FREE + 8, 0, 0x9F, 0x92, 0xC         ; page granular: limit 0x9F * 4 KiB + 0xFFF
  mov ax, SEL_FREE
  mov ds, ax
  mov eax, [0x9FFFC]                                ; the last whole dword: fine
  mov al, [0x9FFFF]
  resume_at .r1
.f1: mov eax, [0x9FFFD]
.r1:
  mov ax, SEL_FREE + 8
  mov ds, ax
  mov eax, [0x9FFFC]
  resume_at .r2
.f2: add dword [0x9FFFE], 1
.r2: resume_at .r3
.f3: mov ax, [0xA0000]
.r3:
  mov ax, SEL_DATA0
  mov ds, ax
  finish
`);
    const at = (i: number) => g.symbol(`test_main.f${i}`);
    assertEquals(faults(g), [[GP, 0, at(1)], [GP, 0, at(2)], [GP, 0, at(3)]]);
  },
);

segmentTest(
  "Cpu data accesses: [ss:-1] past SS's limit is #SS(0); a dword wrapping a flat 4 GiB segment faults",
  (runKernel) => {
    const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0, 0x9FFFF, 0x92, 0x4          ; SS with limit 0x9FFFF (the stack fits)
  mov ax, SEL_FREE
  mov ss, ax
  resume_at .r1
.f1: mov eax, [ss:0xFFFFFFFF]
.r1:
  mov ax, SEL_DATA0
  mov ss, ax
  mov al, [ss:0xFFFFFFFF]                           ; flat: the last byte is inside the limit
  mov al, [0xFFFFFFFF]
  resume_at .r2
.f2: mov eax, [ss:0xFFFFFFFF]
.r2: resume_at .r3
.f3: mov eax, [0xFFFFFFFF]
.r3: resume_at .r4
  mov ebx, 0xFFFFFFFE
.f4: mov word [ebx + 1], 0
.r4:
  finish
`);
    const at = (i: number) => g.symbol(`test_main.f${i}`);
    assertEquals(faults(g), [[SS_FAULT, 0, at(1)], [SS_FAULT, 0, at(2)], [GP, 0, at(3)], [GP, 0, at(4)]]);
  },
);

segmentTest("Cpu data accesses: an expand-down segment allows only offsets above its limit", (runKernel) => {
  const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0, 0xFFF, 0x96, 0x4            ; expand-down, writable, B = 1: 0x1000-0xFFFFFFFF
  set_desc SEL_FREE + 8, 0, 0xFFF, 0x96, 0x0        ; B = 0: 0x1000-0xFFFF
  mov ax, SEL_FREE
  mov es, ax
  mov eax, [es:0x1000]
  mov eax, [es:0x123456]
  resume_at .r1
.f1: mov eax, [es:0xFFE]
.r1: resume_at .r2
.f2: mov eax, [es:0xFFFFFFFE]
.r2:
  mov ax, SEL_FREE + 8
  mov es, ax
  mov eax, [es:0xFFFC]
  resume_at .r3
.f3: mov eax, [es:0xFFFE]
.r3:
  finish
`);
  const at = (i: number) => g.symbol(`test_main.f${i}`);
  assertEquals(faults(g), [[GP, 0, at(1)], [GP, 0, at(2)], [GP, 0, at(3)]]);
});

segmentTest(
  "Cpu stack accesses: a push past a ring-3 SS's limit is #SS(0) with ESP unchanged",
  (runKernel) => {
    const g = runKernel(`
test_main:
  set_desc SEL_FREE, 0, 0x7FFFF, 0xF2, 0x4          ; ring-3 data, limit 0x7FFFF
  push dword SEL_DATA3
  pop ds
  push dword SEL_DATA3
  pop es
  push dword SEL_FREE | 3
  push dword 0x7FFF0
  push dword 0x202
  push dword SEL_CODE3
  push dword user
  iretd
user:
  push eax                                          ; inside the limit
  mov esp, 0x80002
  resume_at .r1
.f1: push eax
.r1:
  finish
`);
    const ev = g.events()[0];
    assertEquals([ev.vector, ev.errorCode, ev.eip, ev.esp3], [SS_FAULT, 0, g.symbol("user.f1"), 0x80002]);
  },
);

/**
 * Every form the translator emits inline (loads, stores, ALU with a memory source, CMP/TEST, MOVZX,
 * CMOVcc, moffs, SHLD to memory, PUSH/POP/CALL/RET/LEAVE) and one through a helper (ADD to memory),
 * each faulting mid-sequence through a segment with limit 0x9FFFF, and stores through a read-only
 * one: the fault list and the registers at each fault must be the interpreter's.
 */
const INLINE_FORMS = `
test_main:
  set_desc SEL_FREE, 0, 0x9FFFF, 0x92, 0x4          ; writable data, limit 0x9FFFF
  set_desc SEL_FREE + 8, 0, 0xFFFFF, 0x90, 0xC      ; read-only data, 4 GiB
  set_desc SEL_FREE + 16, 0, 0x7FFFF, 0x92, 0x4     ; a stack segment, limit 0x7FFFF
  mov ax, SEL_FREE
  mov es, ax
  mov ebx, 0x9FFFD
  mov eax, 0x12345678
  resume_at .r1
.f1: mov ecx, [es:ebx]
.r1: resume_at .r2
.f2: mov [es:ebx], eax
.r2: resume_at .r3
.f3: add ecx, [es:ebx]
.r3: resume_at .r4
.f4: cmp dword [es:ebx], 5
.r4: resume_at .r5
.f5: test [es:ebx], eax
.r5: resume_at .r6
.f6: movzx ecx, byte [es:0xA0000]
.r6: resume_at .r7
.f7: cmovz ecx, [es:ebx]
.r7: resume_at .r8
.f8: mov eax, [es:0x9FFFE]                          ; A1: moffs
.r8: resume_at .r9
.f9: shld [es:ebx], eax, 3
.r9: resume_at .r10
.f10: add [es:ebx], eax
.r10:
  mov ecx, [es:0x9FFFC]                             ; inside: no fault
  mov ax, SEL_FREE + 8
  mov es, ax
  mov ecx, [es:SCRATCH]
  resume_at .r11
.f11: mov [es:SCRATCH], ecx
.r11: resume_at .r12
.f12: mov byte [es:SCRATCH], 1
.r12:
  mov ax, SEL_FREE + 16
  mov ss, ax
  mov esi, esp
  mov esp, 0x7FFFE
  resume_at .r13
.f13: pop eax
.r13: resume_at .r14
.f14: ret
.r14: mov ebp, 0x7FFFD
  resume_at .r15
.f15: leave
.r15:
  mov esp, 0x7FFF0
  push eax
  pop eax
  call .near
  mov ax, SEL_DATA0
  mov ss, ax
  mov esp, esi
  mov ax, SEL_DATA0
  mov es, ax
  finish
.near: ret
`;

systemTest(
  "Cpu data accesses: the translator faults at the interpreter's instruction with its registers",
  () => {
    const run = (jit: boolean) => {
      const g = TestGuest.kernel(INLINE_FORMS, { cpu: { jit } });
      g.run();
      g.expectDone();
      return g;
    };
    const interpreted = run(false), translated = run(true);
    const at = (i: number) => interpreted.symbol(`test_main.f${i}`);
    assertEquals(
      faults(interpreted),
      [
        ...Array.from({ length: 12 }, (_, i) => [GP, 0, at(i + 1)]),
        ...[13, 14, 15].map((i) => [SS_FAULT, 0, at(i)]),
      ],
    );
    assertEquals(translated.events(), interpreted.events(), "same faults, same registers at each");
    assert(translated.cpu.jit.stats.compiledInstructions > 0, "the translator ran the program");
  },
);

segmentTest(
  "Cpu data accesses: XLAT, OUTS, INS, BT's selected dword, x87 operands, FXSAVE, ENTER, PUSHA, PUSH DS and far CALL check the limit",
  (runKernel) => {
    const g = runKernel(
      `
test_main:
  set_desc SEL_FREE, 0, 0x9FFFF, 0x92, 0x4          ; writable data, limit 0x9FFFF
  set_desc SEL_FREE + 8, 0, 0xFFFFF, 0x90, 0xC      ; read-only data, 4 GiB
  set_desc SEL_FREE + 16, 0, 0x7FFFF, 0x92, 0x4     ; a stack segment, limit 0x7FFFF
  mov ax, SEL_FREE
  mov ds, ax
  mov es, ax
  mov dx, 0x300
  mov ebx, 0x9FF00
  mov eax, 0xFF
  xlatb                                             ; 0x9FFFF: the last byte
  mov ebx, 0x9FFFF
  mov eax, 1
  resume_at .r1
.f1: xlatb
.r1:
  mov esi, 0x9FFFE
  resume_at .r2
.f2: outsd
.r2:
  mov edi, 0x9FFFD
  resume_at .r3
.f3: insd
.r3:
  mov ebx, 0x9FF00
  mov ecx, 0x7E0                                    ; dword 0x3F past EBX: 0x9FFFC, inside
  bt [ebx], ecx
  mov ecx, 0x800                                    ; dword 0x40: 0xA0000, outside
  resume_at .r4
.f4: bts [ebx], ecx
.r4:
  fld1
  resume_at .r5
.f5: fstp tword [0x9FFF7]
.r5:
  fld tword [0x9FFF6]                               ; inside: 0x9FFF6-0x9FFFF
  resume_at .r6
.f6: fld qword [0x9FFF9]
.r6:
  mov ax, SEL_FREE + 8
  mov es, ax
  resume_at .r7
.f7: fstp dword [es:SCRATCH]
.r7: resume_at .r8
.f8: fnstenv [es:SCRATCH]
.r8: resume_at .rx1
.fx1: fxsave [es:SCRATCH]
.rx1:
  fxsave [0x9FE00]                                  ; inside: 0x9FE00-0x9FFFF
  resume_at .rx2
.fx2: fxrstor [0x9FE10]
.rx2:
  mov ax, SEL_DATA0
  mov ds, ax
  mov es, ax
  mov ax, SEL_FREE + 16
  mov ss, ax
  mov esi, esp
  mov ebp, 0x80004
  mov esp, 0x7FFF8
  resume_at .r9
.f9: enter 8, 2                                     ; the frame pointer copied from [EBP - 4]: past the limit
.r9:
  mov esp, 0x7FFF0
  mov ebp, 0x7FFF8
  enter 4, 1                                        ; inside
  leave
  pusha
  popa
  mov ax, SEL_DATA0
  mov ss, ax
  mov esp, esi
  set_desc SEL_FREE + 24, 0, 0x7FFFF, 0xF2, 0x4     ; ring-3 stack, limit 0x7FFFF
  push dword SEL_DATA3
  pop ds
  push dword SEL_DATA3
  pop es
  push dword (SEL_FREE + 24) | 3
  push dword 0x7FFF0
  push dword 0x202
  push dword SEL_CODE3
  push dword user
  iretd
user:
  mov esp, 0x80004                                  ; a ring-3 fault switches to the ring-0 stack
  resume_at .r10
.f10: pusha
.r10: resume_at .r11
.f11: push ds
.r11: resume_at .r12
  mov esp, 0x80006                                  ; EIP fits below the limit, CS does not
.f12: call SEL_CODE3:.far
.r12:
  mov esp, 0x7FFF0
  call SEL_CODE3:.far                               ; inside
  finish
.far: retf
`,
      true,
    );
    const at = (i: number) => g.symbol(`test_main.f${i}`);
    assertEquals(faults(g), [
      ...[1, 2, 3, 4, 5, 6, 7, 8].map((i) => [GP, 0, at(i)]),
      [GP, 0, g.symbol("test_main.fx1")],
      [GP, 0, g.symbol("test_main.fx2")],
      [SS_FAULT, 0, at(9)],
      ...[10, 11, 12].map((i) => [SS_FAULT, 0, g.symbol(`user.f${i}`)]),
    ]);
  },
);
