/**
 * Delivering a trap or interrupt into the Guest the way lguest's host did (interrupts_and_traps.c:
 * push_guest_interrupt_stack, guest_run_interrupt), not the way the CPU would: the EFLAGS image
 * pushed carries the Guest's virtual IF (lguest_data.irq_enabled) instead of the real one, a trap
 * from user mode switches to the stack the Guest gave with LHCALL_SET_STACK, and the handler always
 * runs in ring 1 with the kernel CS. Clearing irq_enabled for interrupt gates is the caller's part.
 */
import type { Cpu } from "../x86/cpu.ts";
import { CS, ESP, SS } from "../x86/registers.ts";
import { readSys, writeSys } from "../x86/mmu.ts";
import { DESC, descBase, loadCache, readDescriptor } from "../x86/segments.ts";
import { GUEST_PL, LGUEST_KERNEL_CS } from "./guest_gdt.ts";

const TF = 0x100, IF = 0x200, IOPL = 0x3000, NT = 0x4000, RF = 0x10000, VM = 0x20000;

/** The ring-1 stack for traps from user mode (LHCALL_SET_STACK). */
export interface GuestKernelStack {
  ss1: number;
  esp1: number;
}

/**
 * Pushes the interrupt frame (SS and ESP first when coming from user mode, then EFLAGS, CS, EIP
 * and the error code if any) and enters the handler at `handler` in ring 1. May raise a CPU fault
 * (an unmapped or read-only Guest stack) before anything but stack memory has changed.
 */
export function enterGuestHandler(
  cpu: Cpu,
  stack: GuestKernelStack,
  handler: number,
  irqEnabled: boolean,
  errorCode: number | null,
  returnEip: number,
): void {
  const fromUser = (cpu.segSel[SS] & 3) !== GUEST_PL;
  let ss: number, sp: number, ssBase: number;
  if (fromUser) {
    ss = stack.ss1;
    sp = stack.esp1;
    readDescriptor(cpu, ss);
    ssBase = descBase(DESC[0], DESC[1]);
  } else {
    ss = cpu.segSel[SS];
    sp = cpu.regs[ESP];
    ssBase = cpu.segBase[SS];
  }
  const push = (v: number) => {
    sp = (sp - 4) | 0;
    writeSys(cpu, (ssBase + sp) | 0, 4, v);
  };
  if (fromUser) {
    push(cpu.segSel[SS]);
    push(cpu.regs[ESP]);
  }
  let eflags = cpu.getEflags();
  if (!irqEnabled) eflags &= ~IF;
  push(eflags);
  push(cpu.segSel[CS]);
  push(returnEip);
  if (errorCode !== null) push(errorCode);
  // Commit: stack, then the kernel CS, then the flags.
  if (fromUser) {
    readDescriptor(cpu, ss);
    loadCache(cpu, SS, ss);
  }
  cpu.regs[ESP] = sp;
  readDescriptor(cpu, LGUEST_KERNEL_CS);
  loadCache(cpu, CS, LGUEST_KERNEL_CS);
  cpu.setCpl(GUEST_PL);
  enterHandler(cpu, handler);
}

/**
 * Enters `handler` reusing the iret frame already on the stack (an interrupt at lguest_noirq_iret):
 * EFLAGS is reloaded from the frame, so the handler's own iret resumes whatever that iret would have.
 */
export function enterGuestHandlerReusingFrame(cpu: Cpu, handler: number): void {
  const eflags = readSys(cpu, (cpu.segBase[SS] + cpu.regs[ESP] + 8) | 0, 4);
  // The real IF stays on and IOPL 0: a ring-1 Guest never owns either.
  cpu.setEflags((eflags & ~(IF | IOPL)) | IF);
  readDescriptor(cpu, LGUEST_KERNEL_CS);
  loadCache(cpu, CS, LGUEST_KERNEL_CS);
  cpu.setCpl(GUEST_PL);
  enterHandler(cpu, handler);
}

function enterHandler(cpu: Cpu, handler: number): void {
  cpu.setEflags(cpu.getEflags() & ~(TF | VM | RF | NT));
  cpu.st[0] = handler | 0;
  cpu.halted = false;
}
