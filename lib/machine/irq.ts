/**
 * Interrupt wiring. Devices drive numbered IRQ lines; an interrupt controller (the 8259 pair on a
 * PC, lguest's blocked_interrupts bitmap for a paravirt guest) turns them into vectors the CPU
 * takes between instructions.
 */

/** What devices see: set the level of one IRQ line (edge devices pulse it). */
export interface IrqSink {
  setIrq(line: number, level: boolean): void;
  /**
   * Optional: an edge on `line` is latched and not yet taken by the CPU (the 8259's IRR bit), so
   * another edge now would merge with it. A timer catching up on lost ticks waits while it is.
   */
  requestPending?(line: number): boolean;
}

/** What the CPU sees: is an external interrupt pending, and which vector is it. */
export interface InterruptSource {
  /** True when an interrupt is waiting to be delivered (the CPU also checks EFLAGS.IF). */
  hasInterrupt(): boolean;
  /** Acknowledges the highest-priority pending interrupt and returns its vector (0..255). */
  acknowledge(): number;
}
