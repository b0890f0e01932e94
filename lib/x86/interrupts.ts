/**
 * Exception and interrupt delivery (SDM Vol. 3A, ch. 6): the real-mode IVT, protected-mode
 * interrupt and trap gates (16- and 32-bit) with the stack switch from the TSS on a privilege
 * change, error codes, and the double- and triple-fault rules; task gates switch tasks
 * (task_switch.ts); from virtual-8086 mode the handler gets the 9-dword frame with the data
 * segments pushed and nulled (SDM 20.3.1.1). Nothing architectural changes until every read and
 * push that can fault has succeeded.
 */
import {
  type Cpu,
  CS,
  DS,
  ES,
  ESP,
  FS,
  GS,
  SS,
  ST_CPL,
  ST_EIP,
  ST_IDT_BASE,
  ST_IDT_LIMIT,
  TR,
} from "./cpu.ts";
import { DF_VEC, FAULT, faultCode, GP, NP, PF_VEC, pushesErrorCode, SS_VEC, TS_VEC } from "./fault.ts";
import { CC_FLAGS, materialize } from "./lazy_flags.ts";
import { readSys, write16, write32, writeSys } from "./mmu.ts";
import {
  DATA_SEGS,
  DESC,
  descAttr,
  descBase,
  descLimit,
  loadCache,
  readDescriptor,
  updateSegmentCheck,
} from "./segments.ts";
import { interruptTask } from "./task_switch.ts";

/** Interrupt sources, for the privilege and error-code rules. */
export const INT_HARDWARE = 0; // exception or external interrupt
export const INT_SOFTWARE = 1; // INT n, INT3, INTO: gate DPL checked against CPL

const TF = 0x100, IF = 0x200, NT = 0x4000, RF = 0x10000, VM = 0x20000;

/** Thrown (as a plain signal, not a CPU fault) when the guest needs what we do not implement. */
export class UnsupportedFeature {
  constructor(readonly message: string) {}
}

/** Thrown when the CPU shuts down (triple fault). */
export class TripleFault {
  constructor(readonly message: string) {}
}

function isContributory(v: number): boolean {
  return v === 0 || (v >= 10 && v <= 13);
}

/**
 * Delivers an exception at the current EIP (already rolled back for faults), applying the
 * double-fault rules when delivery itself faults.
 */
export function deliverException(cpu: Cpu, vector: number, hasErrorCode: boolean, errorCode: number): void {
  let v = vector, has = hasErrorCode, code = errorCode;
  for (let depth = 0;; depth++) {
    try {
      cpu.faultInNewTask = false;
      deliverInterrupt(cpu, v, INT_HARDWARE, has, code, cpu.st[ST_EIP]);
      return;
    } catch (e) {
      cpu.faultInNewTask = false; // a task gate's new task: EIP is already the one to report
      if (e !== FAULT) throw e;
      const second = FAULT.vector;
      if (v === DF_VEC || depth > 4) {
        throw new TripleFault(`triple fault: exception ${second} while delivering a double fault`);
      }
      if (
        (isContributory(v) && isContributory(second)) ||
        (v === PF_VEC && (second === PF_VEC || isContributory(second)))
      ) {
        v = DF_VEC;
        has = true;
        code = 0;
      } else {
        v = second;
        has = FAULT.hasErrorCode;
        code = FAULT.errorCode;
      }
    }
  }
}

/** The inner stack found by readInnerStack: SS selector, ESP, SS descriptor low and high dwords. */
export const INNER_STACK = new Int32Array(4);

/**
 * Reads the stack for privilege `dpl` from the TSS and checks its SS descriptor (SDM 6.12.1,
 * "Stack switching"): #TS for a bad TSS or SS, #SS for a non-present SS. `ext` is the EXT bit of
 * error codes. Results in INNER_STACK.
 */
export function readInnerStack(cpu: Cpu, dpl: number, ext: number): void {
  const trBase = cpu.segBase[TR];
  const tss32 = (cpu.segAttr[TR] & 8) !== 0;
  const spOff = tss32 ? 4 + dpl * 8 : 2 + dpl * 4;
  if ((tss32 ? spOff + 5 : spOff + 3) > (cpu.segLimit[TR] >>> 0)) {
    faultCode(TS_VEC, (cpu.segSel[TR] & ~3) + ext);
  }
  const newSp = tss32 ? readSys(cpu, trBase + spOff, 4) : readSys(cpu, trBase + spOff, 2);
  const newSs = readSys(cpu, trBase + spOff + (tss32 ? 4 : 2), 2);
  if ((newSs & ~3) === 0) faultCode(TS_VEC, ext);
  readDescriptor(cpu, newSs, TS_VEC);
  const shi = DESC[1];
  if ((newSs & 3) !== dpl || ((shi >>> 13) & 3) !== dpl || ((shi >>> 8) & 0x1A) !== 0x12) {
    faultCode(TS_VEC, (newSs & ~3) + ext);
  }
  if ((shi & 0x8000) === 0) faultCode(SS_VEC, (newSs & ~3) + ext);
  INNER_STACK[0] = newSs;
  INNER_STACK[1] = newSp;
  INNER_STACK[2] = DESC[0];
  INNER_STACK[3] = shi;
}

/**
 * Delivers interrupt `vector`. `returnEip` is the EIP pushed (the next instruction for traps and
 * INT n, the faulting one for faults). Raises a CPU fault if delivery is impossible.
 */
export function deliverInterrupt(
  cpu: Cpu,
  vector: number,
  source: number,
  hasErrorCode: boolean,
  errorCode: number,
  returnEip: number,
): void {
  const st = cpu.st;
  if (cpu.deliveryHook !== null && (st[1] & 1) !== 0) {
    if (cpu.deliveryHook(vector, source, hasErrorCode, errorCode, returnEip)) return;
  }
  const eflags = materialize(cpu.cc);
  if ((st[1] & 1) === 0) {
    // Real mode: the IVT.
    const entry = (st[ST_IDT_BASE] + vector * 4) | 0;
    if (vector * 4 + 3 > (st[ST_IDT_LIMIT] >>> 0)) faultCode(GP, 0);
    const off = readSys(cpu, entry, 2), seg = readSys(cpu, entry + 2, 2);
    const sp = cpu.regs[ESP];
    const ssBase = cpu.segBase[SS];
    const w = (k: number, v: number) => write16(cpu, (ssBase + ((sp - 2 * k) & 0xFFFF)) | 0, v);
    w(1, eflags);
    w(2, cpu.segSel[CS]);
    w(3, returnEip);
    cpu.r16[ESP * 2] = sp - 6;
    cpu.segSel[CS] = seg;
    cpu.segBase[CS] = seg << 4;
    cpu.cc[CC_FLAGS] = eflags & ~(IF | TF | 0x40000);
    st[ST_EIP] = off;
    cpu.halted = false;
    return;
  }
  const ext = source === INT_HARDWARE ? 1 : 0;
  const gateErr = vector * 8 + 2 + ext;
  if (vector * 8 + 7 > (st[ST_IDT_LIMIT] >>> 0)) faultCode(GP, gateErr);
  const gateAddr = (st[ST_IDT_BASE] + vector * 8) | 0;
  const glo = readSys(cpu, gateAddr, 4), ghi = readSys(cpu, gateAddr + 4, 4);
  const gtype = (ghi >>> 8) & 0x1F;
  const cpl = st[ST_CPL];
  if (gtype !== 5 && gtype !== 6 && gtype !== 7 && gtype !== 0xE && gtype !== 0xF) faultCode(GP, gateErr);
  if (source === INT_SOFTWARE && ((ghi >>> 13) & 3) < cpl) faultCode(GP, gateErr);
  if ((ghi & 0x8000) === 0) faultCode(NP, gateErr);
  if (gtype === 5) {
    interruptTask(cpu, glo, ext, errorCode, hasErrorCode && pushesErrorCode(vector), returnEip);
    return;
  }
  const gate32 = (gtype & 8) !== 0;
  const sel = glo >>> 16;
  const offset = gate32 ? ((glo & 0xFFFF) | (ghi & 0xFFFF0000)) | 0 : glo & 0xFFFF;
  if ((sel & ~3) === 0) faultCode(GP, ext);
  readDescriptor(cpu, sel, GP);
  const clo = DESC[0], chi = DESC[1];
  const ctype = (chi >>> 8) & 0x1F;
  const dpl = (chi >>> 13) & 3;
  if ((ctype & 0x18) !== 0x18 || dpl > cpl) faultCode(GP, (sel & ~3) + ext);
  if ((chi & 0x8000) === 0) faultCode(NP, (sel & ~3) + ext);
  const conforming = (ctype & 4) !== 0;
  // From VM86 only a non-conforming DPL-0 handler will do (SDM INT, "INTERRUPT-FROM-VIRTUAL-8086-MODE").
  const vm86 = (eflags & VM) !== 0;
  if (vm86 && (conforming || dpl !== 0)) faultCode(GP, (sel & ~3) + ext);
  const pushErr = hasErrorCode && pushesErrorCode(vector) ? 1 : 0;
  const n = gate32 ? 4 : 2;
  const oldCs = cpu.segSel[CS];
  if (!conforming && dpl < cpl) {
    // Inter-privilege: new stack from the TSS.
    readInnerStack(cpu, dpl, ext);
    const newSs = INNER_STACK[0], newSp = INNER_STACK[1], ssLo = INNER_STACK[2], shi = INNER_STACK[3];
    const ssBase = descBase(ssLo, shi);
    const ss32 = (shi & 0x400000) !== 0;
    let sp = newSp;
    const push = (v: number) => {
      sp = ss32 ? (sp - n) | 0 : (sp - n) & 0xFFFF;
      writeSys(cpu, (ssBase + sp) | 0, n, v);
    };
    if (vm86) {
      push(cpu.segSel[GS]);
      push(cpu.segSel[FS]);
      push(cpu.segSel[DS]);
      push(cpu.segSel[ES]);
    }
    push(cpu.segSel[SS]);
    push(cpu.regs[ESP]);
    push(eflags);
    push(oldCs);
    push(returnEip);
    if (pushErr) push(errorCode);
    // Commit.
    if (vm86) {
      for (const seg of DATA_SEGS) {
        cpu.segSel[seg] = 0;
        cpu.segBase[seg] = 0;
        cpu.segLimit[seg] = 0;
        cpu.segAttr[seg] = 0;
        cpu.segCheck[seg] = 1;
      }
    }
    cpu.segSel[SS] = (newSs & ~3) | dpl;
    cpu.segBase[SS] = ssBase;
    cpu.segLimit[SS] = descLimit(ssLo, shi);
    cpu.segAttr[SS] = descAttr(shi);
    updateSegmentCheck(cpu, SS);
    cpu.ss32 = ss32;
    if (ss32) cpu.regs[ESP] = sp;
    else cpu.r16[ESP * 2] = sp;
    cpu.setCpl(dpl);
  } else {
    let sp = cpu.regs[ESP];
    const ssBase = cpu.segBase[SS];
    const ss32 = cpu.ss32;
    const total = (5 - 2 + pushErr) * n;
    // Probe-free: write from the lowest address up would change memory before a later fault; the
    // pushes below all hit one small range, so a fault can only come from the first page touched.
    const push = (v: number) => {
      sp = ss32 ? (sp - n) | 0 : (sp - n) & 0xFFFF;
      if (n === 4) write32(cpu, (ssBase + sp) | 0, v);
      else write16(cpu, (ssBase + sp) | 0, v);
    };
    push(eflags);
    push(oldCs);
    push(returnEip);
    if (pushErr) push(errorCode);
    void total;
    if (ss32) cpu.regs[ESP] = sp;
    else cpu.r16[ESP * 2] = sp;
  }
  DESC[0] = clo;
  DESC[1] = chi;
  loadCache(cpu, CS, (sel & ~3) | (conforming && dpl < cpl ? cpl : dpl));
  if (conforming) cpu.segSel[CS] = (sel & ~3) | cpl;
  st[ST_EIP] = offset;
  let f = eflags & ~(TF | NT | RF | VM);
  if ((gtype & 1) === 0) f &= ~IF;
  cpu.cc[CC_FLAGS] = f;
  cpu.halted = false;
}
