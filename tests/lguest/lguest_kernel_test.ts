/**
 * detectLguestKernel: lguest Guests found by their symbol table or, stripped (a bzImage's payload),
 * by lguest_entry's code; PAE told apart by initial_pg_pmd or by initial_page_table's static PDPT.
 */
import { assertEquals } from "../assert.ts";
import { detectLguestKernel } from "../../lib/lguest/lguest_kernel.ts";
import { makeElf32 } from "../launcher/kernel_fixtures.ts";

const BASE = 0x1000000;

/** lguest_entry's first instructions: INIT(0x1400000), NEW_PGTABLE(table), int $0x1f each. */
function entryCode(table: number): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  b.set([0xB8, 1, 0, 0, 0, 0xBB], 0);
  v.setUint32(6, 0x1400000, true);
  b.set([0xCD, 0x1F, 0xB8, 4, 0, 0, 0, 0xBB], 10);
  v.setUint32(18, table, true);
  b.set([0xCD, 0x1F], 22);
  return b;
}

/** A stripped vmlinux: code at BASE, then a page at BASE + 0x1000 holding `table` (file data). */
function stripped(table: Uint8Array | null): Uint8Array {
  const data = new Uint8Array(0x1000 + (table?.length ?? 0));
  data.set(entryCode(BASE + 0x1000), 0x100);
  if (table) data.set(table, 0x1000);
  return makeElf32({
    entry: BASE,
    segments: [{ vaddr: 0xC0000000 + BASE, paddr: BASE, data, memsz: 0x2000 }],
  });
}

/** Appends a .symtab and .strtab with `names` to an ELF from makeElf32. */
function withSymbols(elf: Uint8Array, names: string[]): Uint8Array {
  const enc = new TextEncoder();
  const strtab = [0];
  const offsets = names.map((n) => {
    const at = strtab.length;
    strtab.push(...enc.encode(n), 0);
    return at;
  });
  const symtab = new Uint8Array((names.length + 1) * 16);
  const sv = new DataView(symtab.buffer);
  offsets.forEach((o, i) => sv.setUint32((i + 1) * 16, o, true));
  const symOff = elf.length, strOff = symOff + symtab.length, shOff = strOff + strtab.length;
  const out = new Uint8Array(shOff + 3 * 40);
  out.set(elf);
  out.set(symtab, symOff);
  out.set(strtab, strOff);
  const v = new DataView(out.buffer);
  v.setUint32(32, shOff, true);
  v.setUint16(46, 40, true);
  v.setUint16(48, 3, true);
  const sh = (i: number, type: number, off: number, size: number, link: number, entsize: number) => {
    const at = shOff + i * 40;
    v.setUint32(at + 4, type, true);
    v.setUint32(at + 16, off, true);
    v.setUint32(at + 20, size, true);
    v.setUint32(at + 24, link, true);
    v.setUint32(at + 36, entsize, true);
  };
  sh(1, 2, symOff, symtab.length, 2, 16); // SHT_SYMTAB, strings in section 2
  sh(2, 3, strOff, strtab.length, 0, 0); // SHT_STRTAB
  return out;
}

/** initial_page_table with PAE; `present` lists the entries head_32.S fills (KPMDS == 1: 0 and 3). */
function pdpt(present = [0, 1, 2, 3]): Uint8Array {
  const t = new Uint8Array(32);
  const v = new DataView(t.buffer);
  for (const i of present) v.setUint32(i * 8, 0x1500000 + i * 0x1000 + 1, true);
  return t;
}

Deno.test("detectLguestKernel reads lguest_entry and initial_pg_pmd from the symbol table", () => {
  const pae = detectLguestKernel(
    withSymbols(stripped(null), ["startup_32", "lguest_entry", "initial_pg_pmd"]),
  );
  assertEquals([pae.lguest, pae.pae], [true, true]);
  const plain = detectLguestKernel(withSymbols(stripped(null), ["startup_32", "lguest_entry"]));
  assertEquals([plain.lguest, plain.pae], [true, false]);
  const pc = detectLguestKernel(withSymbols(stripped(null), ["startup_32", "xen_entry"]));
  assertEquals(pc.lguest, false, "a symbol table without lguest_entry is believed");
});

Deno.test("detectLguestKernel finds lguest_entry's code in a stripped vmlinux and tells PAE by its PDPT", () => {
  const pae = detectLguestKernel(stripped(pdpt()));
  assertEquals([pae.lguest, pae.pae], [true, true], pae.why);
  const plain = detectLguestKernel(stripped(null));
  assertEquals([plain.lguest, plain.pae], [true, false], plain.why);
  // Linux 4.9's default 3G/1G split fills entries 0 and 3 only (a real PAE bzImage was once taken
  // for non-PAE and faulted at once); a zeroed table is still no PDPT.
  const split = detectLguestKernel(stripped(pdpt([0, 3])));
  assertEquals([split.lguest, split.pae], [true, true], split.why);
  const zeroed = detectLguestKernel(stripped(pdpt([])));
  assertEquals([zeroed.lguest, zeroed.pae], [true, false], zeroed.why);
});

Deno.test("detectLguestKernel says no for other kernels and for what is not an ELF", () => {
  const other = makeElf32({
    entry: BASE,
    segments: [{ vaddr: BASE, paddr: BASE, data: new Uint8Array(64) }],
  });
  assertEquals(detectLguestKernel(other).lguest, false);
  assertEquals(detectLguestKernel(new Uint8Array([1, 2, 3])).lguest, false);
  assertEquals(detectLguestKernel(new Uint8Array(0)).why, "not an ELF vmlinux");
});
