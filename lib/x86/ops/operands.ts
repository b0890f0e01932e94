/**
 * Operand access for decoded instructions: effective addresses, ModRM register/memory operands of
 * each size. HOT: small functions the interpreter calls for every memory operand.
 */
import type { Cpu } from "../cpu.ts";
import { read16, read32, read8, write16, write32, write8 } from "../mmu.ts";
import { checkSegmentAccess } from "../segments.ts";

/** Byte offsets of AL CL DL BL AH CH DH BH in the register file's bytes. */
export const REG8 = new Uint8Array([0, 4, 8, 12, 1, 5, 9, 13]);

/**
 * The linear address of a decoded instruction's memory operand: offset plus segment base, after
 * the segment's limit and type checks for a segment that is not flat (Cpu.segCheck).
 */
export function ea(cpu: Cpu, slot: number): number {
  const seg = (cpu.decoded.ea[slot] >> 12) & 7;
  const offset = eaOffset(cpu, slot);
  // Flat segments are checked only at the top of the 4 GiB, where an operand would wrap.
  if (cpu.segCheck[seg] !== 0 || (offset >>> 0) > 0xFFFFFFF8) {
    checkSegmentAccess(cpu, seg, offset, cpu.decoded.macc[slot]);
  }
  return (offset + cpu.segBase[seg]) | 0;
}

/** The offset (without segment base) of the memory operand: LEA. */
export function eaOffset(cpu: Cpu, slot: number): number {
  const dc = cpu.decoded;
  const e = dc.ea[slot];
  const regs = cpu.regs;
  let a = dc.disp[slot];
  const b = e & 15;
  if (b !== 8) a += regs[b];
  const i = (e >> 4) & 15;
  if (i !== 8) a += regs[i] << ((e >> 8) & 3);
  if ((e & 0x8000) !== 0) a &= 0xFFFF;
  return a | 0;
}

/** Reads the r/m operand of `size` (0 = 8, 1 = 16, 2 = 32 bits). */
export function readRm(cpu: Cpu, slot: number, modrm: number, size: number): number {
  if (modrm >= 0xC0) {
    const r = modrm & 7;
    return size === 2 ? cpu.regs[r] : size === 1 ? cpu.r16[r << 1] : cpu.r8[REG8[r]];
  }
  const a = ea(cpu, slot);
  return size === 2 ? read32(cpu, a) : size === 1 ? read16(cpu, a) : read8(cpu, a);
}

/** Writes the r/m operand (register, or memory at a freshly computed address). */
export function writeRm(cpu: Cpu, slot: number, modrm: number, size: number, v: number): void {
  if (modrm >= 0xC0) {
    const r = modrm & 7;
    if (size === 2) cpu.regs[r] = v;
    else if (size === 1) cpu.r16[r << 1] = v;
    else cpu.r8[REG8[r]] = v;
    return;
  }
  const a = ea(cpu, slot);
  if (size === 2) write32(cpu, a, v);
  else if (size === 1) write16(cpu, a, v);
  else write8(cpu, a, v);
}

export function readReg(cpu: Cpu, r: number, size: number): number {
  return size === 2 ? cpu.regs[r] : size === 1 ? cpu.r16[r << 1] : cpu.r8[REG8[r]];
}

export function writeReg(cpu: Cpu, r: number, size: number, v: number): void {
  if (size === 2) cpu.regs[r] = v;
  else if (size === 1) cpu.r16[r << 1] = v;
  else cpu.r8[REG8[r]] = v;
}

export function readMem(cpu: Cpu, a: number, size: number): number {
  return size === 2 ? read32(cpu, a) : size === 1 ? read16(cpu, a) : read8(cpu, a);
}

export function writeMem(cpu: Cpu, a: number, size: number, v: number): void {
  if (size === 2) write32(cpu, a, v);
  else if (size === 1) write16(cpu, a, v);
  else write8(cpu, a, v);
}
