/**
 * Single-step (SDM Vol. 3A 17.3.1.4, 6.8.3): a REP string instruction traps after every
 * iteration with EIP still at it while the count lasts; MOV SS and POP SS hold the trap off for
 * one instruction (the trap then comes after the next one). Guests are built on
 * testdata/x86/pm_kernel.inc; the #DB hook logs ECX and clears TF after a number of traps.
 */
import { assertEquals } from "../../assert.ts";
import { systemTest, TestGuest } from "./test_guest.ts";

const DB = 1;

function dbHook(traps: number): string {
  return `
db_hook:
  inc dword [RESULTS + 4]
  cmp dword [RESULTS + 4], ${traps}
  jb .keep
  and dword [ebp + F_EFLAGS], ~0x100
.keep:
  ret
`;
}

/** Runs `setup`, then `body` with TF set. */
function traced(setup: string, body: string, traps: number): TestGuest {
  const g = TestGuest.kernel(`
test_main:
  set_hook 1, db_hook
${setup}
  pushfd
  or dword [esp], 0x100
  popfd
${body}
  finish
${dbHook(traps)}`);
  g.run();
  g.expectDone();
  return g;
}

systemTest(
  "Cpu single-step: REP STOSB traps after every iteration, EIP at the instruction while ECX != 0",
  () => {
    const g = traced(
      `
  mov edi, SCRATCH
  mov ecx, 3`,
      `
.s0: rep stosb
.s1: mov ecx, 7
.s2: nop
.s3:`,
      4,
    );
    assertEquals(g.events().map((e) => [e.vector, e.eip - g.symbol("test_main.s0"), e.ecx]), [
      [DB, 0, 2],
      [DB, 0, 1],
      [DB, g.symbol("test_main.s1") - g.symbol("test_main.s0"), 0],
      [DB, g.symbol("test_main.s2") - g.symbol("test_main.s0"), 7],
    ]);
  },
);

systemTest(
  "Cpu single-step: REPE CMPSB stops trapping at the instruction once ZF ends it; ECX = 0 traps once",
  () => {
    const g = traced(
      `
  mov dword [SCRATCH], 0x44332211
  mov dword [SCRATCH + 8], 0x44FF2211
  mov esi, SCRATCH
  mov edi, SCRATCH + 8
  mov ecx, 4`,
      `
.c0: repe cmpsb
.c1: xor ecx, ecx
.c2: rep movsb
.c3: nop`,
      6,
    );
    const at = (l: string) => g.symbol(`test_main.${l}`);
    assertEquals(g.events().map((e) => [e.eip, e.ecx]), [
      [at("c0"), 3],
      [at("c0"), 2],
      [at("c1"), 1], // the third bytes differ: ZF = 0 ends it with ECX = 1
      [at("c2"), 0],
      [at("c3"), 0], // REP with ECX = 0 does nothing and traps once
      [at("c3") + 1, 0],
    ]);
  },
);

systemTest("Cpu single-step: MOV SS and POP SS hold the trap off for one instruction", () => {
  const g = traced(
    "",
    `
.s0: mov ax, SEL_DATA0
.s1: mov ss, ax
.s2: mov ebx, 1
.s3: push dword SEL_DATA0
.s4: pop ss
.s5: mov ecx, 2
.s6: nop
.s7: nop`,
    5,
  );
  const at = (l: string) => g.symbol(`test_main.${l}`);
  assertEquals(g.events().map((e) => e.eip), [at("s1"), at("s3"), at("s4"), at("s6"), at("s7")]);
});
