/**
 * Stack pushes and pops through SS at the current privilege (SDM Vol. 1, 6.2). HOT. The stack
 * width follows SS.B (ESP vs SP); a push writes memory before ESP changes, so a fault leaves the
 * registers as they were. A stack segment that is not flat has its limit checked (#SS(0)).
 */
import { type Cpu, ESP, SS } from "../cpu.ts";
import { read16, read32, write16, write32 } from "../mmu.ts";
import { checkSegmentAccess } from "../segments.ts";

const WRITE = 0x80;

export function push32(cpu: Cpu, v: number): void {
  const regs = cpu.regs;
  if (cpu.ss32) {
    const sp = (regs[ESP] - 4) | 0;
    if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, sp, 4 | WRITE);
    write32(cpu, (cpu.segBase[SS] + sp) | 0, v);
    regs[ESP] = sp;
  } else {
    const sp = (regs[ESP] - 4) & 0xFFFF;
    if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, sp, 4 | WRITE);
    write32(cpu, (cpu.segBase[SS] + sp) | 0, v);
    cpu.r16[ESP * 2] = sp;
  }
}

export function push16(cpu: Cpu, v: number): void {
  const regs = cpu.regs;
  if (cpu.ss32) {
    const sp = (regs[ESP] - 2) | 0;
    if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, sp, 2 | WRITE);
    write16(cpu, (cpu.segBase[SS] + sp) | 0, v);
    regs[ESP] = sp;
  } else {
    const sp = (regs[ESP] - 2) & 0xFFFF;
    if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, sp, 2 | WRITE);
    write16(cpu, (cpu.segBase[SS] + sp) | 0, v);
    cpu.r16[ESP * 2] = sp;
  }
}

/** Reads the dword at the stack top plus `offset` bytes, without popping. */
export function peek32(cpu: Cpu, offset: number): number {
  const sp = cpu.ss32 ? (cpu.regs[ESP] + offset) | 0 : (cpu.regs[ESP] + offset) & 0xFFFF;
  if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, sp, 4);
  return read32(cpu, (cpu.segBase[SS] + sp) | 0);
}

export function peek16(cpu: Cpu, offset: number): number {
  const sp = cpu.ss32 ? (cpu.regs[ESP] + offset) | 0 : (cpu.regs[ESP] + offset) & 0xFFFF;
  if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, sp, 2);
  return read16(cpu, (cpu.segBase[SS] + sp) | 0);
}

/** Adds `n` to the stack pointer at the stack's width. */
export function adjustSp(cpu: Cpu, n: number): void {
  if (cpu.ss32) cpu.regs[ESP] = (cpu.regs[ESP] + n) | 0;
  else cpu.r16[ESP * 2] = cpu.regs[ESP] + n;
}

export function pop32(cpu: Cpu): number {
  const v = peek32(cpu, 0);
  adjustSp(cpu, 4);
  return v;
}

export function pop16(cpu: Cpu): number {
  const v = peek16(cpu, 0);
  adjustSp(cpu, 2);
  return v;
}
