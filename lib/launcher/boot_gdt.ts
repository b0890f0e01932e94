/**
 * The GDT that boot.rst's "32-bit Boot Protocol" asks a loader to provide for a `native` boot: flat
 * 4 GiB segments at __BOOT_CS (0x10, execute/read) and __BOOT_DS (0x18, read/write). The kernel loads
 * its own GDT soon after, so this only has to outlive the first few instructions.
 */

import type { GuestMemory } from "../machine/guest_memory.ts";

/** Where `native` boots keep the boot GDT (below the zero page, see NATIVE_BOOT_LAYOUT). */
export const BOOT_GDT_PHYS_ADDR = 0x6000;
/** Selectors the 32-bit boot protocol requires. */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
/** Four 8-byte descriptors: two null ones, then __BOOT_CS and __BOOT_DS. */
export const BOOT_GDT_LIMIT = 4 * 8 - 1;

/** Flat 4 GiB descriptors: base 0, limit 0xFFFFF in 4 KiB units (G=1), 32-bit (D=1), present, DPL 0. */
const FLAT_CODE_DESCRIPTOR = 0x00CF_9A00_0000_FFFFn; // type 0xA: code, execute/read
const FLAT_DATA_DESCRIPTOR = 0x00CF_9200_0000_FFFFn; // type 0x2: data, read/write

/** The boot GDT's bytes. */
export function bootGdtBytes(): Uint8Array {
  const gdt = new Uint8Array(BOOT_GDT_LIMIT + 1);
  const view = new DataView(gdt.buffer);
  view.setBigUint64(BOOT_CS, FLAT_CODE_DESCRIPTOR, true);
  view.setBigUint64(BOOT_DS, FLAT_DATA_DESCRIPTOR, true);
  return gdt;
}

/** Writes the boot GDT at `physAddr`; load GDTR with {base: physAddr, limit: BOOT_GDT_LIMIT}. */
export function writeBootGdt(mem: GuestMemory, physAddr = BOOT_GDT_PHYS_ADDR): void {
  mem.write(physAddr, bootGdtBytes(), "boot GDT");
}
