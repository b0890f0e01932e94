/**
 * Hardware task switching (SDM Vol. 3A, ch. 7): JMP/CALL far to a TSS descriptor or a task gate,
 * task gates in the IDT, and IRET with EFLAGS.NT (the return along the back link), for 16- and
 * 32-bit TSSs. Up to the commit point (the TR load) every fault leaves the old task untouched:
 * the new TSS is read and the old one write-probed first. After it, the new task's LDT and
 * segments are loaded and checked, and a fault there is delivered in the new task's context.
 * Not implemented: the TSS's debug-trap (T) bit.
 */
import {
  type Cpu,
  CR0_PG,
  CR0_TS,
  CR4_PGE,
  CS,
  DS,
  ES,
  FS,
  GS,
  LDTR,
  SS,
  ST_CPL,
  ST_CR0,
  ST_CR3,
  ST_CR4,
  ST_EIP,
  ST_GDT_BASE,
  ST_GDT_LIMIT,
  TR,
} from "./cpu.ts";
import { FAULT, faultCode, GP, NP, SS_VEC, TS_VEC } from "./fault.ts";
import { CC_EFLAGS, CC_FLAGS, CC_OP, materialize } from "./lazy_flags.ts";
import { flushTlb, readSys, translate, writeSys } from "./mmu.ts";
import { push16, push32 } from "./ops/stack.ts";
import { DESC, descBase, descLimit, loadCache, readDescriptor } from "./segments.ts";
import { loadSegmentVm86, VM } from "./vm86.ts";

/** What starts a task switch: the busy-bit, back-link and NT rules differ (SDM 7.3, Table 7-2). */
export const TASK_JMP = 0, TASK_CALL = 1, TASK_IRET = 2, TASK_INT = 3;

const NT = 0x4000;
const BUSY = 0x200; // in the descriptor's high dword: type 1/9 (available) <-> 3/0xB (busy)
const ACC_WRITE = 1;

/** The new task's state, read from its TSS before anything changes. */
const NEW = new Int32Array(20);
const N_EIP = 0, N_EFLAGS = 1, N_REGS = 2, N_SEGS = 10, N_LDT = 16, N_CR3 = 17;
/** Segment registers in TSS order: ES CS SS DS FS GS. */
const TSS_SEGS = [ES, CS, SS, DS, FS, GS];

/**
 * JMP/CALL far whose selector names a system descriptor (in DESC): a TSS or a task gate. Checks
 * the privilege, type and presence as SDM Vol. 2 JMP/CALL "TASK-GATE" / "TASK-STATE-SEGMENT"
 * say, then switches. `nextEip` is the EIP saved in the old task. Returns false when the
 * descriptor is neither (the caller raises its own #GP).
 */
export function farTaskTransfer(cpu: Cpu, sel: number, reason: number, nextEip: number): boolean {
  const hi = DESC[1];
  const type = (hi >>> 8) & 0x1F;
  const dpl = (hi >>> 13) & 3, cpl = cpu.st[ST_CPL];
  let tss = sel;
  if (type === 5) {
    if (dpl < cpl || dpl < (sel & 3)) faultCode(GP, sel & ~3);
    if ((hi & 0x8000) === 0) faultCode(NP, sel & ~3);
    tss = DESC[0] >>> 16;
    if ((tss & 4) !== 0) faultCode(GP, tss & ~3);
    readDescriptor(cpu, tss, GP);
    const t = (DESC[1] >>> 8) & 0x1F;
    if (t !== 1 && t !== 9) faultCode(GP, tss & ~3);
  } else if (type === 1 || type === 9 || type === 3 || type === 0xB) {
    // TSS descriptors live only in the GDT (SDM 7.2.2); a busy one cannot be entered by JMP/CALL.
    if ((sel & 4) !== 0 || dpl < cpl || dpl < (sel & 3) || (type & 2) !== 0) faultCode(GP, sel & ~3);
  } else return false;
  if ((DESC[1] & 0x8000) === 0) faultCode(NP, tss & ~3);
  switchTask(cpu, tss, reason, 0, nextEip);
  checkEip(cpu);
  return true;
}

/**
 * An interrupt or exception through a task gate in the IDT (SDM Vol. 2 INT, "TASK-GATE"): the
 * gate itself was checked by the caller. Switches with nesting and pushes the error code on the
 * new task's stack.
 */
export function interruptTask(
  cpu: Cpu,
  gateLo: number,
  ext: number,
  errorCode: number,
  pushError: boolean,
  returnEip: number,
): void {
  const tss = gateLo >>> 16;
  if ((tss & 4) !== 0 || (tss | 7) > (cpu.st[ST_GDT_LIMIT] >>> 0)) faultCode(GP, (tss & ~3) + ext);
  readDescriptor(cpu, tss, GP);
  const t = (DESC[1] >>> 8) & 0x1F;
  if (t !== 1 && t !== 9) faultCode(GP, (tss & ~3) + ext);
  if ((DESC[1] & 0x8000) === 0) faultCode(NP, (tss & ~3) + ext);
  const new32 = t === 9;
  switchTask(cpu, tss, TASK_INT, ext, returnEip);
  inNewTask(cpu, () => {
    if (pushError) {
      if (new32) push32(cpu, errorCode);
      else push16(cpu, errorCode);
    }
    checkEip(cpu);
  });
  cpu.halted = false;
}

/** IRET with EFLAGS.NT set (SDM Vol. 2 IRET, "TASK-RETURN"): back to the task in the link field. */
export function taskReturn(cpu: Cpu): void {
  const link = readSys(cpu, cpu.segBase[TR], 2);
  if ((link & 4) !== 0) faultCode(TS_VEC, link & ~3);
  readDescriptor(cpu, link, TS_VEC);
  const t = (DESC[1] >>> 8) & 0x1F;
  if (t !== 3 && t !== 0xB) faultCode(TS_VEC, link & ~3);
  if ((DESC[1] & 0x8000) === 0) faultCode(NP, link & ~3);
  switchTask(cpu, link, TASK_IRET, 0, cpu.st[ST_EIP]);
  checkEip(cpu);
}

/** The new task's EIP must lie within its CS limit: #GP(0) in the new task otherwise. */
function checkEip(cpu: Cpu): void {
  if ((cpu.st[ST_EIP] >>> 0) > (cpu.segLimit[CS] >>> 0)) inNewTask(cpu, () => faultCode(GP, 0));
}

/** Runs `f`, marking any fault it raises as belonging to the new task (EIP is already the new one). */
function inNewTask(cpu: Cpu, f: () => void): void {
  try {
    f();
  } catch (e) {
    if (e === FAULT) cpu.faultInNewTask = true;
    throw e;
  }
}

/**
 * The task switch proper (SDM 7.3, steps 3-14) to the TSS `sel` whose descriptor is in DESC
 * (type, presence and busy state already checked by the caller). `oldEip` is saved in the old
 * task; `ext` is the EXT bit of error codes.
 */
export function switchTask(cpu: Cpu, sel: number, reason: number, ext: number, oldEip: number): void {
  const st = cpu.st, regs = cpu.regs;
  const newLo = DESC[0];
  let newHi = DESC[1];
  const new32 = (newHi & 0x800) !== 0;
  const newBase = descBase(newLo, newHi);
  if ((descLimit(newLo, newHi) >>> 0) < (new32 ? 0x67 : 0x2B)) faultCode(TS_VEC, (sel & ~3) + ext);

  // Read the whole new state first: a page fault here changes nothing.
  if (new32) {
    NEW[N_CR3] = readSys(cpu, newBase + 0x1C, 4);
    NEW[N_EIP] = readSys(cpu, newBase + 0x20, 4);
    NEW[N_EFLAGS] = readSys(cpu, newBase + 0x24, 4);
    for (let i = 0; i < 8; i++) NEW[N_REGS + i] = readSys(cpu, newBase + 0x28 + i * 4, 4);
    for (let i = 0; i < 6; i++) NEW[N_SEGS + i] = readSys(cpu, newBase + 0x48 + i * 4, 2);
    NEW[N_LDT] = readSys(cpu, newBase + 0x60, 2);
  } else {
    // A 16-bit TSS has no CR3, FS or GS; the upper halves of the registers read as ones and
    // EFLAGS' upper half as zeros (what Intel hardware leaves, and Bochs and QEMU model).
    NEW[N_CR3] = st[ST_CR3];
    NEW[N_EIP] = readSys(cpu, newBase + 0x0E, 2);
    NEW[N_EFLAGS] = readSys(cpu, newBase + 0x10, 2);
    for (let i = 0; i < 8; i++) NEW[N_REGS + i] = readSys(cpu, newBase + 0x12 + i * 2, 2) | 0xFFFF0000;
    for (let i = 0; i < 4; i++) NEW[N_SEGS + i] = readSys(cpu, newBase + 0x22 + i * 2, 2);
    NEW[N_SEGS + 4] = 0;
    NEW[N_SEGS + 5] = 0;
    NEW[N_LDT] = readSys(cpu, newBase + 0x2A, 2);
  }

  // Every write before the commit point is probed, so none can fault half-way.
  const oldSel = cpu.segSel[TR], oldBase = cpu.segBase[TR];
  const old32 = (cpu.segAttr[TR] & 8) !== 0;
  const gdt = st[ST_GDT_BASE];
  if (old32) probeSys(cpu, oldBase + 0x20, 0x3E);
  else probeSys(cpu, oldBase + 0x0E, 0x1C);
  if (reason === TASK_JMP || reason === TASK_IRET) probeSys(cpu, gdt + (oldSel & ~7) + 4, 4);
  if (reason === TASK_CALL || reason === TASK_INT) probeSys(cpu, newBase, 2);
  if (reason !== TASK_IRET) probeSys(cpu, gdt + (sel & ~7) + 4, 4);

  let flags = materialize(cpu.cc);
  if (reason === TASK_JMP || reason === TASK_IRET) {
    const a = gdt + (oldSel & ~7) + 4;
    writeSys(cpu, a, 4, readSys(cpu, a, 4) & ~BUSY);
  }
  if (reason === TASK_IRET) flags &= ~NT;
  if (old32) {
    writeSys(cpu, oldBase + 0x20, 4, oldEip);
    writeSys(cpu, oldBase + 0x24, 4, flags);
    for (let i = 0; i < 8; i++) writeSys(cpu, oldBase + 0x28 + i * 4, 4, regs[i]);
    for (let i = 0; i < 6; i++) writeSys(cpu, oldBase + 0x48 + i * 4, 2, cpu.segSel[TSS_SEGS[i]]);
  } else {
    writeSys(cpu, oldBase + 0x0E, 2, oldEip);
    writeSys(cpu, oldBase + 0x10, 2, flags);
    for (let i = 0; i < 8; i++) writeSys(cpu, oldBase + 0x12 + i * 2, 2, regs[i]);
    for (let i = 0; i < 4; i++) writeSys(cpu, oldBase + 0x22 + i * 2, 2, cpu.segSel[TSS_SEGS[i]]);
  }
  if (reason === TASK_CALL || reason === TASK_INT) writeSys(cpu, newBase, 2, oldSel);
  if (reason !== TASK_IRET) {
    newHi |= BUSY;
    writeSys(cpu, gdt + (sel & ~7) + 4, 4, newHi);
  }

  // Commit point: the task register, CR0.TS, CR3, EIP, EFLAGS, the registers and the selectors.
  DESC[0] = newLo;
  DESC[1] = newHi;
  loadCache(cpu, TR, sel);
  st[ST_CR0] |= CR0_TS;
  if ((st[ST_CR0] & CR0_PG) !== 0 && new32) {
    st[ST_CR3] = NEW[N_CR3];
    flushTlb(cpu, (st[ST_CR4] & CR4_PGE) !== 0);
  }
  let newFlags = NEW[N_EFLAGS];
  if (reason === TASK_CALL || reason === TASK_INT) newFlags |= NT;
  cpu.cc[CC_FLAGS] = (newFlags & 0x3F7FD5) | 2;
  cpu.cc[CC_OP] = CC_EFLAGS;
  st[ST_EIP] = NEW[N_EIP];
  for (let i = 0; i < 8; i++) regs[i] = NEW[N_REGS + i];
  // Until each is loaded below, a segment register holds its selector with an unusable cache.
  for (let i = 0; i < 6; i++) {
    const seg = TSS_SEGS[i];
    cpu.segSel[seg] = NEW[N_SEGS + i];
    cpu.segBase[seg] = 0;
    cpu.segLimit[seg] = 0;
    cpu.segAttr[seg] = 0;
    cpu.segCheck[seg] = 1;
  }
  cpu.segSel[LDTR] = NEW[N_LDT];
  cpu.segBase[LDTR] = 0;
  cpu.segLimit[LDTR] = 0;
  const vm86 = (newFlags & VM) !== 0;
  cpu.setCpl(vm86 ? 3 : NEW[N_SEGS + 1] & 3);
  inNewTask(cpu, () => loadNewTaskSegments(cpu, vm86, ext));
}

/**
 * Loads and checks the new task's LDT and segments (SDM Table 7-1), in the order QEMU and Bochs
 * use: LDTR, CS, SS, ES, DS, FS, GS. A VM86 task's segments are loaded real-mode style.
 */
function loadNewTaskSegments(cpu: Cpu, vm86: boolean, ext: number): void {
  const ldt = NEW[N_LDT];
  if ((ldt & ~3) !== 0) {
    if ((ldt & 4) !== 0) faultCode(TS_VEC, (ldt & ~3) + ext);
    readDescriptor(cpu, ldt, TS_VEC);
    if (((DESC[1] >>> 8) & 0x1F) !== 2 || (DESC[1] & 0x8000) === 0) faultCode(TS_VEC, (ldt & ~3) + ext);
    loadCache(cpu, LDTR, ldt);
  }
  if (vm86) {
    for (let i = 0; i < 6; i++) loadSegmentVm86(cpu, TSS_SEGS[i], NEW[N_SEGS + i]);
    return;
  }
  const cpl = cpu.st[ST_CPL];
  // CS: code, DPL = RPL (or <= RPL when conforming), present.
  const cs = NEW[N_SEGS + 1];
  if ((cs & ~3) === 0) faultCode(TS_VEC, ext);
  readDescriptor(cpu, cs, TS_VEC);
  let hi = DESC[1];
  let dpl = (hi >>> 13) & 3;
  if ((hi & 0x1800) !== 0x1800 || ((hi & 0x400) !== 0 ? dpl > cpl : dpl !== cpl)) {
    faultCode(TS_VEC, (cs & ~3) + ext);
  }
  if ((hi & 0x8000) === 0) faultCode(NP, (cs & ~3) + ext);
  loadCache(cpu, CS, cs);
  // SS: writable data at DPL = RPL = CPL, present.
  const ss = NEW[N_SEGS + 2];
  if ((ss & ~3) === 0) faultCode(TS_VEC, ext);
  readDescriptor(cpu, ss, TS_VEC);
  hi = DESC[1];
  dpl = (hi >>> 13) & 3;
  if ((hi & 0x1A00) !== 0x1200 || dpl !== cpl || (ss & 3) !== cpl) faultCode(TS_VEC, (ss & ~3) + ext);
  if ((hi & 0x8000) === 0) faultCode(SS_VEC, (ss & ~3) + ext);
  loadCache(cpu, SS, ss);
  // Data segments: null, or data / readable code visible at CPL and RPL, present.
  for (const i of [0, 3, 4, 5]) {
    const seg = TSS_SEGS[i], sel = NEW[N_SEGS + i];
    if ((sel & ~3) === 0) continue;
    readDescriptor(cpu, sel, TS_VEC);
    hi = DESC[1];
    dpl = (hi >>> 13) & 3;
    const code = (hi & 0x800) !== 0;
    if ((hi & 0x1000) === 0 || (code && (hi & 0x200) === 0)) faultCode(TS_VEC, (sel & ~3) + ext);
    const conforming = code && (hi & 0x400) !== 0;
    if (!conforming && (dpl < cpl || dpl < (sel & 3))) faultCode(TS_VEC, (sel & ~3) + ext);
    if ((hi & 0x8000) === 0) faultCode(NP, (sel & ~3) + ext);
    loadCache(cpu, seg, sel);
  }
}

/** Faults now (as a supervisor write would) if any byte of [lin, lin + size) is not writable. */
function probeSys(cpu: Cpu, lin: number, size: number): void {
  translate(cpu, lin | 0, ACC_WRITE, false);
  translate(cpu, (lin + size - 1) | 0, ACC_WRITE, false);
}
