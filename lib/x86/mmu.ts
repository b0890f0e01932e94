/**
 * The MMU: linear-to-physical translation with a soft TLB in the JSLinux manner (SDM Vol. 3A,
 * ch. 4: 32-bit paging with PSE, PAE paging with NX; A/D bits, WP, U/S, global pages). HOT: the
 * read/write accessors are the interpreter's memory fast path: one table load, one compare.
 * Entries hold `physical ^ linear` per 4 KiB page, -1 = miss; separate tables per privilege and
 * access kind. A write entry is filled only for a page already dirty, not holding decoded code
 * and not ROM, so every write that must be seen (A/D, self-modifying code) takes the slow path.
 * PDPTEs are read at walk time rather than cached at CR3 load (a simplification no OS notices).
 */
import type { Cpu } from "./cpu.ts";
import { faultCode, PF_VEC } from "./fault.ts";

export const TLB_ENTRIES = 1 << 20;

const ACC_READ = 0, ACC_WRITE = 1, ACC_EXEC = 2;

const CR0_WP = 0x10000, CR0_PG = 0x80000000 | 0;
const CR4_PSE = 0x10, CR4_PAE = 0x20, CR4_PGE = 0x80;
const EFER_NXE = 0x800;

/** Physical address of a RAM byte given a physical address that may be outside RAM (-1 if not RAM). */
function ramOrMinus(cpu: Cpu, phys: number): number {
  return phys >= 0 && phys < cpu.ramSize ? phys : -1;
}

function readPhys32(cpu: Cpu, phys: number): number {
  if (phys >= 0 && phys + 4 <= cpu.ramSize) return cpu.ram32[phys >>> 2];
  return cpu.mmio.read(phys >>> 0, 4) | 0;
}

function writePhys32(cpu: Cpu, phys: number, v: number): void {
  if (phys >= 0 && phys + 4 <= cpu.ramSize) {
    const page = phys >>> 12;
    if ((cpu.pageFlags[page] & 1) !== 0) invalidateCodePage(cpu, page);
    cpu.ram32[phys >>> 2] = v;
  } else cpu.mmio.write(phys >>> 0, 4, v);
}

/**
 * Walks the page tables for `linear` and returns the physical address, setting A/D bits and
 * filling the TLB for this access kind; raises #PF (with CR2 and the error code) on a violation.
 * `user` is the privilege of the access (CPL 3), not always the CPU's (descriptor-table reads are
 * supervisor accesses).
 */
export function translate(cpu: Cpu, linear: number, kind: number, user: boolean): number {
  const st = cpu.st;
  const cr0 = st[1];
  let phys: number, writable: boolean, usr: boolean, global = false, nx = false;
  if ((cr0 & CR0_PG) === 0) {
    phys = linear;
    writable = true;
    usr = true;
  } else {
    const cr4 = st[4];
    const isWrite = kind === ACC_WRITE;
    if ((cr4 & CR4_PAE) === 0) {
      const pdeAddr = (st[3] & ~0xFFF) + ((linear >>> 22) << 2);
      const pde = readPhys32(cpu, pdeAddr);
      if ((pde & 1) === 0) pageFault(cpu, linear, kind, user, 0);
      if ((pde & 0x80) !== 0 && (cr4 & CR4_PSE) !== 0) {
        writable = (pde & 2) !== 0;
        usr = (pde & 4) !== 0;
        checkAccess(cpu, linear, kind, user, writable, usr, false);
        const want = pde | 0x20 | (isWrite ? 0x40 : 0);
        if (want !== pde) writePhys32(cpu, pdeAddr, want);
        phys = (pde & 0xFFC00000) | (linear & 0x3FF000);
        global = (pde & 0x100) !== 0;
        if (!isWrite && (pde & 0x40) === 0) writable = false; // not dirty yet: no write entry
      } else {
        const pteAddr = (pde & ~0xFFF) + (((linear >>> 12) & 0x3FF) << 2);
        const pte = readPhys32(cpu, pteAddr);
        if ((pte & 1) === 0) pageFault(cpu, linear, kind, user, 0);
        writable = (pde & pte & 2) !== 0;
        usr = (pde & pte & 4) !== 0;
        checkAccess(cpu, linear, kind, user, writable, usr, false);
        if ((pde & 0x20) === 0) writePhys32(cpu, pdeAddr, pde | 0x20);
        const want = pte | 0x20 | (isWrite ? 0x40 : 0);
        if (want !== pte) writePhys32(cpu, pteAddr, want);
        phys = pte & ~0xFFF;
        global = (pte & 0x100) !== 0;
        if (!isWrite && (pte & 0x40) === 0) writable = false;
      }
    } else {
      const nxe = (st[13] & EFER_NXE) !== 0;
      const pdpteAddr = (st[3] & ~0x1F) + ((linear >>> 30) << 3);
      const pdpte = readPhys32(cpu, pdpteAddr);
      if ((pdpte & 1) === 0) pageFault(cpu, linear, kind, user, 0);
      const pdeAddr = (pdpte & ~0xFFF) + (((linear >>> 21) & 0x1FF) << 3);
      const pde = readPhys32(cpu, pdeAddr);
      const pdeHi = readPhys32(cpu, pdeAddr + 4);
      if ((pde & 1) === 0) pageFault(cpu, linear, kind, user, 0);
      if (pdeHi < 0 && !nxe) pageFault(cpu, linear, kind, user, 9); // reserved bit 63
      if ((pde & 0x80) !== 0) {
        writable = (pde & 2) !== 0;
        usr = (pde & 4) !== 0;
        nx = pdeHi < 0;
        checkAccess(cpu, linear, kind, user, writable, usr, nx);
        const want = pde | 0x20 | (isWrite ? 0x40 : 0);
        if (want !== pde) writePhys32(cpu, pdeAddr, want);
        phys = (pdeHi & 0xF) !== 0 ? -1 : (pde & 0xFFE00000) | (linear & 0x1FF000);
        global = (pde & 0x100) !== 0;
        if (!isWrite && (pde & 0x40) === 0) writable = false;
      } else {
        const pteAddr = (pde & ~0xFFF) + (((linear >>> 12) & 0x1FF) << 3);
        const pte = readPhys32(cpu, pteAddr);
        const pteHi = readPhys32(cpu, pteAddr + 4);
        if ((pte & 1) === 0) pageFault(cpu, linear, kind, user, 0);
        if (pteHi < 0 && !nxe) pageFault(cpu, linear, kind, user, 9);
        writable = (pde & pte & 2) !== 0;
        usr = (pde & pte & 4) !== 0;
        nx = pdeHi < 0 || pteHi < 0;
        checkAccess(cpu, linear, kind, user, writable, usr, nx);
        if ((pde & 0x20) === 0) writePhys32(cpu, pdeAddr, pde | 0x20);
        const want = pte | 0x20 | (isWrite ? 0x40 : 0);
        if (want !== pte) writePhys32(cpu, pteAddr, want);
        phys = (pteHi & 0xF) !== 0 ? -1 : pte & ~0xFFF;
        global = (pte & 0x100) !== 0;
        if (!isWrite && (pte & 0x40) === 0) writable = false;
      }
    }
    if ((cr4 & CR4_PGE) === 0) global = false;
    // Supervisor writes to read-only pages are allowed when CR0.WP = 0: fill as writable then.
    if (!user && (cr0 & CR0_WP) === 0 && kind === ACC_WRITE) writable = true;
    phys = phys === -1 ? -1 : (phys & ~0xFFF) | (linear & 0xFFF);
  }
  if (phys !== -1 && ramOrMinus(cpu, phys & ~0xFFF) !== -1) {
    fillTlb(cpu, linear, phys, kind, user, writable, global);
  }
  return phys;
}

function checkAccess(
  cpu: Cpu,
  linear: number,
  kind: number,
  user: boolean,
  writable: boolean,
  usr: boolean,
  nx: boolean,
): void {
  if (user && !usr) pageFault(cpu, linear, kind, user, 1);
  if (kind === ACC_WRITE && !writable && (user || (cpu.st[1] & CR0_WP) !== 0)) {
    pageFault(cpu, linear, kind, user, 1);
  }
  if (kind === ACC_EXEC && nx) pageFault(cpu, linear, kind, user, 1);
}

function pageFault(cpu: Cpu, linear: number, kind: number, user: boolean, present: number): never {
  cpu.st[2] = linear; // CR2
  let code = present | (kind === ACC_WRITE ? 2 : 0) | (user ? 4 : 0);
  if (kind === ACC_EXEC && (cpu.st[13] & EFER_NXE) !== 0 && (cpu.st[4] & CR4_PAE) !== 0) code |= 0x10;
  return faultCode(PF_VEC, code);
}

function fillTlb(
  cpu: Cpu,
  linear: number,
  phys: number,
  kind: number,
  user: boolean,
  writable: boolean,
  global: boolean,
): void {
  const page = linear >>> 12;
  const ppage = phys >>> 12;
  const entry = (phys ^ linear) & ~0xFFF;
  if (kind === ACC_WRITE) {
    if (!writable || (cpu.pageFlags[ppage] & 3) !== 0) return;
    (user ? cpu.tlbUW : cpu.tlbKW)[page] = entry;
  } else if (kind === ACC_READ) {
    (user ? cpu.tlbUR : cpu.tlbKR)[page] = entry;
  } else {
    (user ? cpu.tlbUX : cpu.tlbKX)[page] = entry;
  }
  if (cpu.tlbFilledCount >= cpu.tlbFilled.length) flushTlb(cpu, false);
  cpu.tlbFilled[cpu.tlbFilledCount++] = page | (global ? 1 << 20 : 0);
}

/** Empties the TLB; with `keepGlobal`, entries of global pages survive (a CR3 load with CR4.PGE). */
export function flushTlb(cpu: Cpu, keepGlobal: boolean): void {
  const list = cpu.tlbFilled;
  const n = cpu.tlbFilledCount;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const e = list[i];
    if (keepGlobal && (e & (1 << 20)) !== 0) {
      list[kept++] = e;
      continue;
    }
    const p = e & 0xFFFFF;
    cpu.tlbKR[p] = -1;
    cpu.tlbKW[p] = -1;
    cpu.tlbKX[p] = -1;
    cpu.tlbUR[p] = -1;
    cpu.tlbUW[p] = -1;
    cpu.tlbUX[p] = -1;
  }
  cpu.tlbFilledCount = kept;
}

/** INVLPG: forgets one linear page, global or not. */
export function invalidatePage(cpu: Cpu, linear: number): void {
  const p = linear >>> 12;
  cpu.tlbKR[p] = -1;
  cpu.tlbKW[p] = -1;
  cpu.tlbKX[p] = -1;
  cpu.tlbUR[p] = -1;
  cpu.tlbUW[p] = -1;
  cpu.tlbUX[p] = -1;
}

/** Marks a physical page as holding decoded code: its write entries go, so writes are seen. */
export function markCodePage(cpu: Cpu, ppage: number): void {
  if ((cpu.pageFlags[ppage] & 1) !== 0) return;
  cpu.pageFlags[ppage] |= 1;
  const list = cpu.tlbFilled, n = cpu.tlbFilledCount;
  for (let i = 0; i < n; i++) {
    const p = list[i] & 0xFFFFF;
    const kw = cpu.tlbKW[p];
    if (kw !== -1 && ((kw ^ (p << 12)) >>> 12) === ppage) cpu.tlbKW[p] = -1;
    const uw = cpu.tlbUW[p];
    if (uw !== -1 && ((uw ^ (p << 12)) >>> 12) === ppage) cpu.tlbUW[p] = -1;
  }
}

/** A page holding decoded code was written: forget its instructions. */
export function invalidateCodePage(cpu: Cpu, ppage: number): void {
  cpu.pageFlags[ppage] &= ~1;
  cpu.decoded.invalidatePage(ppage);
  cpu.jit.codeInvalidated(); // a translated unit running now stops after the storing instruction
}

// ---- Linear-address accessors (the fast path) ----

/** Translates for the slow path; returns a physical address (may be outside RAM). */
function slowPhys(cpu: Cpu, linear: number, kind: number): number {
  return translate(cpu, linear, kind, cpu.st[9] === 3);
}

export function read8(cpu: Cpu, lin: number): number {
  const e = cpu.tlbR[lin >>> 12];
  if (e !== -1) return cpu.ram8[e ^ lin];
  return readSlow(cpu, lin, 1);
}

export function read16(cpu: Cpu, lin: number): number {
  const e = cpu.tlbR[lin >>> 12];
  if (e !== -1 && (lin & 0xFFF) !== 0xFFF) {
    const p = e ^ lin;
    return (p & 1) === 0 ? cpu.ram16[p >>> 1] : cpu.ram8[p] | (cpu.ram8[p + 1] << 8);
  }
  return readSlow(cpu, lin, 2);
}

export function read32(cpu: Cpu, lin: number): number {
  const e = cpu.tlbR[lin >>> 12];
  if (e !== -1 && (lin & 0xFFF) <= 0xFFC) {
    const p = e ^ lin;
    return (p & 3) === 0 ? cpu.ram32[p >>> 2] : cpu.ramView.getInt32(p, true);
  }
  return readSlow(cpu, lin, 4);
}

export function write8(cpu: Cpu, lin: number, v: number): void {
  const e = cpu.tlbW[lin >>> 12];
  if (e !== -1) {
    cpu.ram8[e ^ lin] = v;
    return;
  }
  writeSlow(cpu, lin, 1, v);
}

export function write16(cpu: Cpu, lin: number, v: number): void {
  const e = cpu.tlbW[lin >>> 12];
  if (e !== -1 && (lin & 0xFFF) !== 0xFFF) {
    const p = e ^ lin;
    if ((p & 1) === 0) cpu.ram16[p >>> 1] = v;
    else {
      cpu.ram8[p] = v;
      cpu.ram8[p + 1] = v >> 8;
    }
    return;
  }
  writeSlow(cpu, lin, 2, v);
}

export function write32(cpu: Cpu, lin: number, v: number): void {
  const e = cpu.tlbW[lin >>> 12];
  if (e !== -1 && (lin & 0xFFF) <= 0xFFC) {
    const p = e ^ lin;
    if ((p & 3) === 0) cpu.ram32[p >>> 2] = v;
    else cpu.ramView.setInt32(p, v, true);
    return;
  }
  writeSlow(cpu, lin, 4, v);
}

/** Checks that `size` bytes at `lin` are writable (faulting now, before any state changes). */
export function probeWrite(cpu: Cpu, lin: number, size: number): void {
  if (cpu.tlbW[lin >>> 12] === -1) slowPhys(cpu, lin, ACC_WRITE);
  const last = (lin + size - 1) | 0;
  if (((last ^ lin) >>> 12) !== 0 && cpu.tlbW[last >>> 12] === -1) slowPhys(cpu, last, ACC_WRITE);
}

function readPhysSized(cpu: Cpu, phys: number, size: number): number {
  if (phys >= 0 && phys + size <= cpu.ramSize) {
    if (size === 1) return cpu.ram8[phys];
    if (size === 2) return cpu.ramView.getUint16(phys, true);
    return cpu.ramView.getInt32(phys, true);
  }
  if (phys === -1) return size === 4 ? -1 : (1 << (size * 8)) - 1;
  const v = cpu.mmio.read(phys >>> 0, size);
  return size === 4 ? v | 0 : v;
}

function writePhysSized(cpu: Cpu, phys: number, size: number, v: number): void {
  if (phys >= 0 && phys + size <= cpu.ramSize) {
    const page = phys >>> 12;
    const f = cpu.pageFlags[page];
    if (f !== 0) {
      if ((f & 2) !== 0) return; // ROM
      invalidateCodePage(cpu, page);
    }
    if (size === 1) cpu.ram8[phys] = v;
    else if (size === 2) cpu.ramView.setUint16(phys, v, true);
    else cpu.ramView.setInt32(phys, v, true);
    return;
  }
  if (phys !== -1) cpu.mmio.write(phys >>> 0, size, size === 4 ? v >>> 0 : v & ((1 << (size * 8)) - 1));
}

/** Slow read: TLB miss, page-crossing access or MMIO. */
export function readSlow(cpu: Cpu, lin: number, size: number): number {
  if (((lin & 0xFFF) + size) > 0x1000) {
    let v = 0;
    for (let i = 0; i < size; i++) v |= read8(cpu, (lin + i) | 0) << (i * 8);
    return size === 4 ? v | 0 : v;
  }
  return readPhysSized(cpu, slowPhys(cpu, lin, ACC_READ), size);
}

/** Slow write: TLB miss, clean page, code page, ROM, page-crossing access or MMIO. */
export function writeSlow(cpu: Cpu, lin: number, size: number, v: number): void {
  if (((lin & 0xFFF) + size) > 0x1000) {
    // Both pages must be writable before either byte changes.
    const hi = (lin + size - 1) | 0;
    slowPhys(cpu, lin, ACC_WRITE);
    slowPhys(cpu, hi, ACC_WRITE);
    for (let i = 0; i < size; i++) write8(cpu, (lin + i) | 0, v >> (i * 8));
    return;
  }
  writePhysSized(cpu, slowPhys(cpu, lin, ACC_WRITE), size, v);
}

/** Supervisor-privilege accessors for descriptor tables, the TSS and interrupt stacks at CPL 3. */
export function readSys(cpu: Cpu, lin: number, size: number): number {
  const w = cpu.sysWindow;
  if (w !== null && ((lin - cpu.sysWindowBase) >>> 0) <= w.byteLength - size) {
    const off = (lin - cpu.sysWindowBase) >>> 0;
    return size === 1 ? w.getUint8(off) : size === 2 ? w.getUint16(off, true) : w.getInt32(off, true);
  }
  if (((lin & 0xFFF) + size) > 0x1000) {
    let v = 0;
    for (let i = 0; i < size; i++) v |= readSys(cpu, (lin + i) | 0, 1) << (i * 8);
    return size === 4 ? v | 0 : v;
  }
  return readPhysSized(cpu, translate(cpu, lin, ACC_READ, false), size);
}

export function writeSys(cpu: Cpu, lin: number, size: number, v: number): void {
  const w = cpu.sysWindow;
  if (w !== null && ((lin - cpu.sysWindowBase) >>> 0) <= w.byteLength - size) {
    const off = (lin - cpu.sysWindowBase) >>> 0;
    if (size === 1) w.setUint8(off, v);
    else if (size === 2) w.setUint16(off, v, true);
    else w.setInt32(off, v, true);
    return;
  }
  if (((lin & 0xFFF) + size) > 0x1000) {
    for (let i = 0; i < size; i++) writeSys(cpu, (lin + i) | 0, 1, v >> (i * 8));
    return;
  }
  writePhysSized(cpu, translate(cpu, lin, ACC_WRITE, false), size, v);
}

/** Instruction fetch of one byte (decoder only; the hot loop fetches predecoded slots). */
export function fetch8(cpu: Cpu, lin: number): number {
  const e = cpu.tlbX[lin >>> 12];
  if (e !== -1) return cpu.ram8[e ^ lin];
  const phys = slowPhys(cpu, lin, ACC_EXEC);
  return readPhysSized(cpu, phys, 1);
}

/** Translates an instruction-fetch address to physical (filling the exec TLB). */
export function translateExec(cpu: Cpu, lin: number): number {
  const e = cpu.tlbX[lin >>> 12];
  if (e !== -1) return e ^ lin;
  return slowPhys(cpu, lin, ACC_EXEC);
}
