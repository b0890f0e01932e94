/**
 * lguest's interrupt model (LGUEST-ABI 2 and 4c): IRQ n at vector 0x20 + n through the IDT loaded with
 * LOAD_IDT_ENTRY, irq_enabled (bit 9), blocked_interrupts, irq_pending and SEND_INTERRUPTS, the
 * one-shot clock event on the machine's clock, HALT with its implied sti, and delivery at noirq_iret
 * reusing the iret frame.
 */
import { assert, assertEquals } from "../assert.ts";
import { lguestTest, runGuest } from "./lguest_guest.ts";

/** An IRQ 0 handler (interrupt gate) that counts, records irq_enabled and the frame, then irets. */
const TIMER_HANDLER = `
timer_handler:
  inc dword [results + 40]
  mov eax, [LD_irq_enabled]
  mov [results + 44], eax       ; irq_enabled inside the handler
  mov eax, [esp + 8]
  mov [results + 48], eax       ; EFLAGS image pushed
  mov eax, [esp]
  mov [results + 52], eax       ; return EIP
  mov [results + 56], esp
  jmp lguest_iret
`;

lguestTest("the clock event raises IRQ 0; HALT sleeps until it and implies sti", async () => {
  const g = await runGuest(`
test_main:
  set_gate 0x20, timer_handler, 0xE, 0
  mov dword [LD_blocked], 0
  mov dword [LD_irq_enabled], 0          ; safe_halt is entered with interrupts off
  mov esi, [LD_time_sec]
  mov edi, [LD_time_nsec]
  hcall LHCALL_SET_CLOCKEVENT, 5000000    ; 5 ms
  hcall LHCALL_HALT
after_halt:
  result 0, [LD_irq_enabled]
  result 1, [LD_time_sec]
  result 2, [LD_time_nsec]
  mov [results + 12], esi
  mov [results + 16], edi
  poweroff
${TIMER_HANDLER}
`);
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals(g.r(10), 1, "one timer interrupt");
  assertEquals(g.r(11), 0, "an interrupt gate clears irq_enabled");
  assertEquals(g.r(12) & 0x200, 0x200, "the woken HALT's implied sti shows in the pushed EFLAGS");
  assertEquals(g.r(13), g.symbols.get("after_halt"));
  assertEquals(g.r(0) & 0x200, 0x200, "lguest_iret restored irq_enabled from the frame");
  const before = g.r(3) * 1e9 + g.r(4), after = g.r(1) * 1e9 + g.r(2);
  assert(after - before >= 5_000_000, `lguest_data.time moved by ${after - before} ns, at least the 5 ms`);
});

lguestTest("irq_enabled off defers an IRQ with irq_pending; SEND_INTERRUPTS delivers it", async () => {
  const g = await runGuest(`
test_main:
  set_gate 0x20, timer_handler, 0xE, 0
  mov dword [LD_blocked], 0
  mov dword [LD_irq_enabled], 0
  hcall LHCALL_SET_CLOCKEVENT, 1000
  mov ecx, 200000
spin: loop spin                          ; the event fires while interrupts are off
  result 0, [results + 40]               ; still 0
  result 1, [LD_irq_pending]             ; 0x200
  mov dword [LD_irq_enabled], 0x200      ; lg_irq_enable
  cmp dword [LD_irq_pending], 0
  je no_send
  hcall LHCALL_SEND_INTERRUPTS
no_send:
  result 2, [results + 40]
  result 3, [LD_irq_pending]
  poweroff
${TIMER_HANDLER}
`);
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals([g.r(0), g.r(1), g.r(2), g.r(3)], [0, 0x200, 1, 0]);
  assertEquals(g.r(12) & 0x200, 0x200, "pushed EFLAGS says interrupts were on");
});

lguestTest("blocked_interrupts masks one line; unmasking and SEND_INTERRUPTS delivers", async () => {
  const g = await runGuest(`
test_main:
  set_gate 0x20, timer_handler, 0xE, 0
  mov dword [LD_blocked], 1               ; IRQ 0 masked, interrupts on
  hcall LHCALL_SET_CLOCKEVENT, 1000
  mov ecx, 200000
spin: loop spin
  result 0, [results + 40]
  result 1, [LD_irq_pending]
  mov dword [LD_blocked], 0
  hcall LHCALL_SEND_INTERRUPTS
  result 2, [results + 40]
  poweroff
${TIMER_HANDLER}
`);
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals([g.r(0), g.r(1), g.r(2)], [0, 0, 1]);
});

lguestTest("SET_CLOCKEVENT 0 stops the timer", async () => {
  const g = await runGuest(`
test_main:
  set_gate 0x20, timer_handler, 0xE, 0
  mov dword [LD_blocked], 0
  hcall LHCALL_SET_CLOCKEVENT, 100000
  hcall LHCALL_SET_CLOCKEVENT, 0
  mov ecx, 300000
spin: loop spin
  result 0, [results + 40]
  poweroff
${TIMER_HANDLER}
`);
  assertEquals(g.r(0), 0);
});

lguestTest("an IRQ at noirq_iret reuses the iret frame instead of pushing a new one", async () => {
  const g = await runGuest(
    `
test_main:
  set_gate 0x20, timer_handler, 0xE, 0
  mov dword [LD_blocked], 0
  mov dword [LD_irq_enabled], 0
  hcall LHCALL_SET_CLOCKEVENT, 1000
  mov ecx, 200000
spin: loop spin                           ; IRQ 0 now pending, interrupts off
  mov [results + 0], esp
  pushfd
  push cs
  push back_here
  ; lguest_iret with the SEND_INTERRUPTS of a pending IRQ right before the iret: the host sees
  ; EIP == noirq_iret and must not push onto this frame.
  mov dword [LD_irq_enabled], 0x200
  hcall LHCALL_SEND_INTERRUPTS
my_noirq:
  iret
back_here:
  mov [results + 4], esp
  poweroff
${TIMER_HANDLER}
`,
    { defines: ["NOIRQ_SYMBOL=my_noirq"] },
  );
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals(g.r(10), 1, "delivered once");
  assertEquals(g.r(13), g.symbols.get("back_here"), "the handler's frame is the iret's frame");
  assertEquals(g.r(14), g.r(0) - 12, "no second frame below it");
  assertEquals(g.r(1), g.r(0), "the stack is balanced afterwards");
});

lguestTest("a device line raised while the guest halts arrives at vector 0x20 + line", async () => {
  const body = `
test_main:
  set_gate 0x25, dev_handler, 0xE, 0
  mov dword [LD_blocked], 0
  mov dword [LD_irq_enabled], 0
  hcall LHCALL_HALT
  result 0, [results + 40]
  poweroff
dev_handler:
  inc dword [results + 40]
  jmp lguest_iret
`;
  // The console's transport drives line 5 in the harness; raise it from a machine timer as a device would.
  const { runGuestWith } = await import("./lguest_guest.ts");
  const g = await runGuestWith(body, {}, (m, host) => {
    const t = m.clock.timer("test device", () => host.irqs.setIrq(5, true));
    t.arm(2_000_000);
  });
  assertEquals(g.result.kind, "poweroff", g.result.reason);
  assertEquals(g.r(0), 1);
});
