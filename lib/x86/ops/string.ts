/**
 * String instructions MOVS, STOS, LODS, CMPS, SCAS with REP/REPE/REPNE (SDM Vol. 2). Each
 * iteration commits ESI/EDI/ECX before the next, so a fault in the middle restarts the
 * instruction with the remaining count, as on hardware. The whole repetition runs inside one
 * instruction (interrupts wait for it to finish), except under single-step (TF): then each call
 * does one iteration and returns true while more remain, so the interpreter leaves EIP at the
 * instruction and the trap comes after every iteration (SDM Vol. 3A 17.3.1.4).
 */
import { type Cpu, ECX, EDI, ES, ESI } from "../cpu.ts";
import { EA_ADDR16, PFX_REP, PFX_REPNE } from "../decode_cache.ts";
import { alu, ALU_CMP } from "./alu.ts";
import { readMem, writeMem } from "./operands.ts";
import { CC_FLAGS } from "../lazy_flags.ts";
import { EAX } from "../cpu.ts";
import { checkSegmentAccess } from "../segments.ts";

const WRITE = 0x80;

const DF = 0x400, TF = 0x100;

function stepOf(cpu: Cpu, size: number): number {
  return (cpu.cc[CC_FLAGS] & DF) !== 0 ? -(1 << size) : 1 << size;
}

function readCount(cpu: Cpu, a16: boolean): number {
  return a16 ? cpu.r16[ECX << 1] : cpu.regs[ECX] >>> 0;
}

function advance(cpu: Cpu, reg: number, a16: boolean, step: number): void {
  if (a16) cpu.r16[reg << 1] = cpu.regs[reg] + step;
  else cpu.regs[reg] = (cpu.regs[reg] + step) | 0;
}

/** The linear address of [seg:reg] for an access of `macc` (bytes | MACC_WRITE), limit-checked. */
function addr(cpu: Cpu, seg: number, reg: number, a16: boolean, macc: number): number {
  const offset = a16 ? cpu.regs[reg] & 0xFFFF : cpu.regs[reg];
  if (cpu.segCheck[seg] !== 0) checkSegmentAccess(cpu, seg, offset, macc);
  return (cpu.segBase[seg] + offset) | 0;
}

function decCount(cpu: Cpu, a16: boolean): void {
  if (a16) cpu.r16[ECX << 1] = cpu.regs[ECX] - 1;
  else cpu.regs[ECX] = (cpu.regs[ECX] - 1) | 0;
}

/** Iterations a REP instruction runs in this call: one under single-step, else all of them. */
function repCount(cpu: Cpu, a16: boolean): number {
  const n = readCount(cpu, a16);
  return (cpu.cc[CC_FLAGS] & TF) !== 0 && n !== 0 ? 1 : n;
}

/** After a single-stepped iteration: true when the count says the instruction goes on. */
function more(cpu: Cpu, a16: boolean): boolean {
  return (cpu.cc[CC_FLAGS] & TF) !== 0 && readCount(cpu, a16) !== 0;
}

/** MOVS: [ES:EDI] = [seg:ESI]. */
export function movs(cpu: Cpu, slot: number, size: number): boolean {
  const e = cpu.decoded.ea[slot];
  const a16 = (e & EA_ADDR16) !== 0;
  const src = (e >> 12) & 7, n = 1 << size;
  const step = stepOf(cpu, size);
  if ((cpu.decoded.pfx[slot] & (PFX_REP | PFX_REPNE)) === 0) {
    const v = readMem(cpu, addr(cpu, src, ESI, a16, n), size);
    writeMem(cpu, addr(cpu, ES, EDI, a16, n | WRITE), size, v);
    advance(cpu, ESI, a16, step);
    advance(cpu, EDI, a16, step);
    return false;
  }
  for (let i = repCount(cpu, a16); i !== 0; i--) {
    const v = readMem(cpu, addr(cpu, src, ESI, a16, n), size);
    writeMem(cpu, addr(cpu, ES, EDI, a16, n | WRITE), size, v);
    advance(cpu, ESI, a16, step);
    advance(cpu, EDI, a16, step);
    decCount(cpu, a16);
  }
  return more(cpu, a16);
}

/** STOS: [ES:EDI] = AL/AX/EAX. */
export function stos(cpu: Cpu, slot: number, size: number): boolean {
  const e = cpu.decoded.ea[slot];
  const a16 = (e & EA_ADDR16) !== 0;
  const n = (1 << size) | WRITE;
  const step = stepOf(cpu, size);
  const v = cpu.regs[EAX];
  if ((cpu.decoded.pfx[slot] & (PFX_REP | PFX_REPNE)) === 0) {
    writeMem(cpu, addr(cpu, ES, EDI, a16, n), size, v);
    advance(cpu, EDI, a16, step);
    return false;
  }
  for (let i = repCount(cpu, a16); i !== 0; i--) {
    writeMem(cpu, addr(cpu, ES, EDI, a16, n), size, v);
    advance(cpu, EDI, a16, step);
    decCount(cpu, a16);
  }
  return more(cpu, a16);
}

/** LODS: AL/AX/EAX = [seg:ESI]. */
export function lods(cpu: Cpu, slot: number, size: number): boolean {
  const e = cpu.decoded.ea[slot];
  const a16 = (e & EA_ADDR16) !== 0;
  const src = (e >> 12) & 7;
  const step = stepOf(cpu, size);
  const rep = (cpu.decoded.pfx[slot] & (PFX_REP | PFX_REPNE)) !== 0;
  for (let n = rep ? repCount(cpu, a16) : 1; n !== 0; n--) {
    const v = readMem(cpu, addr(cpu, src, ESI, a16, 1 << size), size);
    if (size === 2) cpu.regs[EAX] = v;
    else if (size === 1) cpu.r16[0] = v;
    else cpu.r8[0] = v;
    advance(cpu, ESI, a16, step);
    if (rep) decCount(cpu, a16);
  }
  return rep && more(cpu, a16);
}

/** CMPS: compares [seg:ESI] with [ES:EDI]; REPE/REPNE stop on ZF. */
export function cmps(cpu: Cpu, slot: number, size: number): boolean {
  const e = cpu.decoded.ea[slot];
  const a16 = (e & EA_ADDR16) !== 0;
  const src = (e >> 12) & 7;
  const step = stepOf(cpu, size);
  const pfx = cpu.decoded.pfx[slot] & (PFX_REP | PFX_REPNE);
  for (let n = pfx !== 0 ? repCount(cpu, a16) : 1; n !== 0; n--) {
    const a = readMem(cpu, addr(cpu, src, ESI, a16, 1 << size), size);
    const b = readMem(cpu, addr(cpu, ES, EDI, a16, 1 << size), size);
    const r = alu(cpu.cc, ALU_CMP, a, b, size);
    advance(cpu, ESI, a16, step);
    advance(cpu, EDI, a16, step);
    if (pfx === 0) return false;
    decCount(cpu, a16);
    if (pfx === PFX_REP ? r !== 0 : r === 0) return false;
  }
  return pfx !== 0 && more(cpu, a16);
}

/** SCAS: compares AL/AX/EAX with [ES:EDI]. */
export function scas(cpu: Cpu, slot: number, size: number): boolean {
  const e = cpu.decoded.ea[slot];
  const a16 = (e & EA_ADDR16) !== 0;
  const step = stepOf(cpu, size);
  const pfx = cpu.decoded.pfx[slot] & (PFX_REP | PFX_REPNE);
  const a = cpu.regs[EAX];
  for (let n = pfx !== 0 ? repCount(cpu, a16) : 1; n !== 0; n--) {
    const b = readMem(cpu, addr(cpu, ES, EDI, a16, 1 << size), size);
    const r = alu(cpu.cc, ALU_CMP, a, b, size);
    advance(cpu, EDI, a16, step);
    if (pfx === 0) return false;
    decCount(cpu, a16);
    if (pfx === PFX_REP ? r !== 0 : r === 0) return false;
  }
  return pfx !== 0 && more(cpu, a16);
}
