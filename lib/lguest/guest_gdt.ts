/**
 * The host's copy of the Guest's GDT (lguest's segments.c, LGUEST-ABI LOAD_GDT_ENTRY and LOAD_TLS):
 * 32 descriptors the CPU reads through its system-table window at the switcher address. A DPL-0
 * descriptor becomes DPL 1 (the Guest kernel runs in ring 1) and the "accessed" type bit is forced
 * on; the TSS (16), lguest's own switcher segments (10, 11) and the double-fault TSS (31) are the
 * host's and ignore Guest writes. Until the Guest loads its own, kernel CS/DS (12, 13) are flat
 * ring-1 segments, so it can start with CS 0x61 and DS 0x69.
 */

export const GDT_ENTRIES = 32;
export const GDT_ENTRY_TLS_MIN = 6;
export const GDT_ENTRY_TLS_ENTRIES = 3;
export const GDT_ENTRY_KERNEL_CS = 12;
export const GDT_ENTRY_KERNEL_DS = 13;
const GDT_ENTRY_LGUEST_CS = 10;
const GDT_ENTRY_LGUEST_DS = 11;
const GDT_ENTRY_TSS = 16;
const GDT_ENTRY_DOUBLEFAULT_TSS = 31;
/** The Guest kernel's privilege level (GUEST_PL). */
export const GUEST_PL = 1;
/** __KERNEL_CS | GUEST_PL and __KERNEL_DS | GUEST_PL. */
export const LGUEST_KERNEL_CS = (GDT_ENTRY_KERNEL_CS << 3) | GUEST_PL;
export const LGUEST_KERNEL_DS = (GDT_ENTRY_KERNEL_DS << 3) | GUEST_PL;

/** Flat 4 GiB ring-1 code (execute/read, accessed) and data (read/write, accessed) descriptors. */
const FLAT_CODE_DPL1: readonly [number, number] = [0x0000FFFF, 0x00CFBB00];
const FLAT_DATA_DPL1: readonly [number, number] = [0x0000FFFF, 0x00CFB300];

function ignored(index: number): boolean {
  return index === GDT_ENTRY_TSS || index === GDT_ENTRY_LGUEST_CS || index === GDT_ENTRY_LGUEST_DS ||
    index === GDT_ENTRY_DOUBLEFAULT_TSS;
}

export class GuestGdt {
  /** The table as the CPU sees it (little-endian descriptors). */
  readonly view = new DataView(new ArrayBuffer(GDT_ENTRIES * 8));

  constructor() {
    this.reset();
  }

  reset(): void {
    for (let i = 0; i < GDT_ENTRIES * 2; i++) this.view.setInt32(i * 4, 0, true);
    this.#store(GDT_ENTRY_KERNEL_CS, FLAT_CODE_DPL1[0], FLAT_CODE_DPL1[1]);
    this.#store(GDT_ENTRY_KERNEL_DS, FLAT_DATA_DPL1[0], FLAT_DATA_DPL1[1]);
  }

  /** LHCALL_LOAD_GDT_ENTRY; the caller has checked index < GDT_ENTRIES. */
  load(index: number, lo: number, hi: number): void {
    if (ignored(index)) return;
    // DPL 0 -> GUEST_PL, and the accessed bit (type bit 0) set so the CPU never writes it back.
    if (((hi >>> 13) & 3) === 0) hi |= GUEST_PL << 13;
    this.#store(index, lo, hi | 0x100);
  }

  /** LHCALL_LOAD_TLS: the three TLS descriptors, as read from the Guest's tls_array. */
  loadTls(bytes: Uint8Array): void {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < GDT_ENTRY_TLS_ENTRIES; i++) {
      this.load(GDT_ENTRY_TLS_MIN + i, v.getInt32(i * 8, true), v.getInt32(i * 8 + 4, true));
    }
  }

  lo(index: number): number {
    return this.view.getInt32(index * 8, true);
  }
  hi(index: number): number {
    return this.view.getInt32(index * 8 + 4, true);
  }

  #store(index: number, lo: number, hi: number): void {
    this.view.setInt32(index * 8, lo, true);
    this.view.setInt32(index * 8 + 4, hi, true);
  }
}
