/**
 * The host's copy of the Guest's IDT (lguest's interrupts_and_traps.c, LGUEST-ABI LOAD_IDT_ENTRY):
 * 256 gates the host delivers through itself. A gate keeps the Guest's offset, type and DPL, its
 * selector becomes the ring-1 kernel CS; only interrupt (0xE) and trap (0xF) gates are allowed. NMI
 * (2), double fault (8), vector 15 and the hypercall vector 0x1F belong to the host.
 */
import { LGUEST_TRAP_ENTRY } from "./hypercalls.ts";
import { LGUEST_KERNEL_CS } from "./guest_gdt.ts";

export const IDT_ENTRIES = 256;
/** IRQ n arrives at vector FIRST_EXTERNAL_VECTOR + n. */
export const FIRST_EXTERNAL_VECTOR = 0x20;

export class GuestIdt {
  readonly lo = new Int32Array(IDT_ENTRIES);
  readonly hi = new Int32Array(IDT_ENTRIES);

  reset(): void {
    this.lo.fill(0);
    this.hi.fill(0);
  }

  /**
   * LHCALL_LOAD_IDT_ENTRY. Returns lguest's reason to kill the Guest, or null when the entry was
   * taken (or ignored, as lguest ignores the host's vectors).
   */
  load(vector: number, lo: number, hi: number): string | null {
    if (vector === 2 || vector === 8 || vector === 15 || vector === LGUEST_TRAP_ENTRY) return null;
    if (vector >>> 0 >= IDT_ENTRIES) return `Setting idt entry ${vector >>> 0}`;
    if ((hi & 0x8000) === 0) {
      this.lo[vector] = this.hi[vector] = 0;
      return null;
    }
    const type = (hi >>> 8) & 0xF;
    if (type !== 0xE && type !== 0xF) return `bad IDT type ${type}`;
    this.lo[vector] = (LGUEST_KERNEL_CS << 16) | (lo & 0xFFFF);
    this.hi[vector] = hi & 0xFFFFEF00;
    return null;
  }

  present(vector: number): boolean {
    return (this.hi[vector] & 0x8000) !== 0;
  }

  /** The handler's address (the gate's offset). */
  offset(vector: number): number {
    return (this.lo[vector] & 0xFFFF) | (this.hi[vector] & 0xFFFF0000);
  }

  /** Gate DPL: who may reach it with INT n. */
  dpl(vector: number): number {
    return (this.hi[vector] >>> 13) & 3;
  }

  /** True for an interrupt gate, which clears the Guest's irq_enabled like a CPU clears IF. */
  isInterruptGate(vector: number): boolean {
    return ((this.hi[vector] >>> 8) & 0xF) === 0xE;
  }
}
