/**
 * lguest's virtual interrupt controller (interrupts_and_traps.c: interrupt_pending,
 * try_deliver_interrupt): IRQ lines latch into a pending bitmap (the launcher's LHREQ_IRQ), the Guest
 * masks lines with lguest_data.blocked_interrupts and disables them all with irq_enabled. There is
 * no EOI, no priority but the lowest number first. When an IRQ is ready but the Guest has interrupts
 * off, the host sets lguest_data.irq_pending so that the Guest's next sti/popf makes
 * LHCALL_SEND_INTERRUPTS. A halted Guest counts as enabled (HALT is an implied sti).
 */
import type { InterruptSource, IrqSink } from "../machine/irq.ts";
import { FIRST_EXTERNAL_VECTOR } from "./guest_idt.ts";
import { LGUEST_DATA, X86_EFLAGS_IF } from "./lguest_data.ts";

/** LGUEST_IRQS: one 32-bit word of lines on i386. */
export const LGUEST_IRQS = 32;

/** What the controller needs from the host: the shared page and the CPU's halt state. */
export interface IrqHost {
  /** True once LHCALL_LGUEST_INIT registered lguest_data. */
  initialized(): boolean;
  readData32(offset: number): number;
  writeData32(offset: number, value: number): void;
  halted(): boolean;
  wake(): void;
}

export class LguestIrqs implements IrqSink, InterruptSource {
  /** irqs_pending: bit n = IRQ n raised and not yet delivered. */
  pending = 0;
  /** The IRQ the CPU acknowledged last (delivered by the host's delivery hook). */
  acknowledged = -1;
  /** IRQs delivered into the Guest, for the state dump. */
  delivered = 0;
  readonly #host: IrqHost;

  constructor(host: IrqHost) {
    this.#host = host;
  }

  /** A device or the clock event raises `line`; lowering a line is not an event (lguest's LHREQ_IRQ). */
  setIrq(line: number, level: boolean): void {
    if (!level || line < 0 || line >= LGUEST_IRQS) return;
    this.pending |= 1 << line;
    this.#host.wake();
  }

  /** Pending IRQs the Guest has not blocked. */
  ready(): number {
    if (this.pending === 0 || !this.#host.initialized()) return 0;
    return this.pending & ~this.#host.readData32(LGUEST_DATA.blocked_interrupts);
  }

  hasInterrupt(): boolean {
    if (this.ready() === 0) return false;
    if (this.#host.halted()) return true;
    if ((this.#host.readData32(LGUEST_DATA.irq_enabled) & X86_EFLAGS_IF) !== 0) return true;
    this.#host.writeData32(LGUEST_DATA.irq_pending, X86_EFLAGS_IF);
    return false;
  }

  acknowledge(): number {
    const r = this.ready();
    this.acknowledged = r === 0 ? -1 : 31 - Math.clz32(r & -r);
    return FIRST_EXTERNAL_VECTOR + Math.max(this.acknowledged, 0);
  }
}
