/**
 * lguest's hypercall numbers (Linux 4.9 arch/x86/include/asm/lguest_hcall.h, LGUEST-ABI section 1) as
 * data: the host's switch, the `kill -USR2` counts and the tests all read this one table. Numbers 3,
 * 11, 12 and 17 were retired before 4.x and kill the Guest like any unknown number.
 */

export const LHCALL_FLUSH_ASYNC = 0;
export const LHCALL_LGUEST_INIT = 1;
export const LHCALL_SHUTDOWN = 2;
export const LHCALL_NEW_PGTABLE = 4;
export const LHCALL_FLUSH_TLB = 5;
export const LHCALL_LOAD_IDT_ENTRY = 6;
export const LHCALL_SET_STACK = 7;
export const LHCALL_TS = 8;
export const LHCALL_SET_CLOCKEVENT = 9;
export const LHCALL_HALT = 10;
export const LHCALL_SET_PMD = 13;
export const LHCALL_SET_PTE = 14;
export const LHCALL_SET_PGD = 15;
export const LHCALL_LOAD_TLS = 16;
export const LHCALL_LOAD_GDT_ENTRY = 18;
export const LHCALL_SEND_INTERRUPTS = 19;

/** The trap vector of a hypercall: `int $0x1F` (LGUEST_TRAP_ENTRY). */
export const LGUEST_TRAP_ENTRY = 0x1F;

/** LHCALL_SHUTDOWN's reason codes. */
export const LGUEST_SHUTDOWN_POWEROFF = 1;
export const LGUEST_SHUTDOWN_RESTART = 2;

/** Slots in lguest_data's asynchronous hypercall ring (LHCALL_RING_SIZE). */
export const LHCALL_RING_SIZE = 64;

/** One hypercall as the host knows it: its number, its spec name, and whether it exists only with PAE. */
export interface Hypercall {
  nr: number;
  name: string;
  paeOnly: boolean;
}

/** Every hypercall of the 4.9 ABI, by number. */
export const HYPERCALLS: readonly Hypercall[] = [
  { nr: LHCALL_FLUSH_ASYNC, name: "LHCALL_FLUSH_ASYNC", paeOnly: false },
  { nr: LHCALL_LGUEST_INIT, name: "LHCALL_LGUEST_INIT", paeOnly: false },
  { nr: LHCALL_SHUTDOWN, name: "LHCALL_SHUTDOWN", paeOnly: false },
  { nr: LHCALL_NEW_PGTABLE, name: "LHCALL_NEW_PGTABLE", paeOnly: false },
  { nr: LHCALL_FLUSH_TLB, name: "LHCALL_FLUSH_TLB", paeOnly: false },
  { nr: LHCALL_LOAD_IDT_ENTRY, name: "LHCALL_LOAD_IDT_ENTRY", paeOnly: false },
  { nr: LHCALL_SET_STACK, name: "LHCALL_SET_STACK", paeOnly: false },
  { nr: LHCALL_TS, name: "LHCALL_TS", paeOnly: false },
  { nr: LHCALL_SET_CLOCKEVENT, name: "LHCALL_SET_CLOCKEVENT", paeOnly: false },
  { nr: LHCALL_HALT, name: "LHCALL_HALT", paeOnly: false },
  { nr: LHCALL_SET_PMD, name: "LHCALL_SET_PMD", paeOnly: true },
  { nr: LHCALL_SET_PTE, name: "LHCALL_SET_PTE", paeOnly: false },
  { nr: LHCALL_SET_PGD, name: "LHCALL_SET_PGD", paeOnly: false },
  { nr: LHCALL_LOAD_TLS, name: "LHCALL_LOAD_TLS", paeOnly: false },
  { nr: LHCALL_LOAD_GDT_ENTRY, name: "LHCALL_LOAD_GDT_ENTRY", paeOnly: false },
  { nr: LHCALL_SEND_INTERRUPTS, name: "LHCALL_SEND_INTERRUPTS", paeOnly: false },
];

/** Highest hypercall number plus one: the size of per-number count arrays. */
export const HYPERCALL_LIMIT = 20;

/** The table entry for `nr`, or undefined for a number the 4.9 ABI does not define. */
export function hypercallByNumber(nr: number): Hypercall | undefined {
  return HYPERCALLS.find((h) => h.nr === nr);
}
