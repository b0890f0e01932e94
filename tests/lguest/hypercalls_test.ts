/**
 * The hypercall rules of lguest 4.9 (LGUEST-ABI section 1): INIT first and once, every defined call,
 * unknown numbers, bad addresses, SHUTDOWN's reasons, and the asynchronous ring, checked with small
 * NASM Guests on the real host (lib/lguest/lguest_host.ts) and Machine run loop.
 */
import { assert, assertEquals } from "../assert.ts";
import { cpuid } from "../../lib/x86/cpuid.ts";
import { lguestTest, runGuest } from "./lguest_guest.ts";

lguestTest("LHCALL_LGUEST_INIT writes time, tsc_khz and reserve_mem into lguest_data", async () => {
  const g = await runGuest(`
test_main:
  result 0, [LD_time_sec]
  result 1, [LD_tsc_khz]
  result 2, [LD_reserve_mem]
  poweroff
`);
  assertEquals(g.result.kind, "poweroff");
  assertEquals(g.r(0), 1_000_000_000, "time: the host's start time (1e12 ms) in seconds");
  assertEquals(g.r(1), 1_000_000, "a 1 GHz TSC");
  assertEquals(g.r(2), 0x400000, "4 GiB minus the switcher at 0xFFC00000");
});

lguestTest("a hypercall before LHCALL_LGUEST_INIT kills the guest", async () => {
  const g = await runGuest(
    `
entry:
  hcall LHCALL_FLUSH_TLB, 1
  hlt
`,
    { defines: ["CUSTOM_ENTRY"] },
  );
  assertEquals(g.result, { kind: "error", reason: "hypercall 5 before INIT" });
});

lguestTest("a second LHCALL_LGUEST_INIT kills the guest", async () => {
  const g = await runGuest(`
test_main:
  hcall LHCALL_LGUEST_INIT, lguest_data
  poweroff
`);
  assertEquals(g.result, { kind: "error", reason: "already have lguest_data" });
});

lguestTest("LHCALL_LGUEST_INIT outside RAM or with a bad syscall vector kills the guest", async () => {
  const outside = await runGuest(
    `
entry:
  hcall LHCALL_LGUEST_INIT, 0x3FFFF00
  hlt
`,
    { defines: ["CUSTOM_ENTRY"] },
  );
  assertEquals(outside.result, { kind: "error", reason: "bad guest page 0x3ffff00" });
  const vec = await runGuest(`test_main:\n  poweroff\n`, { defines: ["BAD_SYSCALL_VEC"] });
  assertEquals(vec.result, { kind: "error", reason: "bad syscall vector" });
});

for (const nr of [3, 11, 12, 17, 20, 0xFFFFFFFF]) {
  lguestTest(`hypercall ${nr} is not in the 4.9 ABI and kills the guest`, async () => {
    const g = await runGuest(`test_main:\n  hcall ${nr}\n  poweroff\n`);
    assertEquals(g.result, { kind: "error", reason: `Bad hypercall ${nr}` });
  });
}

lguestTest("LHCALL_SET_PMD exists only for a PAE guest", async () => {
  const g = await runGuest(`test_main:\n  hcall LHCALL_SET_PMD, pt0, 0\n  poweroff\n`);
  assertEquals(g.result, { kind: "error", reason: "Bad hypercall 13" });
});

lguestTest("LHCALL_SHUTDOWN: power-off, restart and panic reasons", async () => {
  const off = await runGuest(`test_main:\n  poweroff\n`);
  assertEquals(off.result, { kind: "poweroff", reason: "the guest powered off: Power down" });
  const restart = await runGuest(`
test_main:
  shutdown why, 2
why: db "Restarting system", 0
  times 128 db 0
`);
  assertEquals(restart.result, { kind: "reboot", reason: "the guest restarted: Restarting system" });
  const panic = await runGuest(`
test_main:
  shutdown why, 1
why: db "VFS: Unable to mount root fs on unknown-block(0,0)", 0
  times 128 db 0
`);
  assertEquals(panic.result, { kind: "panic", reason: "VFS: Unable to mount root fs on unknown-block(0,0)" });
  const bad = await runGuest(`test_main:\n  shutdown 0x3FFFFC0, 1\n`);
  assertEquals(bad.result, { kind: "error", reason: "bad read address 0x3ffffc0 len 128" });
  // reboot -f: Linux passes __pa(NULL) = 0x40000000; lguest restarted all the same.
  const noReason = await runGuest(`test_main:\n  shutdown 0x40000000, 2\n`);
  assertEquals(noReason.result, { kind: "reboot", reason: "the guest restarted (no reason given)" });
});

lguestTest("LHCALL_LOAD_GDT_ENTRY raises DPL 0 to 1, sets accessed, ignores the host's entries", async () => {
  const g = await runGuest(`
test_main:
  hcall LHCALL_LOAD_GDT_ENTRY, 20, 0x0000FFFF, 0x00CF9200   ; DPL-0 data, not accessed
  hcall LHCALL_LOAD_GDT_ENTRY, 16, 0x12345678, 0x00008900   ; the TSS: ignored
  hcall LHCALL_LOAD_GDT_ENTRY, 21, 0x0000FFFF, 0x00CFF200   ; DPL 3 stays 3
  mov ax, (20 << 3) | 1
  mov ds, ax                ; loadable at CPL 1 only because the host made it DPL 1
  mov ax, 0x69
  mov ds, ax
  result 0, 1
  hcall LHCALL_LOAD_GDT_ENTRY, 32, 0, 0
  poweroff
`);
  assertEquals(g.r(0), 1);
  assertEquals(g.host.gdt.hi(20) >>> 0, 0x00CFB300);
  assertEquals(g.host.gdt.hi(21) >>> 0, 0x00CFF300);
  assertEquals(g.host.gdt.lo(16), 0);
  assertEquals(g.result, { kind: "error", reason: "too many gdt entries 32" });
});

lguestTest("LHCALL_LOAD_TLS loads GDT 6-8 from guest memory; a bad address kills", async () => {
  const g = await runGuest(`
test_main:
  hcall LHCALL_LOAD_TLS, tls, 0
  mov ax, (7 << 3) | 3
  mov gs, ax
  mov eax, [gs:0]
  result 0, eax
  hcall LHCALL_LOAD_TLS, 0x3FFFFF0, 0
  poweroff
align 8
tls:
  dd 0, 0
  dd 0x0000FFFF | (MARKER & 0xFFFF) << 16, 0x00CFF200 | ((MARKER >> 16) & 0xFF) | (MARKER & 0xFF000000)
  dd 0, 0
marker: dd 0xC0FFEE11
MARKER equ marker - $$ + GUEST_BASE
`);
  assertEquals(g.r(0), 0xC0FFEE11);
  assertEquals(g.result, { kind: "error", reason: "bad read address 0x3fffff0 len 24" });
});

lguestTest("LHCALL_LOAD_IDT_ENTRY ignores the host's vectors and refuses bad ones", async () => {
  const g = await runGuest(`
test_main:
  set_gate 2, test_main, 0xE, 0
  set_gate 8, test_main, 0xE, 0
  set_gate 15, test_main, 0xE, 0
  set_gate 0x1F, test_main, 0xE, 3
  set_gate 0x30, test_main, 0xE, 0
  hcall LHCALL_LOAD_IDT_ENTRY, 0x31, 0x00600000, 0x00008C00  ; a call gate
  poweroff
`);
  for (const v of [2, 8, 15, 0x1F]) assert(!g.host.idt.present(v), `vector ${v} is the host's`);
  assert(g.host.idt.present(0x30));
  assertEquals(g.result, { kind: "error", reason: "bad IDT type 12" });
  const big = await runGuest(`test_main:\n  hcall LHCALL_LOAD_IDT_ENTRY, 256, 0, 0x8E00\n  poweroff\n`);
  assertEquals(big.result, { kind: "error", reason: "Setting idt entry 256" });
});

lguestTest("LHCALL_SET_STACK needs RPL 1 and at most 2 pages", async () => {
  const seg = await runGuest(`test_main:\n  hcall LHCALL_SET_STACK, 0x68, kstack_top, 2\n  poweroff\n`);
  assertEquals(seg.result, { kind: "error", reason: "bad stack segment 104" });
  const pages = await runGuest(`test_main:\n  hcall LHCALL_SET_STACK, 0x69, kstack_top, 3\n  poweroff\n`);
  assertEquals(pages.result, { kind: "error", reason: "bad stack pages 3" });
});

lguestTest(
  "the async ring runs before the synchronous call, in order, wrapping, stopping at a free slot",
  async () => {
    const g = await runGuest(`
; queue SLOT, NR, A1, A2, A3
%macro queue 5
  mov dword [LD_hcalls + (%1) * 20], %2
  mov dword [LD_hcalls + (%1) * 20 + 4], %3
  mov dword [LD_hcalls + (%1) * 20 + 8], %4
  mov dword [LD_hcalls + (%1) * 20 + 12], %5
  mov byte [LD_hcall_status + (%1)], 0
%endmacro
test_main:
  ; 60 calls in slots 0-59, drained by one FLUSH_ASYNC
  %assign s 0
  %rep 60
    queue s, LHCALL_LOAD_GDT_ENTRY, 20, 0x0000FFFF, 0x00CFF200 | s
    %assign s s + 1
  %endrep
  hcall LHCALL_FLUSH_ASYNC
  movzx eax, byte [LD_hcall_status + 59]
  result 0, eax
  ; slots 60-63 then 0-5: the host's cursor wraps
  %assign s 60
  %rep 10
    queue (s % 64), LHCALL_LOAD_GDT_ENTRY, 21, 0x0000FFFF, 0x00CFF200 | s
    %assign s s + 1
  %endrep
  ; the synchronous call comes after every queued one
  hcall LHCALL_LOAD_GDT_ENTRY, 21, 0x0000FFFF, 0x00CFF2AA
  ; a busy slot after a free one is not reached: slot 7 pending, the cursor's slot 6 free
  queue 7, LHCALL_LOAD_GDT_ENTRY, 22, 0x0000FFFF, 0x00CFF211
  hcall LHCALL_FLUSH_ASYNC
  movzx eax, byte [LD_hcall_status + 7]
  result 1, eax
  queue 6, LHCALL_LOAD_GDT_ENTRY, 22, 0x0000FFFF, 0x00CFF222
  hcall LHCALL_SEND_INTERRUPTS
  movzx eax, byte [LD_hcall_status + 7]
  result 2, eax
  poweroff
`);
    assertEquals(g.result.kind, "poweroff", g.result.reason);
    assertEquals(g.r(0), 0xFF, "done slots go back to 0xFF");
    assertEquals(g.host.gdt.hi(20) & 0xFF, 59, "slot 59 ran last of the first batch");
    assertEquals(g.host.gdt.hi(21) & 0xFF, 0xAA, "the synchronous call ran after slots 60-63 and 0-5");
    assertEquals(g.r(1), 0, "slot 7 waited behind the free slot 6");
    assertEquals(g.r(2), 0xFF);
    assertEquals(g.host.gdt.hi(22) & 0xFF, 0x11, "slot 6 then slot 7, in ring order");
    assertEquals(g.host.asyncHypercalls, 72);
  },
);

lguestTest("CPUID in the guest is what our CPU implements", async () => {
  const g = await runGuest(`
test_main:
  mov eax, 1
  cpuid
  result 0, eax
  result 1, edx
  result 2, ecx
  poweroff
`);
  const out = new Int32Array(4);
  cpuid(1, true, out);
  assertEquals([g.r(0), g.r(1), g.r(2)], [out[0] >>> 0, out[3] >>> 0, out[2] >>> 0]);
});
