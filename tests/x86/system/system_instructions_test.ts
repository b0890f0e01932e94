/**
 * System instructions a user-level differential test cannot reach (SDM Vol. 2: CPUID, RDMSR,
 * WRMSR, RDTSC, CMPXCHG8B, BOUND, MOV to/from control registers, LMSW, SMSW, CLTS), checked from
 * CPL 0 in a guest built on testdata/x86/pm_kernel.inc.
 */
import { assert, assertEquals } from "../../assert.ts";
import { systemTest, TestGuest } from "./test_guest.ts";

const BR = 5, UD = 6, GP = 13;

function runKernel(body: string, fpu = false): TestGuest {
  const g = TestGuest.kernel(body, { cpu: { fpu } });
  g.run();
  g.expectDone();
  return g;
}

function faults(g: TestGuest): [number, number, number][] {
  return g.events().map((e) => [e.vector, e.errorCode, e.eip]);
}

const CPUID_PROGRAM = `
test_main:
  xor eax, eax
  cpuid
  store_result 0, eax
  store_result 1, ebx
  store_result 2, ecx
  store_result 3, edx
  mov eax, 1
  cpuid
  store_result 4, eax
  store_result 5, edx
  mov eax, 0x80000000
  cpuid
  store_result 6, eax
  mov eax, 0x80000001
  cpuid
  store_result 7, edx
  finish
`;

function text(...dwords: number[]): string {
  const bytes = new Uint8Array(new Uint32Array(dwords).buffer);
  return new TextDecoder().decode(bytes);
}

systemTest("Cpu CPUID reports GenuineIntel, family 6 and the features implemented, NX in 0x80000001", () => {
  const g = runKernel(CPUID_PROGRAM);
  assert(g.result(0) >= 1, "leaf 1 exists");
  assertEquals(text(g.result(1), g.result(3), g.result(2)), "GenuineIntel");
  assertEquals((g.result(4) >> 8) & 0xF, 6, "family");
  const edx = g.result(5);
  const bits: Record<string, number> = { PSE: 3, TSC: 4, MSR: 5, PAE: 6, CX8: 8, SEP: 11, PGE: 13, CMOV: 15 };
  for (const [name, bit] of Object.entries(bits)) assertEquals((edx >> bit) & 1, 1, `CPUID.1:EDX.${name}`);
  assertEquals(edx & 1, 0, "no FPU attached: CPUID.1:EDX.FPU clear");
  assert(g.result(6) >= 0x80000001, "extended leaf 0x80000001 exists");
  assertEquals((g.result(7) >> 20) & 1, 1, "CPUID.80000001h:EDX.NX");
});

systemTest("Cpu CPUID sets the FPU bit when an FPU is attached", () => {
  const g = runKernel(CPUID_PROGRAM, true);
  assertEquals(g.result(5) & 1, 1);
});

systemTest("Cpu RDMSR/WRMSR of an unknown MSR, or a reserved EFER bit, raise #GP(0)", () => {
  const g = runKernel(`
test_main:
  mov ecx, 0x12345
  resume_at .r1
.f1: rdmsr
.r1: resume_at .r2
.f2: wrmsr
.r2:
  mov ecx, 0xC0000080
  mov eax, 0x100                    ; EFER.LME: no long mode here
  xor edx, edx
  resume_at .r3
.f3: wrmsr
.r3:
  mov ecx, 0x174
  mov eax, 0x1234
  wrmsr
  xor eax, eax
  rdmsr
  store_result 0, eax
  store_result 1, edx
  finish
`);
  const at = (i: number) => g.symbol(`test_main.f${i}`);
  assertEquals(faults(g), [[GP, 0, at(1)], [GP, 0, at(2)], [GP, 0, at(3)]]);
  assertEquals([g.result(0), g.result(1)], [0x1234, 0]);
});

systemTest("Cpu RDTSC is monotonic, and faults at CPL 3 with CR4.TSD", () => {
  const g = runKernel(`
test_main:
  rdtsc
  store_result 0, eax
  store_result 1, edx
  mov ecx, 50
.spin: loop .spin
  rdtsc
  store_result 2, eax
  store_result 3, edx
  mov eax, cr4
  or eax, 4
  mov cr4, eax
  to_ring3 user
user:
  resume_at .r1
.f1: rdtsc
.r1:
  finish
`);
  const t = (i: number) => BigInt(g.result(i + 1)) << 32n | BigInt(g.result(i));
  assert(t(2) > t(0), `TSC went from ${t(0)} to ${t(2)}`);
  assertEquals(faults(g), [[GP, 0, g.symbol("user.f1")]]);
});

systemTest("Cpu CMPXCHG8B stores ECX:EBX on a match and loads EDX:EAX otherwise", () => {
  const g = runKernel(`
test_main:
  mov dword [SCRATCH], 0x11111111
  mov dword [SCRATCH + 4], 0x22222222
  mov eax, 0x11111111
  mov edx, 0x22222222
  mov ebx, 0x33333333
  mov ecx, 0x44444444
  cmpxchg8b [SCRATCH]
  setz al
  movzx eax, al
  store_result 0, eax
  xor eax, eax
  xor edx, edx
  cmpxchg8b [SCRATCH]
  setz bl
  movzx ebx, bl
  store_result 1, ebx
  store_result 2, eax
  store_result 3, edx
  resume_at .r1
.f1: db 0x0F, 0xC7, 0xC8            ; cmpxchg8b eax: no register form
.r1:
  finish
`);
  assertEquals([g.mem.readU32(0x2800), g.mem.readU32(0x2804)], [0x33333333, 0x44444444]);
  assertEquals([g.result(0), g.result(1), g.result(2), g.result(3)], [1, 0, 0x33333333, 0x44444444]);
  assertEquals(faults(g), [[UD, 0, g.symbol("test_main.f1")]]);
});

systemTest("Cpu BOUND raises #BR (a fault) outside the inclusive signed bounds", () => {
  const g = runKernel(`
test_main:
  mov dword [SCRATCH], 10
  mov dword [SCRATCH + 4], 20
  mov word [SCRATCH + 8], -5
  mov word [SCRATCH + 10], 5
  mov eax, 10
  bound eax, [SCRATCH]
  mov eax, 20
  bound eax, [SCRATCH]
  mov ax, -5
  bound ax, [SCRATCH + 8]
  mov eax, 21
  resume_at .r1
.f1: bound eax, [SCRATCH]
.r1:
  mov eax, -1                       ; signed: below 10
  resume_at .r2
.f2: bound eax, [SCRATCH]
.r2:
  mov ax, 6
  resume_at .r3
.f3: bound ax, [SCRATCH + 8]
.r3:
  finish
`);
  const at = (i: number) => g.symbol(`test_main.f${i}`);
  assertEquals(faults(g), [[BR, 0, at(1)], [BR, 0, at(2)], [BR, 0, at(3)]]);
});

systemTest(
  "Cpu MOV to/from CR0, CR2, CR3, CR4: ET is fixed, invalid combinations #GP(0), CR1/CR5 #UD",
  () => {
    const g = runKernel(`
test_main:
  mov eax, cr0
  store_result 0, eax
  and eax, ~0x10
  mov cr0, eax
  mov eax, cr0
  store_result 1, eax
  mov eax, 0x80000000               ; PG without PE
  resume_at .r1
.f1: mov cr0, eax
.r1:
  mov eax, cr0
  or eax, 0x20000000                ; NW without CD
  resume_at .r2
.f2: mov cr0, eax
.r2:
  mov eax, 0x2000                   ; CR4.VMXE: not implemented
  resume_at .r3
.f3: mov cr4, eax
.r3:
  mov eax, 0x90                     ; PSE | PGE
  mov cr4, eax
  mov eax, cr4
  store_result 2, eax
  mov eax, 0x123018                 ; PWT | PCD kept
  mov cr3, eax
  mov eax, cr3
  store_result 3, eax
  mov eax, 0xDEADB000
  mov cr2, eax
  mov eax, cr2
  store_result 4, eax
  resume_at .r4
.f4: db 0x0F, 0x22, 0xC8            ; mov cr1, eax
.r4: resume_at .r5
.f5: db 0x0F, 0x20, 0xE8            ; mov eax, cr5
.r5:
  mov eax, cr0
  store_result 5, eax
  finish
`);
    const at = (i: number) => g.symbol(`test_main.f${i}`);
    assertEquals(g.result(0), 0x11, "PE | ET after enterProtectedFlat");
    assertEquals(g.result(1), 0x11, "ET reads as 1");
    assertEquals(faults(g), [[GP, 0, at(1)], [GP, 0, at(2)], [GP, 0, at(3)], [UD, 0, at(4)], [UD, 0, at(5)]]);
    assertEquals([g.result(2), g.result(3), g.result(4)], [0x90, 0x123018, 0xDEADB000]);
    assertEquals(g.result(5), 0x11, "CR0 unchanged by the faulting writes");
  },
);

systemTest("Cpu LMSW loads MP/EM/TS and can set but not clear PE; SMSW and CLTS", () => {
  const g = runKernel(`
test_main:
  mov ax, 0x000E
  lmsw ax
  mov eax, cr0
  store_result 0, eax
  xor eax, eax
  lmsw ax
  mov eax, cr0
  store_result 1, eax
  mov ax, 0x0008
  lmsw ax
  clts
  mov eax, cr0
  store_result 2, eax
  mov eax, 0xFFFF0000
  smsw ax
  store_result 3, eax
  finish
`);
  assertEquals([g.result(0) & 0xF, g.result(1) & 0xF, g.result(2) & 0xF], [0xF, 0x1, 0x1]);
  assertEquals(g.result(3), 0xFFFF0011, "SMSW r16 writes only the low word");
});

systemTest("Cpu CPUID leaves above the basic or extended maximum return the highest basic leaf", () => {
  const g = runKernel(`
test_main:
  mov eax, 1
  cpuid
  store_result 0, eax
  store_result 1, edx
  mov eax, 7
  cpuid
  store_result 2, eax
  store_result 3, edx
  mov eax, 0x80000000
  cpuid
  inc eax
  cpuid
  store_result 4, eax
  store_result 5, edx
  finish
`);
  const leaf1 = [g.result(0), g.result(1)];
  assertEquals([g.result(2), g.result(3)], leaf1, "basic leaf 7");
  assertEquals([g.result(4), g.result(5)], leaf1, "first extended leaf past the maximum");
});
