/**
 * Is this kernel an lguest Guest, and a PAE one? Looked up in the ELF vmlinux (a bzImage's payload
 * after host-side decompression is one too, stripped of symbols): first the symbol table
 * (`lguest_entry`, and `initial_pg_pmd`, which head_32.S defines only with PAE); failing that, the
 * code of lguest_entry itself, LHCALL_LGUEST_INIT then LHCALL_NEW_PGTABLE through `int $0x1F`, whose
 * second operand is initial_page_table: with PAE that is a statically filled page-directory-pointer
 * table (entry 0 present, the others present or empty, high halves zero), without PAE a zeroed bss page.
 */

export interface LguestKernelInfo {
  lguest: boolean;
  pae: boolean;
  /** How it was decided, for --verbose. */
  why: string;
}

const NOT_LGUEST: LguestKernelInfo = { lguest: false, pae: false, why: "" };

interface Segment {
  offset: number;
  paddr: number;
  filesz: number;
}

/** Examines an ELF32 vmlinux image; anything else is "not lguest". */
export function detectLguestKernel(elf: Uint8Array): LguestKernelInfo {
  if (elf.length < 52 || elf[0] !== 0x7F || elf[1] !== 0x45 || elf[2] !== 0x4C || elf[3] !== 0x46) {
    return { ...NOT_LGUEST, why: "not an ELF vmlinux" };
  }
  if (elf[4] !== 1 || elf[5] !== 1) return { ...NOT_LGUEST, why: "not a 32-bit little-endian ELF" };
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const u16 = (o: number) => o + 2 <= elf.length ? view.getUint16(o, true) : 0;
  const u32 = (o: number) => o + 4 <= elf.length ? view.getUint32(o, true) : 0;
  const symbols = elfSymbols(elf, u16, u32);
  if (symbols !== null && symbols.has("lguest_entry")) {
    return {
      lguest: true,
      pae: symbols.has("initial_pg_pmd"),
      why: `its symbol table has lguest_entry${
        symbols.has("initial_pg_pmd") ? " and initial_pg_pmd (PAE)" : ""
      }`,
    };
  }
  if (symbols !== null && symbols.has(SYMTAB_MARKER)) {
    return { ...NOT_LGUEST, why: "its symbol table has no lguest_entry (no CONFIG_LGUEST_GUEST)" };
  }
  const segments: Segment[] = [];
  const phoff = u32(28), phentsize = u16(42), phnum = u16(44);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (u32(ph) !== 1) continue;
    segments.push({ offset: u32(ph + 4), paddr: u32(ph + 12), filesz: u32(ph + 16) });
  }
  const pageTable = findLguestEntry(elf, view);
  if (pageTable === -1) return { ...NOT_LGUEST, why: "no lguest_entry code (LHCALL_LGUEST_INIT) in it" };
  let pae = false;
  for (const s of segments) {
    if (pageTable >= s.paddr && pageTable + 32 <= s.paddr + s.filesz) {
      const at = s.offset + pageTable - s.paddr;
      // Entry 0 (the low identity map) is always present; with a 3G/1G split (KPMDS == 1) entries 1
      // and 2 are empty (0,0), so an entry is either empty or present with no other attributes.
      pae = (u32(at) & 0xFFF) === 1;
      for (let i = 0; i < 4; i++) {
        const lo = u32(at + i * 8), hi = u32(at + i * 8 + 4);
        if (hi !== 0 || (lo !== 0 && (lo & 0xFFF) !== 1)) pae = false;
      }
    }
  }
  return {
    lguest: true,
    pae,
    why: `it contains lguest_entry's LHCALL_LGUEST_INIT code; initial_page_table at 0x${
      pageTable.toString(16)
    } is ${pae ? "a PAE page-directory-pointer table" : "not a PAE table"}`,
  };
}

/**
 * `mov $1,%eax; mov $X,%ebx; int $0x1f; mov $4,%eax; mov $Y,%ebx; int $0x1f`: returns Y (the
 * physical address of initial_page_table), or -1.
 */
function findLguestEntry(elf: Uint8Array, view: DataView): number {
  for (let at = elf.indexOf(0xB8); at !== -1 && at + 24 <= elf.length; at = elf.indexOf(0xB8, at + 1)) {
    if (view.getUint32(at + 1, true) !== 1 || elf[at + 5] !== 0xBB) continue;
    if (elf[at + 10] !== 0xCD || elf[at + 11] !== 0x1F) continue;
    if (elf[at + 12] !== 0xB8 || view.getUint32(at + 13, true) !== 4 || elf[at + 17] !== 0xBB) continue;
    if (elf[at + 22] !== 0xCD || elf[at + 23] !== 0x1F) continue;
    return view.getUint32(at + 18, true);
  }
  return -1;
}

const SYMTAB_MARKER = "";

/** The names in the ELF's .symtab that detection uses (plus SYMTAB_MARKER), or null without one. */
function elfSymbols(
  elf: Uint8Array,
  u16: (o: number) => number,
  u32: (o: number) => number,
): Set<string> | null {
  const shoff = u32(32), shentsize = u16(46), shnum = u16(48);
  if (shoff === 0 || shentsize < 40 || shoff + shnum * shentsize > elf.length) return null;
  for (let i = 0; i < shnum; i++) {
    const sh = shoff + i * shentsize;
    if (u32(sh + 4) !== 2) continue; // SHT_SYMTAB
    const off = u32(sh + 16), size = u32(sh + 20), link = u32(sh + 24), entsize = u32(sh + 36) || 16;
    if (link >= shnum || off + size > elf.length) return null;
    const str = shoff + link * shentsize;
    const strOff = u32(str + 16), strSize = u32(str + 20);
    if (strOff + strSize > elf.length) return null;
    // Only the names that matter are kept; SYMTAB_MARKER records that the table had any at all.
    const names = new Set<string>();
    const decoder = new TextDecoder("latin1");
    for (let s = off; s + entsize <= off + size; s += entsize) {
      const nameOff = u32(s);
      if (nameOff === 0 || nameOff >= strSize) continue;
      const start = strOff + nameOff;
      let end = start;
      while (end < strOff + strSize && elf[end] !== 0) end++;
      const name = decoder.decode(elf.subarray(start, end));
      if (name === "lguest_entry" || name === "initial_pg_pmd") names.add(name);
      names.add(SYMTAB_MARKER);
    }
    return names;
  }
  return null;
}
