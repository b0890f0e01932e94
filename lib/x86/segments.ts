/**
 * Segmentation (SDM Vol. 3A, ch. 3 and 5): descriptor fetch from the GDT/LDT, segment-register
 * loads with their protection checks, the descriptor cache, and the limit and type checks of data
 * accesses (5.3, 5.5). Those cost nothing for flat segments: whether a segment needs them is
 * decided when it is loaded (Cpu.segCheck), and only ModRM/moffs operands (their size and
 * direction come from the decoder), stack pushes and pops and string instructions are checked.
 */
import { type Cpu, CS, DS, ES, FS, GS, LDTR, SS, ST_CPL, ST_GDT_BASE, ST_GDT_LIMIT, TR } from "./cpu.ts";
import { faultCode, GP, NP, SS_VEC } from "./fault.ts";
import { CC_FLAGS } from "./lazy_flags.ts";
import { readSys, writeSys } from "./mmu.ts";

const VM = 0x20000;

/** Scratch for the last descriptor read: low and high dwords. */
export const DESC = new Int32Array(2);

/** Reads the descriptor for `sel` into DESC; raises #GP(sel) if it lies beyond the table limit. */
export function readDescriptor(cpu: Cpu, sel: number, vector = GP): void {
  const index = sel & ~7;
  let base: number, limit: number;
  if ((sel & 4) !== 0) {
    base = cpu.segBase[LDTR];
    limit = cpu.segLimit[LDTR];
    if ((cpu.segSel[LDTR] & ~3) === 0) faultCode(vector, sel & ~3);
  } else {
    base = cpu.st[ST_GDT_BASE];
    limit = cpu.st[ST_GDT_LIMIT];
  }
  if (index + 7 > (limit >>> 0)) faultCode(vector, sel & ~3);
  DESC[0] = readSys(cpu, (base + index) | 0, 4);
  DESC[1] = readSys(cpu, (base + index + 4) | 0, 4);
}

/** Descriptor fields from DESC. */
export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF000000)) | 0;
}
export function descLimit(lo: number, hi: number): number {
  const l = (lo & 0xFFFF) | (hi & 0xF0000);
  return (hi & 0x800000) !== 0 ? ((l << 12) | 0xFFF) | 0 : l;
}
export function descAttr(hi: number): number {
  return (hi >>> 8) & 0xF0FF;
}

/** Sets the accessed bit of the descriptor just read (hardware writes it back). */
function setAccessed(cpu: Cpu, sel: number): void {
  if ((DESC[1] & 0x100) !== 0) return;
  DESC[1] |= 0x100;
  const base = (sel & 4) !== 0 ? cpu.segBase[LDTR] : cpu.st[ST_GDT_BASE];
  writeSys(cpu, (base + (sel & ~7) + 4) | 0, 4, DESC[1]);
}

/** Recomputes Cpu.segCheck[seg] from the descriptor cache (call after changing it). */
export function updateSegmentCheck(cpu: Cpu, seg: number): void {
  // Flat: base 0, limit 4 GiB, present writable expand-up data (P, S, type 001x).
  const flat = cpu.segBase[seg] === 0 && cpu.segLimit[seg] === -1 && (cpu.segAttr[seg] & 0x9E) === 0x92;
  cpu.segCheck[seg] = flat ? 0 : 1;
}

/**
 * Checks a data access of `macc` (bytes | MACC_WRITE, see opcode_table.ts) at `offset` in segment
 * `seg` against its limit and type: #SS(0) through SS, #GP(0) otherwise (SDM Vol. 3A 5.3 and 5.5;
 * expand-down segments allow offsets above the limit up to 64 KiB or 4 GiB by the B bit). Real and
 * virtual-8086 mode check only the limit.
 */
export function checkSegmentAccess(cpu: Cpu, seg: number, offset: number, macc: number): void {
  const bytes = macc & 0x7F;
  if (bytes === 0) return;
  const vector = seg === SS ? SS_VEC : GP;
  const attr = cpu.segAttr[seg], limit = cpu.segLimit[seg] >>> 0;
  const first = offset >>> 0, last = first + bytes - 1;
  if ((cpu.st[1] & 1) !== 0 && (cpu.cc[CC_FLAGS] & 0x20000) === 0) {
    if ((attr & 0x90) !== 0x90) faultCode(vector, 0); // a null (unusable) segment
    const type = attr & 0xF;
    if ((macc & 0x80) !== 0) {
      if ((type & 0xA) !== 0x2) faultCode(vector, 0); // code, or read-only data
    } else if ((type & 0xA) === 0x8) faultCode(vector, 0); // execute-only code
    if ((type & 0xC) === 0x4) {
      if (first <= limit || last > ((attr & 0x4000) !== 0 ? 0xFFFFFFFF : 0xFFFF)) faultCode(vector, 0);
      return;
    }
  }
  if (last > limit) faultCode(vector, 0);
}

/** Loads a segment register's cache from DESC (the descriptor of `sel`). */
export function loadCache(cpu: Cpu, seg: number, sel: number): void {
  // Any load of a code or data segment, CS and SS by far transfers and interrupts included,
  // sets the descriptor's accessed bit (SDM Vol. 3A, 3.4.5.1). Not for LDTR/TR: system types.
  if (seg <= GS && (DESC[1] & 0x1100) === 0x1000) setAccessed(cpu, sel);
  const lo = DESC[0], hi = DESC[1];
  cpu.segSel[seg] = sel;
  cpu.segBase[seg] = descBase(lo, hi);
  cpu.segLimit[seg] = descLimit(lo, hi);
  cpu.segAttr[seg] = descAttr(hi);
  if (seg === CS) cpu.code32 = (hi & 0x400000) !== 0;
  else if (seg === SS) cpu.ss32 = (hi & 0x400000) !== 0;
  updateSegmentCheck(cpu, seg);
}

/** Real-mode (and VM86-less) segment load: base = selector * 16, cache attributes kept. */
export function loadSegmentReal(cpu: Cpu, seg: number, sel: number): void {
  sel &= 0xFFFF;
  cpu.segSel[seg] = sel;
  cpu.segBase[seg] = sel << 4;
  if (seg === CS) {
    // A far transfer in real mode leaves a 16-bit, present, writable-code cache.
    cpu.segLimit[CS] = 0xFFFF;
    cpu.code32 = false;
  }
  updateSegmentCheck(cpu, seg);
}

/**
 * MOV/POP Sreg, LDS/LES/LFS/LGS/LSS: loads a data or stack segment register with the
 * protection checks of SDM Vol. 2 "MOV—Move" (protected mode).
 */
export function loadSegment(cpu: Cpu, seg: number, sel: number): void {
  sel &= 0xFFFF;
  if ((cpu.st[1] & 1) === 0 || (cpu.cc[CC_FLAGS] & VM) !== 0) {
    // Real mode, or virtual-8086 mode (whose caches already hold VM86's fixed attributes).
    loadSegmentReal(cpu, seg, sel);
    return;
  }
  const cpl = cpu.st[ST_CPL];
  if ((sel & ~3) === 0) {
    if (seg === SS) faultCode(GP, 0);
    // A null selector: usable as long as nothing accesses memory through it.
    cpu.segSel[seg] = sel;
    cpu.segBase[seg] = 0;
    cpu.segLimit[seg] = 0;
    cpu.segAttr[seg] = 0;
    cpu.segCheck[seg] = 1;
    return;
  }
  readDescriptor(cpu, sel);
  const hi = DESC[1];
  const type = (hi >>> 8) & 0xF, s = (hi >>> 12) & 1, dpl = (hi >>> 13) & 3, p = (hi >>> 15) & 1;
  const rpl = sel & 3;
  if (seg === SS) {
    // Writable data segment with RPL = DPL = CPL.
    if (s === 0 || (type & 8) !== 0 || (type & 2) === 0 || rpl !== cpl || dpl !== cpl) {
      faultCode(GP, sel & ~3);
    }
    if (p === 0) faultCode(SS_VEC, sel & ~3);
  } else {
    // Data, or readable code; privilege checked unless conforming code.
    if (s === 0 || ((type & 8) !== 0 && (type & 2) === 0)) faultCode(GP, sel & ~3);
    const conforming = (type & 0xC) === 0xC;
    if (!conforming && (dpl < cpl || dpl < rpl)) faultCode(GP, sel & ~3);
    if (p === 0) faultCode(NP, sel & ~3);
  }
  setAccessed(cpu, sel);
  loadCache(cpu, seg, sel);
}

/**
 * After a return to an outer privilege level: data segment registers whose DPL is below the new
 * CPL (and not conforming code) are nulled (SDM RET/IRET "return to outer privilege level").
 */
export function nullInaccessibleSegments(cpu: Cpu): void {
  const cpl = cpu.st[ST_CPL];
  for (const seg of [ES, DS, FS, GS]) {
    const a = cpu.segAttr[seg];
    const dpl = (a >> 5) & 3;
    const conformingCode = (a & 0x1C) === 0x1C;
    if ((a & 0x10) !== 0 && !conformingCode && dpl < cpl) {
      cpu.segSel[seg] = 0;
      cpu.segAttr[seg] = 0;
      cpu.segBase[seg] = 0;
      cpu.segLimit[seg] = 0;
      cpu.segCheck[seg] = 1;
    }
  }
}

/** LLDT. */
export function loadLdt(cpu: Cpu, sel: number): void {
  sel &= 0xFFFF;
  if ((sel & ~3) === 0) {
    cpu.segSel[LDTR] = 0;
    cpu.segBase[LDTR] = 0;
    cpu.segLimit[LDTR] = 0;
    return;
  }
  if ((sel & 4) !== 0) faultCode(GP, sel & ~3);
  readDescriptor(cpu, sel);
  const hi = DESC[1];
  if (((hi >>> 8) & 0x1F) !== 2) faultCode(GP, sel & ~3);
  if ((hi & 0x8000) === 0) faultCode(NP, sel & ~3);
  loadCache(cpu, LDTR, sel);
}

/** LTR: loads the task register and marks the TSS busy. */
export function loadTr(cpu: Cpu, sel: number): void {
  sel &= 0xFFFF;
  if ((sel & ~3) === 0 || (sel & 4) !== 0) faultCode(GP, sel & ~3);
  readDescriptor(cpu, sel);
  const hi = DESC[1];
  const type = (hi >>> 8) & 0x1F;
  if (type !== 1 && type !== 9) faultCode(GP, sel & ~3); // available 16/32-bit TSS
  if ((hi & 0x8000) === 0) faultCode(NP, sel & ~3);
  DESC[1] = hi | 0x200; // busy
  writeSys(cpu, (cpu.st[ST_GDT_BASE] + (sel & ~7) + 4) | 0, 4, DESC[1]);
  loadCache(cpu, TR, sel);
}

/** Segment registers ES..GS that a far transfer must check. */
export const DATA_SEGS = [ES, DS, FS, GS] as const;
