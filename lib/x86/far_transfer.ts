/**
 * Far control transfers (SDM Vol. 2: JMP, CALL, RET, IRET, SYSENTER, SYSEXIT): code-segment and
 * call-gate checks, returns to outer privilege levels, and the fast system-call pair. A TSS
 * descriptor or task gate as the target, and IRET with EFLAGS.NT, switch tasks (task_switch.ts);
 * in virtual-8086 mode far transfers are real-mode ones and IRET is vm86.ts's.
 */
import {
  type Cpu,
  CS,
  ESP,
  SS,
  ST_CPL,
  ST_EIP,
  ST_SYSENTER_CS,
  ST_SYSENTER_EIP,
  ST_SYSENTER_ESP,
} from "./cpu.ts";
import { faultCode, GP, NP, SS_VEC } from "./fault.ts";
import { CC_FLAGS, materialize } from "./lazy_flags.ts";
import { write16, write32, writeSys } from "./mmu.ts";
import { adjustSp, peek16, peek32, push16, push32 } from "./ops/stack.ts";
import { INNER_STACK, readInnerStack } from "./interrupts.ts";
import { farTaskTransfer, TASK_CALL, TASK_JMP, taskReturn } from "./task_switch.ts";
import { returnToVm86, vm86InterruptReturn } from "./vm86.ts";
import {
  checkSegmentAccess,
  DESC,
  descAttr,
  descBase,
  descLimit,
  loadCache,
  loadSegment,
  loadSegmentReal,
  nullInaccessibleSegments,
  readDescriptor,
  updateSegmentCheck,
} from "./segments.ts";

const IF = 0x200, IOPL = 0x3000, NT = 0x4000, RF = 0x10000, VM = 0x20000;

/** Protected mode proper: far transfers in real and virtual-8086 mode are real-mode ones. */
function protectedMode(cpu: Cpu): boolean {
  return (cpu.st[1] & 1) !== 0 && (cpu.cc[CC_FLAGS] & VM) === 0;
}

/**
 * Checks a code-segment descriptor in DESC as the target of a direct far JMP/CALL or return at
 * privilege `cpl` with requestor `rpl`.
 */
function checkCodeTarget(sel: number, cpl: number, rpl: number, isReturn: boolean): void {
  const hi = DESC[1];
  const type = (hi >>> 8) & 0x1F;
  const dpl = (hi >>> 13) & 3;
  if ((type & 0x18) !== 0x18) faultCode(GP, sel & ~3);
  const conforming = (type & 4) !== 0;
  if (isReturn) {
    if (conforming ? dpl > rpl : dpl !== rpl) faultCode(GP, sel & ~3);
  } else if (conforming ? dpl > cpl : rpl > cpl || dpl !== cpl) faultCode(GP, sel & ~3);
  if ((hi & 0x8000) === 0) faultCode(NP, sel & ~3);
}

/** JMP ptr16:16/32 and JMP m16:16/32. */
export function farJump(cpu: Cpu, sel: number, offset: number, op32: boolean): void {
  sel &= 0xFFFF;
  if (!protectedMode(cpu)) {
    loadSegmentReal(cpu, CS, sel);
    cpu.st[ST_EIP] = op32 ? offset : offset & 0xFFFF;
    return;
  }
  const cpl = cpu.st[ST_CPL];
  if ((sel & ~3) === 0) faultCode(GP, 0);
  readDescriptor(cpu, sel);
  const hi = DESC[1];
  if ((hi & 0x1000) !== 0) {
    checkCodeTarget(sel, cpl, sel & 3, false);
    loadCache(cpu, CS, (sel & ~3) | cpl);
    cpu.st[ST_EIP] = cpu.code32 ? offset : offset & 0xFFFF;
    return;
  }
  const type = (hi >>> 8) & 0x1F;
  if (type === 4 || type === 0xC) {
    const { target, off } = callGate(cpu, sel, cpl);
    readDescriptor(cpu, target);
    const chi = DESC[1];
    const cdpl = (chi >>> 13) & 3;
    const conforming = (chi & 0x400) !== 0;
    if ((chi & 0x1800) !== 0x1800 || (conforming ? cdpl > cpl : cdpl !== cpl)) faultCode(GP, target & ~3);
    if ((chi & 0x8000) === 0) faultCode(NP, target & ~3);
    loadCache(cpu, CS, (target & ~3) | cpl);
    cpu.st[ST_EIP] = type === 4 ? off & 0xFFFF : off;
    return;
  }
  if (!farTaskTransfer(cpu, sel, TASK_JMP, cpu.st[ST_EIP])) faultCode(GP, sel & ~3);
}

/** Validates a call gate in DESC; returns its target selector and offset. */
function callGate(cpu: Cpu, sel: number, cpl: number): { target: number; off: number; params: number } {
  const lo = DESC[0], hi = DESC[1];
  const dpl = (hi >>> 13) & 3;
  if (dpl < cpl || dpl < (sel & 3)) faultCode(GP, sel & ~3);
  if ((hi & 0x8000) === 0) faultCode(NP, sel & ~3);
  const target = lo >>> 16;
  if ((target & ~3) === 0) faultCode(GP, 0);
  void cpu;
  return { target, off: ((lo & 0xFFFF) | (hi & 0xFFFF0000)) | 0, params: hi & 0x1F };
}

/** CALL ptr16:16/32 and CALL m16:16/32; `next` is the return EIP. */
export function farCall(cpu: Cpu, sel: number, offset: number, op32: boolean, next: number): void {
  sel &= 0xFFFF;
  if (!protectedMode(cpu)) {
    if (op32) {
      push32(cpu, cpu.segSel[CS]);
      push32(cpu, next);
    } else {
      push16(cpu, cpu.segSel[CS]);
      push16(cpu, next);
    }
    loadSegmentReal(cpu, CS, sel);
    cpu.st[ST_EIP] = op32 ? offset : offset & 0xFFFF;
    return;
  }
  const cpl = cpu.st[ST_CPL];
  if ((sel & ~3) === 0) faultCode(GP, 0);
  readDescriptor(cpu, sel);
  const hi = DESC[1];
  if ((hi & 0x1000) !== 0) {
    checkCodeTarget(sel, cpl, sel & 3, false);
    const lo = DESC[0];
    pushPair(cpu, op32, cpu.segSel[CS], next);
    DESC[0] = lo;
    DESC[1] = hi;
    loadCache(cpu, CS, (sel & ~3) | cpl);
    cpu.st[ST_EIP] = op32 ? offset : offset & 0xFFFF;
    return;
  }
  const type = (hi >>> 8) & 0x1F;
  if (type !== 4 && type !== 0xC) {
    if (!farTaskTransfer(cpu, sel, TASK_CALL, next)) faultCode(GP, sel & ~3);
    return;
  }
  const gate32 = type === 0xC;
  const { target, off, params } = callGate(cpu, sel, cpl);
  readDescriptor(cpu, target);
  const clo = DESC[0], chi = DESC[1];
  const cdpl = (chi >>> 13) & 3;
  const conforming = (chi & 0x400) !== 0;
  if ((chi & 0x1800) !== 0x1800 || cdpl > cpl) faultCode(GP, target & ~3);
  if ((chi & 0x8000) === 0) faultCode(NP, target & ~3);
  const n = gate32 ? 4 : 2;
  if (!conforming && cdpl < cpl) {
    // More privileged: switch stacks via the TSS, copy parameters.
    readInnerStack(cpu, cdpl, 0);
    const newSs = INNER_STACK[0], newSp = INNER_STACK[1], slo = INNER_STACK[2], shi = INNER_STACK[3];
    const ssBase = descBase(slo, shi), ss32 = (shi & 0x400000) !== 0;
    const paramVals: number[] = [];
    for (let i = params - 1; i >= 0; i--) paramVals.push(n === 4 ? peek32(cpu, i * 4) : peek16(cpu, i * 2));
    let sp = newSp;
    const push = (v: number) => {
      sp = ss32 ? (sp - n) | 0 : (sp - n) & 0xFFFF;
      writeSys(cpu, (ssBase + sp) | 0, n, v);
    };
    push(cpu.segSel[SS]);
    push(cpu.regs[ESP]);
    for (const v of paramVals) push(v);
    push(cpu.segSel[CS]);
    push(next);
    cpu.segSel[SS] = newSs;
    cpu.segBase[SS] = ssBase;
    cpu.segLimit[SS] = descLimit(slo, shi);
    cpu.segAttr[SS] = descAttr(shi);
    updateSegmentCheck(cpu, SS);
    cpu.ss32 = ss32;
    if (ss32) cpu.regs[ESP] = sp;
    else cpu.r16[ESP * 2] = sp;
    cpu.setCpl(cdpl);
    DESC[0] = clo;
    DESC[1] = chi;
    loadCache(cpu, CS, (target & ~3) | cdpl);
  } else {
    pushPair(cpu, gate32, cpu.segSel[CS], next);
    DESC[0] = clo;
    DESC[1] = chi;
    loadCache(cpu, CS, (target & ~3) | cpl);
  }
  cpu.st[ST_EIP] = gate32 ? off : off & 0xFFFF;
}

/** Pushes CS then EIP, both or neither (the lower push is probed first). */
function pushPair(cpu: Cpu, op32: boolean, cs: number, eip: number): void {
  const n = op32 ? 4 : 2;
  const sp = cpu.regs[ESP];
  const lowSp = cpu.ss32 ? (sp - 2 * n) | 0 : (sp - 2 * n) & 0xFFFF;
  // #SS(0) past a non-flat stack's limit, before either write (the upper slot is checked too: on a
  // 16-bit stack it may wrap to a different offset).
  if (cpu.segCheck[SS] !== 0) {
    checkSegmentAccess(cpu, SS, lowSp, n | 0x80);
    checkSegmentAccess(cpu, SS, cpu.ss32 ? (sp - n) | 0 : (sp - n) & 0xFFFF, n | 0x80);
  }
  const base = cpu.segBase[SS];
  if (op32) {
    write32(cpu, (base + lowSp) | 0, eip);
    write32(cpu, (base + lowSp + 4) | 0, cs);
  } else {
    write16(cpu, (base + lowSp) | 0, eip);
    write16(cpu, (base + lowSp + 2) | 0, cs);
  }
  if (cpu.ss32) cpu.regs[ESP] = lowSp;
  else cpu.r16[ESP * 2] = lowSp;
}

/** RETF [imm16]. */
export function farReturn(cpu: Cpu, op32: boolean, popBytes: number): void {
  const n = op32 ? 4 : 2;
  const eip = op32 ? peek32(cpu, 0) : peek16(cpu, 0);
  const sel = (op32 ? peek32(cpu, 4) : peek16(cpu, 2)) & 0xFFFF;
  if (!protectedMode(cpu)) {
    adjustSp(cpu, 2 * n + popBytes);
    loadSegmentReal(cpu, CS, sel);
    cpu.st[ST_EIP] = eip;
    return;
  }
  const cpl = cpu.st[ST_CPL];
  const rpl = sel & 3;
  if ((sel & ~3) === 0) faultCode(GP, 0);
  if (rpl < cpl) faultCode(GP, sel & ~3);
  readDescriptor(cpu, sel);
  checkCodeTarget(sel, cpl, rpl, true);
  const clo = DESC[0], chi = DESC[1];
  if (rpl === cpl) {
    adjustSp(cpu, 2 * n + popBytes);
    loadCache(cpu, CS, sel);
    cpu.st[ST_EIP] = cpu.code32 ? eip : eip & 0xFFFF;
    return;
  }
  // Return to an outer privilege level: the caller's SS:ESP follow the parameters.
  const newEsp = op32 ? peek32(cpu, 2 * n + popBytes) : peek16(cpu, 2 * n + popBytes);
  const newSs = (op32 ? peek32(cpu, 3 * n + popBytes) : peek16(cpu, 3 * n + popBytes)) & 0xFFFF;
  returnToOuter(cpu, sel, clo, chi, eip, newSs, newEsp, popBytes);
}

function returnToOuter(
  cpu: Cpu,
  sel: number,
  clo: number,
  chi: number,
  eip: number,
  newSs: number,
  newEsp: number,
  popBytes: number,
): void {
  const rpl = sel & 3;
  if ((newSs & ~3) === 0) faultCode(GP, 0);
  readDescriptor(cpu, newSs);
  const slo = DESC[0], shi = DESC[1];
  if ((newSs & 3) !== rpl || ((shi >>> 13) & 3) !== rpl || ((shi >>> 8) & 0x1A) !== 0x12) {
    faultCode(GP, newSs & ~3);
  }
  if ((shi & 0x8000) === 0) faultCode(SS_VEC, newSs & ~3);
  DESC[0] = clo;
  DESC[1] = chi;
  loadCache(cpu, CS, sel);
  cpu.setCpl(rpl);
  DESC[0] = slo;
  DESC[1] = shi;
  loadCache(cpu, SS, newSs);
  if (cpu.ss32) cpu.regs[ESP] = (newEsp + popBytes) | 0;
  else cpu.r16[ESP * 2] = newEsp + popBytes;
  cpu.st[ST_EIP] = cpu.code32 ? eip : eip & 0xFFFF;
  nullInaccessibleSegments(cpu);
}

/** IRET/IRETD. */
export function interruptReturn(cpu: Cpu, op32: boolean): void {
  if ((cpu.cc[CC_FLAGS] & VM) !== 0) {
    vm86InterruptReturn(cpu, op32);
    return;
  }
  const n = op32 ? 4 : 2;
  const eip = op32 ? peek32(cpu, 0) : peek16(cpu, 0);
  const sel = (op32 ? peek32(cpu, n) : peek16(cpu, n)) & 0xFFFF;
  const flags = op32 ? peek32(cpu, 2 * n) : peek16(cpu, 2 * n);
  const old = materialize(cpu.cc);
  if (!protectedMode(cpu)) {
    adjustSp(cpu, 3 * n);
    loadSegmentReal(cpu, CS, sel);
    cpu.st[ST_EIP] = eip;
    const mask = op32 ? 0x257FD5 : 0x7FD5;
    cpu.cc[CC_FLAGS] = (old & ~mask) | (flags & mask) | 2;
    return;
  }
  if ((old & NT) !== 0) {
    taskReturn(cpu);
    return;
  }
  const cpl = cpu.st[ST_CPL];
  if (op32 && (flags & VM) !== 0 && cpl === 0) {
    returnToVm86(cpu);
    return;
  }
  const rpl = sel & 3;
  if ((sel & ~3) === 0) faultCode(GP, 0);
  if (rpl < cpl) faultCode(GP, sel & ~3);
  readDescriptor(cpu, sel);
  checkCodeTarget(sel, cpl, rpl, true);
  const clo = DESC[0], chi = DESC[1];
  // Which EFLAGS bits this privilege may change.
  let mask = 0x257FD5 & ~(VM | 0x80000 | 0x100000); // status, TF, IF, DF, IOPL, NT, RF, AC, ID
  if (cpl > 0) mask &= ~IOPL;
  if (cpl > ((old >> 12) & 3)) mask &= ~IF;
  if (!op32) mask &= 0xFFFF;
  const newFlags = (old & ~mask) | (flags & mask) | 2;
  if (rpl === cpl) {
    adjustSp(cpu, 3 * n);
    loadCache(cpu, CS, sel);
    cpu.st[ST_EIP] = cpu.code32 ? eip : eip & 0xFFFF;
  } else {
    const newEsp = op32 ? peek32(cpu, 3 * n) : peek16(cpu, 3 * n);
    const newSs = (op32 ? peek32(cpu, 4 * n) : peek16(cpu, 4 * n)) & 0xFFFF;
    returnToOuter(cpu, sel, clo, chi, eip, newSs, newEsp, 0);
  }
  cpu.cc[CC_FLAGS] = newFlags & ~RF;
}

/** SYSENTER (SDM Vol. 2): flat CPL-0 entry from the SYSENTER MSRs. */
export function sysenter(cpu: Cpu): void {
  const cs = cpu.st[ST_SYSENTER_CS] & 0xFFFC;
  if (!protectedMode(cpu) || cs === 0) faultCode(GP, 0);
  setFlat(cpu, CS, cs, 0x9B);
  setFlat(cpu, SS, (cs + 8) & 0xFFFC, 0x93);
  cpu.setCpl(0);
  cpu.regs[ESP] = cpu.st[ST_SYSENTER_ESP];
  cpu.st[ST_EIP] = cpu.st[ST_SYSENTER_EIP];
  cpu.cc[CC_FLAGS] = materialize(cpu.cc) & ~(VM | IF | RF);
}

/** SYSEXIT: flat CPL-3 return to EDX (EIP) / ECX (ESP). */
export function sysexit(cpu: Cpu): void {
  const cs = cpu.st[ST_SYSENTER_CS] & 0xFFFC;
  if (!protectedMode(cpu) || cs === 0 || cpu.st[ST_CPL] !== 0) faultCode(GP, 0);
  setFlat(cpu, CS, (cs + 16) | 3, 0xFB);
  setFlat(cpu, SS, (cs + 24) | 3, 0xF3);
  cpu.setCpl(3);
  cpu.regs[ESP] = cpu.regs[1];
  cpu.st[ST_EIP] = cpu.regs[2];
}

function setFlat(cpu: Cpu, seg: number, sel: number, access: number): void {
  cpu.segSel[seg] = sel;
  cpu.segBase[seg] = 0;
  cpu.segLimit[seg] = -1;
  cpu.segAttr[seg] = 0xC000 | access;
  updateSegmentCheck(cpu, seg);
  if (seg === CS) cpu.code32 = true;
  else cpu.ss32 = true;
}

/** MOV SS / POP SS / LSS helper re-exported for symmetry with the other loads. */
export { loadSegment };
void write16;
void IF;
