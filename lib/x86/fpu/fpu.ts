/**
 * The x87 FPU (SDM Vol 1 ch. 8; Vol 2 pages for D8-DF): eight stack registers, control, status and
 * tag words, the last-instruction pointers, and the FSAVE/FSTENV and FXSAVE images. The CPU decodes
 * ModRM and the effective address and calls `execute`; everything else about the instruction is here.
 *
 * Registers are binary64, not 80-bit, which is where this differs from hardware:
 * - 53-bit significands: precision control "extended" (the FNINIT default) computes like "double";
 *   "double" is exact and "single" is exact for + - * / sqrt. Rounding control is honoured everywhere
 *   it matters (arithmetic, sqrt, FRNDINT, FIST, FBSTP, stores, FSCALE, constants).
 * - binary64 exponent range: results beyond it overflow or underflow at the operation (#O/#U are
 *   raised there instead of at a later store to m64), m80 loads beyond it become infinities or
 *   zeros, and m80/m64int/m80bcd values with more than 53 significant bits are rounded to nearest on
 *   load. Stores of every format are exact, as every binary64 is representable in them.
 * - Unmasked #O/#U with a register destination deliver the masked result (hardware would deliver
 *   the result with its exponent biased by 24576), still setting ES so #MF follows.
 * - Transcendentals use Math.* (about 1 ulp, with exact argument reduction where hardware uses a
 *   66-bit pi); their #P is set for every inexact-by-nature result and C1 is cleared.
 * - #D (denormal operand) comes only from m32fp/m64fp operands: a binary64 subnormal is a normal
 *   number in the 80-bit format, as it is after a hardware load.
 * FPREM/FPREM1 are exact, including the partial remainders (reduction by 2^(D-N), N = 32 + D mod 32,
 * as measured on Intel hardware). FISTTP (SSE3) and the 8087-only encodings raise #UD.
 *
 * Integration (the CPU's side of the contract):
 * - #NM (CR0.EM, CR0.TS) is the CPU's: check it before calling `execute`, `fxsave` or `fxrstor`.
 * - #MF: before each waiting instruction (`fpuInstructionWaits`, and FWAIT when TS is clear), if
 *   `checkPendingException()` the CPU raises #MF (CR0.NE = 1) or asserts IRQ 13 (CR0.NE = 0)
 *   instead of executing it. FXSAVE and FXRSTOR do not wait.
 * - `execute` returns FPU_DONE, FPU_INVALID_OPCODE (raise #UD; no state changed), FPU_WROTE_AX
 *   (FNSTSW AX: set AX = `statusWord()`) or FPU_WROTE_EFLAGS (FCOMI family: EFLAGS = (EFLAGS &
 *   ~FPU_EFLAGS_MASK) | `eflagsOut`). FCMOVcc reads `eflagsIn`, which the CPU sets before `execute`.
 * - Memory faults thrown by the FpuHost leave the FPU unchanged: every instruction reads and writes
 *   memory before it changes any FPU state. FXRSTOR alignment (#GP) is the CPU's.
 */

import type { FpuHost } from "./fpu_host.ts";
import {
  absolute,
  doubleFromBits,
  doubleHi,
  doubleLo,
  exponentOf,
  float32Bits,
  float32Step,
  float32ToDouble,
  float80Out,
  fromFloat80,
  indefinite,
  isDoubleDenormalBits,
  isFloat32Denormal,
  isFloat80Unsupported,
  isSignaling,
  largerNaN,
  MIN_NORMAL,
  negated,
  nextDown,
  nextUp,
  pow2,
  quieted,
  scaled,
  signBit,
  toFloat80,
} from "./float_bits.ts";
import {
  addError,
  divErrorSign,
  mulErrorSign,
  roundTo24Bits,
  roundToIntegral,
  sqrtErrorSign,
} from "./exact_rounding.ts";
import { fromPackedBcd, packedBcdOut, toPackedBcd } from "./packed_bcd.ts";

/** `execute` results. */
export const FPU_DONE = 0;
/** The encoding is not an x87 instruction this FPU implements: raise #UD. No state changed. */
export const FPU_INVALID_OPCODE = 1;
/** FNSTSW AX executed: the CPU sets AX = `statusWord()`. */
export const FPU_WROTE_AX = 2;
/** FCOMI/FCOMIP/FUCOMI/FUCOMIP executed: merge `eflagsOut` under `FPU_EFLAGS_MASK`. */
export const FPU_WROTE_EFLAGS = 3;
/** EFLAGS bits the FCOMI family writes: ZF, PF, CF set from the comparison; OF, SF, AF cleared. */
export const FPU_EFLAGS_MASK = 0x8D5;

// Status word (SDM Vol 1 Figure 8-4).
const IE = 0x0001, DE = 0x0002, ZE = 0x0004, OE = 0x0008, UE = 0x0010, PE = 0x0020, SF = 0x0040;
const ES = 0x0080, C0 = 0x0100, C1 = 0x0200, C2 = 0x0400, C3 = 0x4000, B = 0x8000;
const EXCEPTION_FLAGS = 0x3F;
const CC_ALL = C0 | C1 | C2 | C3;
// EFLAGS bits read by FCMOVcc and written by FCOMI.
const CF = 0x01, PF = 0x04, ZF = 0x40;
/** Largest finite binary64. */
const MAX_DOUBLE = 1.7976931348623157e308;
/** Comparison outcomes, indexing the tables below. */
const GREATER = 0, LESS = 1, EQUAL = 2, UNORDERED = 3;
const CC_OF_RELATION = [0, C0, C3, C3 | C2 | C0];
const EFLAGS_OF_RELATION = [0, CF, ZF, ZF | PF | CF];

/**
 * The constants of FLD1 ... FLDZ (D9 E8-EE) as the nearest binary64, and where the true value lies
 * relative to it (+1 above, -1 below, 0 exact), so each can be rounded per RC. Index = modrm - 0xE8.
 */
const CONSTANTS = new Float64Array([
  1,
  3.321928094887362,
  1.4426950408889634,
  Math.PI,
  0.3010299956639812,
  Math.LN2,
  0,
]);
const CONSTANT_ERR = new Int8Array([0, 1, 1, 1, -1, 1, 0]);

/** True unless opcode/modrm is a non-waiting control instruction (FNINIT, FNCLEX, FNSTCW, FNSTSW, FNSTENV, FNSAVE, FNENI/FNDISI/FNSETPM). */
export function fpuInstructionWaits(opcode: number, modrm: number): boolean {
  const op = opcode & 7;
  if (modrm < 0xC0) {
    const reg = (modrm >> 3) & 7;
    return !((op === 1 && (reg === 6 || reg === 7)) || (op === 5 && (reg === 6 || reg === 7)));
  }
  return !((op === 3 && modrm >= 0xE0 && modrm <= 0xE4) || (op === 7 && modrm === 0xE0));
}

export class Fpu {
  /** EFLAGS as the CPU had it before `execute`; read by FCMOVcc (CF, PF, ZF). */
  eflagsIn = 0;
  /** ZF/PF/CF written by the FCOMI family; valid when `execute` returned FPU_WROTE_EFLAGS. */
  eflagsOut = 0;
  /** Stored and loaded by FXSAVE/FXRSTOR only (no SSE here). */
  mxcsr = 0x1F80;
  /** Set by the CPU in real and virtual-8086 mode: FSTENV/FSAVE/FLDENV/FRSTOR use the real-mode layouts. */
  realModeFormat = false;

  readonly #host: FpuHost;
  /** Physical registers R0-R7; ST(i) is R((top + i) & 7). */
  readonly #st = new Float64Array(8);
  /** 1 where the physical register's tag is "empty". Other tags are derived from the value. */
  readonly #empty = new Uint8Array(8);
  /** Scratch for FRSTOR/FXRSTOR, which must read everything before changing anything. */
  readonly #loadRegs = new Float64Array(8);
  readonly #loadEnv = new Int32Array(8);
  #top = 0;
  #cw = 0x037F;
  /** The status word without TOP (bits 11-13 are kept zero here). */
  #sw = 0;
  #fip = 0;
  #fcs = 0;
  #fop = 0;
  #fdp = 0;
  #fds = 0;
  /** Exception flags raised by the current instruction, merged into #sw by #commit. */
  #exc = 0;
  /** Condition-code bits the current instruction writes, and their values; applied by #commit. */
  #ccMask = 0;
  #ccBits = 0;
  /** The current instruction's m32fp/m64fp operand is a denormal (#D unless a NaN comes first). */
  #memDenormal = false;

  constructor(host: FpuHost) {
    this.#host = host;
    this.reset();
  }

  /** FNINIT: CW = 0x037F, SW = 0, all registers empty, pointers cleared. */
  reset(): void {
    this.#cw = 0x037F;
    this.#sw = 0;
    this.#top = 0;
    this.#empty.fill(1);
    this.#fip = 0;
    this.#fcs = 0;
    this.#fop = 0;
    this.#fdp = 0;
    this.#fds = 0;
  }

  /** The status word, TOP included. */
  statusWord(): number {
    return this.#sw | (this.#top << 11);
  }

  controlWord(): number {
    return this.#cw;
  }

  /** The full tag word (2 bits per physical register: valid, zero, special, empty), as FSTENV stores it. */
  tagWord(): number {
    let tw = 0;
    for (let i = 0; i < 8; i++) tw |= this.#tagOf(i) << (2 * i);
    return tw;
  }

  /** ST(i)'s value (meaningless when empty). */
  st(i: number): number {
    return this.#st[(this.#top + i) & 7];
  }

  /** True when ST(i) is tagged empty. */
  isEmpty(i: number): boolean {
    return this.#empty[(this.#top + i) & 7] !== 0;
  }

  /** SW.ES: an unmasked exception is pending. */
  pendingUnmaskedException(): boolean {
    return (this.#sw & ES) !== 0;
  }

  /** Called by the CPU before each waiting instruction: true means raise #MF (or IRQ 13) instead. */
  checkPendingException(): boolean {
    return (this.#sw & ES) !== 0;
  }

  /**
   * Executes one x87 instruction: `opcode` 0xD8-0xDF, `modrm`, and for memory forms (modrm < 0xC0)
   * the operand's linear address. `opsize16` selects the 16-bit FSTENV/FSAVE layouts. fip/fcs and
   * fdp/fds are the instruction's offset/CS and the operand's offset/segment selector, recorded for
   * FSTENV/FSAVE/FXSAVE by non-control instructions. Returns one of the FPU_* results.
   */
  execute(
    opcode: number,
    modrm: number,
    linearAddr: number,
    opsize16: boolean,
    fip: number,
    fcs: number,
    fdp: number,
    fds: number,
  ): number {
    this.#exc = 0;
    this.#ccMask = 0;
    this.#ccBits = 0;
    this.#memDenormal = false;
    const op = opcode & 7;
    let result: number;
    let control: boolean;
    if (modrm < 0xC0) {
      const reg = (modrm >> 3) & 7;
      control = (op === 1 || op === 5) && reg >= 4;
      result = this.#memoryForm(op, reg, linearAddr, opsize16);
    } else {
      control = (op === 3 && modrm >= 0xE0 && modrm <= 0xE4) || (op === 7 && modrm === 0xE0);
      result = this.#registerForm(op, modrm);
    }
    if (result === FPU_INVALID_OPCODE) return result;
    this.#commit();
    if (!control) {
      this.#fip = fip | 0;
      this.#fcs = fcs & 0xFFFF;
      this.#fop = (op << 8) | modrm;
      if (modrm < 0xC0) {
        this.#fdp = fdp | 0;
        this.#fds = fds & 0xFFFF;
      }
    }
    return result;
  }

  // ---- dispatch ------------------------------------------------------------------------------

  #memoryForm(op: number, reg: number, addr: number, opsize16: boolean): number {
    switch (op) {
      case 0: // D8: m32fp arithmetic
        this.#arithMemory(reg, this.#readF32(addr));
        return FPU_DONE;
      case 1:
        switch (reg) {
          case 0:
            this.#fldF32(addr);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fstF32(addr, reg === 3);
            return FPU_DONE;
          case 4:
            this.#fldenv(addr, opsize16);
            return FPU_DONE;
          case 5:
            this.#setControlWord(this.#host.readU16(addr));
            return FPU_DONE;
          case 6:
            this.#fnstenv(addr, opsize16);
            this.#cw |= EXCEPTION_FLAGS; // FNSTENV masks all exceptions after storing
            return FPU_DONE;
          case 7:
            this.#host.writeU16(addr, this.#cw);
            return FPU_DONE;
          default:
            return FPU_INVALID_OPCODE;
        }
      case 2: // DA: m32int arithmetic
        this.#arithMemory(reg, this.#host.readU32(addr) | 0);
        return FPU_DONE;
      case 3:
        switch (reg) {
          case 0:
            this.#fldInteger(this.#host.readU32(addr) | 0);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fistp(addr, 4, reg === 3);
            return FPU_DONE;
          case 5:
            this.#fldF80(addr);
            return FPU_DONE;
          case 7:
            this.#fstpF80(addr);
            return FPU_DONE;
          default: // 1: FISTTP (SSE3); 4, 6: reserved
            return FPU_INVALID_OPCODE;
        }
      case 4: // DC: m64fp arithmetic
        this.#arithMemory(reg, this.#readF64(addr));
        return FPU_DONE;
      case 5:
        switch (reg) {
          case 0:
            this.#fldF64(addr);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fstF64(addr, reg === 3);
            return FPU_DONE;
          case 4:
            this.#frstor(addr, opsize16);
            return FPU_DONE;
          case 6:
            this.#fnstenv(addr, opsize16);
            this.#saveRegisters(addr + (opsize16 ? 14 : 28));
            this.reset();
            return FPU_DONE;
          case 7:
            this.#host.writeU16(addr, this.statusWord());
            return FPU_DONE;
          default: // 1: FISTTP (SSE3); 5: reserved
            return FPU_INVALID_OPCODE;
        }
      case 6: // DE: m16int arithmetic
        this.#arithMemory(reg, (this.#host.readU16(addr) << 16) >> 16);
        return FPU_DONE;
      default:
        switch (reg) {
          case 0:
            this.#fldInteger((this.#host.readU16(addr) << 16) >> 16);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fistp(addr, 2, reg === 3);
            return FPU_DONE;
          case 4:
            this.#fbld(addr);
            return FPU_DONE;
          case 5: {
            const lo = this.#host.readU32(addr) >>> 0;
            const hi = this.#host.readU32(addr + 4) | 0;
            this.#fldInteger(hi * 4294967296 + lo); // one rounding: correct to nearest
            return FPU_DONE;
          }
          case 6:
            this.#fbstp(addr);
            return FPU_DONE;
          case 7:
            this.#fistp(addr, 8, true);
            return FPU_DONE;
          default: // 1: FISTTP (SSE3)
            return FPU_INVALID_OPCODE;
        }
    }
  }

  #registerForm(op: number, modrm: number): number {
    const reg = (modrm >> 3) & 7;
    const i = modrm & 7;
    switch (op) {
      case 0: // D8: ST(0) = ST(0) op ST(i); D0/D8 compare
        if (reg === 2 || reg === 3) this.#fcomSt(i, false, reg === 3 ? 1 : 0);
        else this.#arithSt(reg, i, false, false);
        return FPU_DONE;
      case 1:
        return this.#d9Register(modrm, reg, i);
      case 2:
        if (modrm < 0xE0) {
          this.#fcmov(reg, i, false);
          return FPU_DONE;
        }
        if (modrm === 0xE9) {
          this.#fcomSt(1, true, 2); // FUCOMPP
          return FPU_DONE;
        }
        return FPU_INVALID_OPCODE;
      case 3:
        if (modrm < 0xE0) {
          this.#fcmov(reg, i, true);
          return FPU_DONE;
        }
        switch (modrm) {
          case 0xE0: // FNENI, FNDISI, FNSETPM: 8087/287 leftovers, no-ops since the 387
          case 0xE1:
          case 0xE4:
            return FPU_DONE;
          case 0xE2: // FNCLEX
            this.#sw &= ~(EXCEPTION_FLAGS | SF | ES | B);
            return FPU_DONE;
          case 0xE3:
            this.reset();
            return FPU_DONE;
        }
        if (reg === 5 || reg === 6) return this.#fcomi(i, reg === 5, false); // E8 FUCOMI, F0 FCOMI
        return FPU_INVALID_OPCODE;
      case 4: // DC: ST(i) = ST(i) op ST(0) (sub/div reversed); D0/D8 are FCOM/FCOMP aliases
        if (reg === 2 || reg === 3) this.#fcomSt(i, false, reg === 3 ? 1 : 0);
        else this.#arithSt(reg >= 4 ? reg ^ 1 : reg, i, true, false);
        return FPU_DONE;
      case 5:
        switch (reg) {
          case 0: // FFREE
            this.#empty[(this.#top + i) & 7] = 1;
            return FPU_DONE;
          case 1: // FXCH alias
            this.#fxch(i);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fstSt(i, reg === 3);
            return FPU_DONE;
          case 4:
          case 5:
            this.#fcomSt(i, true, reg === 5 ? 1 : 0); // FUCOM, FUCOMP
            return FPU_DONE;
          default:
            return FPU_INVALID_OPCODE;
        }
      case 6: // DE: the popping forms
        if (reg === 2) {
          this.#fcomSt(i, false, 1); // FCOMP alias
          return FPU_DONE;
        }
        if (reg === 3) {
          if (i !== 1) return FPU_INVALID_OPCODE;
          this.#fcomSt(1, false, 2); // FCOMPP
          return FPU_DONE;
        }
        this.#arithSt(reg >= 4 ? reg ^ 1 : reg, i, true, true);
        return FPU_DONE;
      default:
        switch (reg) {
          case 0: // FFREEP (undocumented, but every CPU since the 287 has it)
            this.#empty[(this.#top + i) & 7] = 1;
            this.#pop();
            return FPU_DONE;
          case 1: // FXCH alias
            this.#fxch(i);
            return FPU_DONE;
          case 2: // FSTP aliases
          case 3:
            this.#fstSt(i, true);
            return FPU_DONE;
          case 4:
            return modrm === 0xE0 ? FPU_WROTE_AX : FPU_INVALID_OPCODE;
          case 5:
          case 6:
            return this.#fcomi(i, reg === 5, true); // E8 FUCOMIP, F0 FCOMIP
          default:
            return FPU_INVALID_OPCODE;
        }
    }
  }

  #d9Register(modrm: number, reg: number, i: number): number {
    switch (reg) {
      case 0:
        this.#fldSt(i);
        return FPU_DONE;
      case 1:
        this.#fxch(i);
        return FPU_DONE;
      case 2:
        return modrm === 0xD0 ? FPU_DONE : FPU_INVALID_OPCODE; // FNOP
      case 3: // FSTP1 alias
        this.#fstSt(i, true);
        return FPU_DONE;
    }
    switch (modrm) {
      case 0xE0: // FCHS
        if (!this.#underflowSt0()) this.#set(0, negated(this.#get(0)));
        this.#setCc(C1, 0);
        return FPU_DONE;
      case 0xE1: // FABS
        if (!this.#underflowSt0()) this.#set(0, absolute(this.#get(0)));
        this.#setCc(C1, 0);
        return FPU_DONE;
      case 0xE4:
        this.#ftst();
        return FPU_DONE;
      case 0xE5:
        this.#fxam();
        return FPU_DONE;
      case 0xE8:
      case 0xE9:
      case 0xEA:
      case 0xEB:
      case 0xEC:
      case 0xED:
      case 0xEE:
        this.#fldConstant(modrm - 0xE8);
        return FPU_DONE;
      case 0xF0:
        this.#f2xm1();
        return FPU_DONE;
      case 0xF1:
        this.#fyl2x(false);
        return FPU_DONE;
      case 0xF2:
        this.#trig(2);
        return FPU_DONE;
      case 0xF3:
        this.#fpatan();
        return FPU_DONE;
      case 0xF4:
        this.#fxtract();
        return FPU_DONE;
      case 0xF5:
        this.#fprem(true);
        return FPU_DONE;
      case 0xF6: // FDECSTP
        this.#top = (this.#top - 1) & 7;
        this.#setCc(C1, 0);
        return FPU_DONE;
      case 0xF7: // FINCSTP
        this.#top = (this.#top + 1) & 7;
        this.#setCc(C1, 0);
        return FPU_DONE;
      case 0xF8:
        this.#fprem(false);
        return FPU_DONE;
      case 0xF9:
        this.#fyl2x(true);
        return FPU_DONE;
      case 0xFA:
        this.#fsqrt();
        return FPU_DONE;
      case 0xFB:
        this.#trig(3);
        return FPU_DONE;
      case 0xFC:
        this.#frndint();
        return FPU_DONE;
      case 0xFD:
        this.#fscale();
        return FPU_DONE;
      case 0xFE:
        this.#trig(0);
        return FPU_DONE;
      case 0xFF:
        this.#trig(1);
        return FPU_DONE;
      default:
        return FPU_INVALID_OPCODE;
    }
  }

  // ---- stack, tags, exceptions ----------------------------------------------------------------

  #get(i: number): number {
    return this.#st[(this.#top + i) & 7];
  }

  #set(i: number, v: number): void {
    const p = (this.#top + i) & 7;
    this.#st[p] = v;
    this.#empty[p] = 0;
  }

  #isEmpty(i: number): boolean {
    return this.#empty[(this.#top + i) & 7] !== 0;
  }

  #push(v: number): void {
    const p = (this.#top - 1) & 7;
    this.#top = p;
    this.#st[p] = v;
    this.#empty[p] = 0;
  }

  #pop(): void {
    this.#empty[this.#top] = 1;
    this.#top = (this.#top + 1) & 7;
  }

  /** The 2-bit tag of physical register p: 0 valid, 1 zero, 2 special (NaN, infinity), 3 empty. */
  #tagOf(p: number): number {
    if (this.#empty[p]) return 3;
    const v = this.#st[p];
    if (v === 0) return 1;
    return v - v === 0 ? 0 : 2; // NaN and infinities fail x - x === 0
  }

  #setCc(mask: number, bits: number): void {
    this.#ccMask |= mask;
    this.#ccBits = (this.#ccBits & ~mask) | bits;
  }

  /** Merges the instruction's exception flags and condition codes into SW; ES/B for unmasked ones. */
  #commit(): void {
    let sw = (this.#sw & ~this.#ccMask) | this.#ccBits | this.#exc;
    if ((this.#exc & ~this.#cw & EXCEPTION_FLAGS) !== 0) sw |= ES | B;
    this.#sw = sw;
  }

  #masked(flag: number): boolean {
    return (this.#cw & flag) !== 0;
  }

  /** An unmasked #I, #Z or #D was raised: the destination must stay unchanged (and nothing pops). */
  #blocked(): boolean {
    return (this.#exc & ~this.#cw & (IE | ZE | DE)) !== 0;
  }

  /** As #blocked, for memory destinations, where unmasked #O and #U also suppress the store. */
  #storeBlocked(): boolean {
    return (this.#exc & ~this.#cw & (IE | ZE | DE | OE | UE)) !== 0;
  }

  #stackUnderflow(): void {
    this.#exc |= IE | SF;
    this.#setCc(C1, 0);
  }

  #stackOverflow(): void {
    this.#exc |= IE | SF;
    this.#setCc(C1, C1);
  }

  /** For one-operand instructions on ST(0): true (and the masked response done) if ST(0) is empty. */
  #underflowSt0(): boolean {
    if (!this.#isEmpty(0)) return false;
    this.#stackUnderflow();
    if (this.#masked(IE)) this.#set(0, indefinite());
    return true;
  }

  /** Checks there is room to push; if not, raises stack overflow (masked: pushes the indefinite). */
  #canPush(): boolean {
    if (this.#empty[(this.#top - 1) & 7]) return true;
    this.#stackOverflow();
    if (this.#masked(IE)) this.#push(indefinite());
    return false;
  }

  /** Result for operands of which at least one is a NaN (SDM Vol 1 Table 4-7); #I for an SNaN. */
  #nanResult(a: number, b: number): number {
    const aNaN = a !== a, bNaN = b !== b;
    const aSignaling = aNaN && isSignaling(a), bSignaling = bNaN && isSignaling(b);
    if (aSignaling || bSignaling) this.#exc |= IE;
    if (aNaN && bNaN) {
      if (aSignaling === bSignaling) return quieted(largerNaN(a, b));
      return quieted(aSignaling ? b : a);
    }
    return quieted(aNaN ? a : b);
  }

  #invalid(): number {
    this.#exc |= IE;
    return indefinite();
  }

  // ---- rounding ------------------------------------------------------------------------------

  /**
   * Rounds per RC (and PC when `usePc`) the result `r`, the nearest binary64 to an exact result
   * of finite operands with err = sign(exact - r); r = ±inf means the exact result overflowed.
   * Raises #O, #U, #P and sets C1 ("rounded up", i.e. away from zero).
   */
  #finish(r: number, err: number, usePc: boolean): number {
    const rc = (this.#cw >>> 10) & 3;
    if (r === Infinity || r === -Infinity) return this.#overflow(r > 0, rc);
    if (err !== 0 && rc !== 0) {
      const adjust = rc === 1 ? err < 0 : rc === 2 ? err > 0 : (r > 0 && err < 0) || (r < 0 && err > 0);
      if (adjust) {
        r = err < 0 ? nextDown(r) : nextUp(r);
        err = -err;
        if (r === Infinity || r === -Infinity) return this.#overflow(r > 0, rc);
      }
    }
    if (usePc && (this.#cw & 0x300) === 0) {
      const s = roundTo24Bits(r, rc);
      if (s !== r) {
        err = r > s ? 1 : -1;
        r = s;
        if (r === Infinity || r === -Infinity) return this.#overflow(r > 0, rc);
      }
    }
    const mag = r < 0 ? -r : r;
    if (err !== 0) {
      const up = r !== 0 && (r > 0) === (err < 0);
      this.#exc |= PE;
      this.#setCc(C1, up ? C1 : 0);
      if (mag < MIN_NORMAL || (mag === MIN_NORMAL && up)) this.#exc |= UE;
    } else {
      this.#setCc(C1, 0);
      // Unmasked, #U reports tiny results even when exact.
      if (r !== 0 && mag < MIN_NORMAL && !this.#masked(UE)) this.#exc |= UE;
    }
    return r;
  }

  #overflow(positive: boolean, rc: number): number {
    this.#exc |= OE | PE;
    const toInfinity = rc === 0 || (rc === 2 && positive) || (rc === 1 && !positive);
    this.#setCc(C1, toInfinity ? C1 : 0);
    if (toInfinity) return positive ? Infinity : -Infinity;
    return positive ? MAX_DOUBLE : -MAX_DOUBLE;
  }

  /** An approximate (transcendental) result: #P, plus #O/#U by range; C1 cleared. */
  #approximate(r: number): number {
    this.#setCc(C1, 0);
    if (r === Infinity || r === -Infinity) return this.#overflow(r > 0, (this.#cw >>> 10) & 3);
    this.#exc |= PE;
    if (r !== 0 && (r < 0 ? -r : r) < MIN_NORMAL) this.#exc |= UE;
    return r;
  }

  // ---- arithmetic ----------------------------------------------------------------------------

  /**
   * a op b for the ModRM reg-field operations: 0 add, 1 mul, 4 a - b, 5 b - a, 6 a / b, 7 b / a.
   * Raises exceptions into #exc; the caller checks #blocked before writing the result.
   */
  #arith(op: number, a: number, b: number): number {
    this.#setCc(C1, 0);
    if (op === 5 || op === 7) {
      const t = a;
      a = b;
      b = t;
      op--;
    }
    if (a !== a || b !== b) return this.#nanResult(a, b);
    switch (op) {
      case 0:
        return this.#add(a, b);
      case 1:
        return this.#mul(a, b);
      case 4:
        return this.#add(a, -b);
      default:
        return this.#div(a, b);
    }
  }

  /** Raises #D for a denormal memory operand; true when it is unmasked (nothing more may happen). */
  #denormalStops(): boolean {
    if (!this.#memDenormal) return false;
    this.#exc |= DE;
    return !this.#masked(DE);
  }

  #add(a: number, b: number): number {
    if ((a === Infinity && b === -Infinity) || (a === -Infinity && b === Infinity)) return this.#invalid();
    if (this.#denormalStops()) return 0;
    let s = a + b;
    if (a - a !== 0 || b - b !== 0) return s; // an infinite operand: exact
    if (s === 0) {
      // Exact zero: +0 except in round-down, where opposite signs (or -0 + -0) give -0.
      if (((this.#cw >>> 10) & 3) === 1 && (signBit(a) || signBit(b))) s = -0;
      return s;
    }
    if (s === Infinity || s === -Infinity) return this.#finish(s, 0, true);
    return this.#finish(s, Math.sign(addError(a, b, s)), true);
  }

  #mul(a: number, b: number): number {
    const aInf = a === Infinity || a === -Infinity, bInf = b === Infinity || b === -Infinity;
    if ((aInf && b === 0) || (bInf && a === 0)) return this.#invalid();
    if (this.#denormalStops()) return 0;
    const p = a * b;
    if (aInf || bInf || a === 0 || b === 0) return p; // exact; JS gets the sign right
    if (p === Infinity || p === -Infinity) return this.#finish(p, 0, true);
    return this.#finish(p, mulErrorSign(a, b, p), true);
  }

  #div(a: number, b: number): number {
    const aInf = a === Infinity || a === -Infinity, bInf = b === Infinity || b === -Infinity;
    if ((aInf && bInf) || (a === 0 && b === 0)) return this.#invalid();
    if (b === 0) {
      this.#exc |= ZE;
      if (this.#memDenormal) this.#exc |= DE;
      return a / b;
    }
    if (this.#denormalStops()) return 0;
    const q = a / b;
    if (aInf || bInf || a === 0) return q;
    if (q === Infinity || q === -Infinity) return this.#finish(q, 0, true);
    return this.#finish(q, divErrorSign(a, b, q), true);
  }

  /** D8/DA/DC/DE memory forms: ST(0) = ST(0) op operand, or FCOM/FCOMP (FICOM/FICOMP). */
  #arithMemory(reg: number, v: number): void {
    if (reg === 2 || reg === 3) {
      const rel = this.#relate(this.#get(0), this.#isEmpty(0), v, false, false);
      this.#setCc(CC_ALL, CC_OF_RELATION[rel]);
      if (reg === 3 && !this.#blocked()) this.#pop();
      return;
    }
    if (this.#underflowSt0()) return;
    const r = this.#arith(reg, this.#get(0), v);
    if (!this.#blocked()) this.#set(0, r);
  }

  /** Register forms: ST(0) = ST(0) op ST(i), or (toSti) ST(i) = ST(i) op ST(0); optionally pop. */
  #arithSt(op: number, i: number, toSti: boolean, pop: boolean): void {
    const dest = toSti ? i : 0;
    if (this.#isEmpty(0) || this.#isEmpty(i)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) {
        this.#set(dest, indefinite());
        if (pop) this.#pop();
      }
      return;
    }
    const r = this.#arith(op, this.#get(dest), this.#get(toSti ? 0 : i));
    if (this.#blocked()) return;
    this.#set(dest, r);
    if (pop) this.#pop();
  }

  // ---- comparisons ---------------------------------------------------------------------------

  /** Compares a with b: GREATER, LESS, EQUAL or UNORDERED; #I for empty operands, SNaNs and (unless `quiet`) QNaNs. */
  #relate(a: number, aEmpty: boolean, b: number, bEmpty: boolean, quiet: boolean): number {
    this.#setCc(C1, 0);
    if (aEmpty || bEmpty) {
      this.#stackUnderflow();
      return UNORDERED;
    }
    if (a !== a || b !== b) {
      if (!quiet || isSignaling(a) || isSignaling(b)) this.#exc |= IE;
      return UNORDERED;
    }
    if (this.#memDenormal) this.#exc |= DE;
    return a > b ? GREATER : a < b ? LESS : EQUAL;
  }

  /** FCOM/FCOMP/FCOMPP/FUCOM* on ST(0) and ST(i), popping `pops` times unless an unmasked #I/#D stops it. */
  #fcomSt(i: number, quiet: boolean, pops: number): void {
    const rel = this.#relate(this.#get(0), this.#isEmpty(0), this.#get(i), this.#isEmpty(i), quiet);
    this.#setCc(CC_ALL & ~C1, CC_OF_RELATION[rel]);
    if (this.#blocked()) return;
    for (let n = 0; n < pops; n++) this.#pop();
  }

  #fcomi(i: number, quiet: boolean, pop: boolean): number {
    const rel = this.#relate(this.#get(0), this.#isEmpty(0), this.#get(i), this.#isEmpty(i), quiet);
    if (this.#blocked()) return FPU_DONE;
    this.eflagsOut = EFLAGS_OF_RELATION[rel];
    if (pop) this.#pop();
    return FPU_WROTE_EFLAGS;
  }

  #ftst(): void {
    const rel = this.#relate(this.#get(0), this.#isEmpty(0), 0, false, false);
    this.#setCc(CC_ALL & ~C1, CC_OF_RELATION[rel]);
  }

  /** FXAM: C3 C2 C0 classify ST(0) (SDM FXAM table), C1 = its sign. */
  #fxam(): void {
    const v = this.#get(0);
    const sign = signBit(v) ? C1 : 0;
    let cls: number;
    if (this.#isEmpty(0)) cls = C3 | C0;
    else if (v !== v) cls = C0;
    else if (v === Infinity || v === -Infinity) cls = C2 | C0;
    else if (v === 0) cls = C3;
    else cls = C2; // binary64 subnormals are normal in the 80-bit format
    this.#setCc(CC_ALL, cls | sign);
  }

  #fcmov(reg: number, i: number, negate: boolean): void {
    const f = this.eflagsIn;
    let cond: boolean;
    switch (reg & 3) {
      case 0:
        cond = (f & CF) !== 0;
        break;
      case 1:
        cond = (f & ZF) !== 0;
        break;
      case 2:
        cond = (f & (CF | ZF)) !== 0;
        break;
      default:
        cond = (f & PF) !== 0;
    }
    this.#setCc(C1, 0);
    if (this.#isEmpty(0) || this.#isEmpty(i)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) this.#set(0, indefinite());
      return;
    }
    if (cond !== negate) this.#set(0, this.#get(i));
  }

  // ---- loads ---------------------------------------------------------------------------------

  /** Reads an m32fp operand; notes a denormal for #D. */
  #readF32(addr: number): number {
    const bits = this.#host.readU32(addr);
    this.#memDenormal = isFloat32Denormal(bits);
    return float32ToDouble(bits);
  }

  /** Reads an m64fp operand; notes a denormal for #D. */
  #readF64(addr: number): number {
    const lo = this.#host.readU32(addr);
    const hi = this.#host.readU32(addr + 4);
    this.#memDenormal = isDoubleDenormalBits(hi, lo);
    return doubleFromBits(hi, lo);
  }

  /** Pushes a value converted from m32fp/m64fp: overflow first, then #I for an SNaN, then #D. */
  #fldConverted(v: number): void {
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    if (v !== v) {
      if (isSignaling(v)) {
        this.#exc |= IE;
        if (!this.#masked(IE)) return;
        v = quieted(v);
      }
    } else if (this.#denormalStops()) {
      return;
    }
    this.#push(v);
  }

  #fldF32(addr: number): void {
    this.#fldConverted(this.#readF32(addr));
  }

  #fldF64(addr: number): void {
    this.#fldConverted(this.#readF64(addr));
  }

  #fldF80(addr: number): void {
    const lo = this.#host.readU32(addr);
    const hi = this.#host.readU32(addr + 4);
    const se = this.#host.readU16(addr + 8);
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    if (isFloat80Unsupported(hi, se)) {
      this.#exc |= IE;
      if (this.#masked(IE)) this.#push(indefinite());
      return;
    }
    this.#push(fromFloat80(lo, hi, se)); // no #I for an SNaN: no conversion in hardware
  }

  #fldInteger(v: number): void {
    this.#setCc(C1, 0);
    if (this.#canPush()) this.#push(v);
  }

  #fbld(addr: number): void {
    const lo = this.#host.readU32(addr);
    const mid = this.#host.readU32(addr + 4);
    const hi = this.#host.readU16(addr + 8);
    this.#setCc(C1, 0);
    if (this.#canPush()) this.#push(fromPackedBcd(lo, mid, hi));
  }

  #fldSt(i: number): void {
    const srcEmpty = this.#isEmpty(i);
    const v = this.#get(i);
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    if (srcEmpty) {
      this.#stackUnderflow();
      if (this.#masked(IE)) this.#push(indefinite());
      return;
    }
    this.#push(v);
  }

  #fldConstant(index: number): void {
    let v = CONSTANTS[index];
    const err = CONSTANT_ERR[index];
    const rc = (this.#cw >>> 10) & 3;
    if ((err > 0 && rc === 2) || (err < 0 && (rc === 1 || rc === 3))) v = err > 0 ? nextUp(v) : nextDown(v);
    this.#setCc(C1, 0);
    if (this.#canPush()) this.#push(v);
  }

  // ---- stores --------------------------------------------------------------------------------

  /** FST/FSTP m32fp. */
  #fstF32(addr: number, pop: boolean): void {
    let bits: number;
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      bits = 0xFFC00000;
    } else {
      const v = this.#get(0);
      this.#setCc(C1, 0);
      if (v !== v) {
        if (isSignaling(v)) this.#exc |= IE;
        bits = float32Bits(quieted(v));
      } else {
        bits = float32Bits(this.#toFloat32(v));
      }
      if (this.#storeBlocked()) return;
    }
    this.#host.writeU32(addr, bits);
    if (pop) this.#pop();
  }

  /** `v` rounded to binary32 per RC, raising #O/#U/#P and setting C1. */
  #toFloat32(v: number): number {
    this.#setCc(C1, 0);
    let f = Math.fround(v);
    if (f === v) {
      // Unmasked, #U reports tiny results even when exact.
      if (f !== 0 && (f < 0 ? -f : f) < 1.1754943508222875e-38 && !this.#masked(UE)) this.#exc |= UE;
      return f;
    }
    const rc = (this.#cw >>> 10) & 3;
    if ((rc === 1 && f > v) || (rc === 2 && f < v) || (rc === 3 && (f < 0 ? -f : f) > (v < 0 ? -v : v))) {
      // One binary32 step toward the exact value.
      const towardZero = (f > v) === (f > 0) && f !== 0;
      f = f === 0 ? (v > 0 ? 1.401298464324817e-45 : -1.401298464324817e-45) : float32Step(f, !towardZero);
    }
    const fm = f < 0 ? -f : f, vm = v < 0 ? -v : v;
    this.#exc |= PE;
    if (fm > vm) this.#setCc(C1, C1);
    if (fm === Infinity || vm >= 3.402823669209385e38) this.#exc |= OE; // 2^128
    else if (vm < 1.1754943508222875e-38) this.#exc |= UE; // tiny before rounding, and inexact
    return f;
  }

  /** FST/FSTP m64fp: exact, except that an SNaN is quieted under #I. */
  #fstF64(addr: number, pop: boolean): void {
    let v: number;
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      v = indefinite();
    } else {
      v = this.#get(0);
      this.#setCc(C1, 0);
      if (v !== v && isSignaling(v)) {
        this.#exc |= IE;
        if (!this.#masked(IE)) return;
        v = quieted(v);
      }
    }
    this.#host.writeU32(addr, doubleLo(v));
    this.#host.writeU32(addr + 4, doubleHi(v));
    if (pop) this.#pop();
  }

  /** FSTP m80fp: exact, SNaNs stored as they are. */
  #fstpF80(addr: number): void {
    let v: number;
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      v = indefinite();
    } else {
      v = this.#get(0);
      this.#setCc(C1, 0);
    }
    toFloat80(v);
    this.#host.writeU32(addr, float80Out[0]);
    this.#host.writeU32(addr + 4, float80Out[1]);
    this.#host.writeU16(addr + 8, float80Out[2]);
    this.#pop();
  }

  /** FIST/FISTP m16int/m32int/m64int: round per RC; out of range or NaN stores the integer indefinite under #I. */
  #fistp(addr: number, sizeBytes: number, pop: boolean): void {
    let r: number;
    let indef = false;
    this.#setCc(C1, 0);
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      indef = true;
      r = 0;
    } else {
      const v = this.#get(0);
      r = roundToIntegral(v, (this.#cw >>> 10) & 3);
      const limit = sizeBytes === 2 ? 32768 : sizeBytes === 4 ? 2147483648 : 9223372036854775808;
      if (!(r >= -limit && r < limit)) { // also NaN
        this.#exc |= IE;
        if (!this.#masked(IE)) return;
        indef = true;
      } else if (r !== v) {
        this.#exc |= PE;
        if ((r < 0 ? -r : r) > (v < 0 ? -v : v)) this.#setCc(C1, C1);
      }
    }
    if (sizeBytes === 2) {
      this.#host.writeU16(addr, indef ? 0x8000 : r & 0xFFFF);
    } else if (sizeBytes === 4) {
      this.#host.writeU32(addr, indef ? 0x80000000 : r | 0);
    } else if (indef) {
      this.#host.writeU32(addr, 0);
      this.#host.writeU32(addr + 4, 0x80000000);
    } else {
      const hi = Math.floor(r / 4294967296);
      this.#host.writeU32(addr, (r - hi * 4294967296) >>> 0);
      this.#host.writeU32(addr + 4, hi | 0);
    }
    if (pop) this.#pop();
  }

  /** FBSTP m80bcd: round per RC; beyond 18 digits or NaN stores the BCD indefinite under #I. */
  #fbstp(addr: number): void {
    let w0 = 0, w1 = 0xC0000000, w2 = 0xFFFF; // the packed BCD indefinite
    this.#setCc(C1, 0);
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
    } else {
      const v = this.#get(0);
      const r = roundToIntegral(v, (this.#cw >>> 10) & 3);
      if (!(r > -1e18 && r < 1e18)) {
        this.#exc |= IE;
        if (!this.#masked(IE)) return;
      } else {
        if (r !== v) {
          this.#exc |= PE;
          if ((r < 0 ? -r : r) > (v < 0 ? -v : v)) this.#setCc(C1, C1);
        }
        toPackedBcd(r, signBit(r));
        w0 = packedBcdOut[0];
        w1 = packedBcdOut[1];
        w2 = packedBcdOut[2];
      }
    }
    this.#host.writeU32(addr, w0);
    this.#host.writeU32(addr + 4, w1);
    this.#host.writeU16(addr + 8, w2);
    this.#pop();
  }

  /** FST/FSTP ST(i). */
  #fstSt(i: number, pop: boolean): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      this.#set(i, indefinite());
    } else {
      this.#set(i, this.#get(0));
    }
    if (pop) this.#pop();
  }

  #fxch(i: number): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0) || this.#isEmpty(i)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      if (this.#isEmpty(0)) this.#set(0, indefinite());
      if (this.#isEmpty(i)) this.#set(i, indefinite());
    }
    const t = this.#get(0);
    this.#set(0, this.#get(i));
    this.#set(i, t);
  }

  // ---- arithmetic on the stack top -----------------------------------------------------------

  #fsqrt(): void {
    if (this.#underflowSt0()) return;
    this.#setCc(C1, 0);
    const x = this.#get(0);
    let r: number;
    if (x !== x) r = this.#nanResult(x, x);
    else if (x < 0) r = this.#invalid();
    else if (x === 0 || x === Infinity) r = x; // sqrt(-0) = -0
    else {
      const s = Math.sqrt(x);
      r = this.#finish(s, sqrtErrorSign(x, s), true);
    }
    if (!this.#blocked()) this.#set(0, r);
  }

  #frndint(): void {
    if (this.#underflowSt0()) return;
    this.#setCc(C1, 0);
    const x = this.#get(0);
    let r: number;
    if (x !== x) r = this.#nanResult(x, x);
    else {
      r = roundToIntegral(x, (this.#cw >>> 10) & 3);
      if (r !== x) {
        this.#exc |= PE;
        if ((r < 0 ? -r : r) > (x < 0 ? -x : x)) this.#setCc(C1, C1);
      }
    }
    if (!this.#blocked()) this.#set(0, r);
  }

  /** FSCALE: ST(0) * 2^trunc(ST(1)), rounded once. */
  #fscale(): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0) || this.#isEmpty(1)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) this.#set(0, indefinite());
      return;
    }
    const x = this.#get(0), y = this.#get(1);
    let r: number;
    if (x !== x || y !== y) r = this.#nanResult(x, y);
    else if (y === Infinity) r = x === 0 ? this.#invalid() : x * Infinity;
    else if (y === -Infinity) r = x === Infinity || x === -Infinity ? this.#invalid() : x * 0;
    else if (x === 0 || x === Infinity || x === -Infinity) r = x;
    else {
      const n = Math.trunc(Math.max(-1e5, Math.min(1e5, y)));
      const e = exponentOf(x) + n;
      if (e > 1023) r = this.#finish(x > 0 ? Infinity : -Infinity, 0, false);
      else if (e >= -1022) r = scaled(x, n);
      else {
        const m = scaled(x, -exponentOf(x)); // significand in [1, 2)
        let s: number, err: number;
        if (e < -1100) {
          s = x > 0 ? 0 : -0;
          err = x > 0 ? 1 : -1;
        } else {
          s = (m * 9.332636185032189e-302) * pow2(e + 1000); // m * 2^-1000 is exact; one rounding
          err = s === 0 ? (x > 0 ? 1 : -1) : Math.sign(m - scaled(s, -e));
        }
        r = this.#finish(s, err, false);
      }
    }
    if (!this.#blocked()) this.#set(0, r);
  }

  /** FXTRACT: ST(0) becomes its exponent and the significand is pushed. */
  #fxtract(): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0) || !this.#isEmpty(7)) {
      if (this.#isEmpty(0)) this.#stackUnderflow();
      else this.#stackOverflow();
      if (this.#masked(IE)) {
        this.#set(0, indefinite());
        this.#push(indefinite());
      }
      return;
    }
    const x = this.#get(0);
    let e: number, m: number;
    if (x !== x) e = m = this.#nanResult(x, x);
    else if (x === 0) {
      this.#exc |= ZE;
      e = -Infinity;
      m = x;
    } else if (x === Infinity || x === -Infinity) {
      e = Infinity;
      m = x;
    } else {
      e = exponentOf(x);
      m = scaled(x, -e);
    }
    if (this.#blocked()) return;
    this.#set(0, e);
    this.#push(m);
  }

  /** FPREM (truncating) and FPREM1 (IEEE, round-to-nearest quotient): exact, maybe partial. */
  #fprem(ieee: boolean): void {
    this.#setCc(C1 | C2, 0);
    if (this.#isEmpty(0) || this.#isEmpty(1)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) this.#set(0, indefinite());
      return;
    }
    const a = this.#get(0), b = this.#get(1);
    let r: number;
    if (a !== a || b !== b) r = this.#nanResult(a, b);
    else if (a === Infinity || a === -Infinity || b === 0) r = this.#invalid();
    else if (a === 0 || b === Infinity || b === -Infinity) {
      r = a;
      this.#setCc(C0 | C1 | C3, 0);
    } else {
      const d = exponentOf(a) - exponentOf(b);
      const ab = b < 0 ? -b : b;
      if (d >= 64) {
        // Partial remainder: reduce by b * 2^(d - n), quotient truncated; C2 says "not done".
        r = a % scaled(ab, d - ((d & 31) | 32));
        this.#setCc(C0 | C2 | C3, C2);
      } else {
        const aa = a < 0 ? -a : a;
        let rm = aa % ab; // exact
        const r8 = aa % (ab * 8); // (ab * 8 may overflow to inf: then the quotient is below 8 anyway)
        let q = Math.round((r8 - rm) / ab); // the quotient's low three bits
        if (ieee) {
          const half = exponentOf(ab) > 0
            ? rm > ab * 0.5 || (rm === ab * 0.5 && (q & 1) === 1)
            : rm * 2 > ab || (rm * 2 === ab && (q & 1) === 1);
          if (half) {
            rm -= ab; // exact (Sterbenz)
            q++;
          }
        }
        r = a < 0 ? -rm : rm;
        if (r === 0) r = a < 0 ? -0 : 0;
        this.#setCc(C0 | C1 | C3, (q & 4 ? C0 : 0) | (q & 2 ? C3 : 0) | (q & 1 ? C1 : 0));
      }
    }
    if (!this.#blocked()) this.#set(0, r);
  }

  // ---- transcendentals -----------------------------------------------------------------------

  /** FSIN (0), FCOS (1), FPTAN (2), FSINCOS (3). |x| >= 2^63 sets C2 and changes nothing. */
  #trig(kind: number): void {
    this.#setCc(C1 | C2, 0);
    const pushes = kind >= 2;
    if (this.#isEmpty(0) || (pushes && !this.#isEmpty(7))) {
      if (this.#isEmpty(0)) this.#stackUnderflow();
      else this.#stackOverflow();
      if (this.#masked(IE)) {
        this.#set(0, indefinite());
        if (pushes) this.#push(indefinite());
      }
      return;
    }
    const x = this.#get(0);
    let r0: number, r1 = 0;
    if (x !== x) r0 = r1 = this.#nanResult(x, x);
    else if (x === Infinity || x === -Infinity) r0 = r1 = this.#invalid();
    else if ((x < 0 ? -x : x) >= 9223372036854775808) {
      this.#setCc(C2, C2);
      return;
    } else if (x === 0) {
      r0 = kind === 1 ? 1 : x; // exact: sin(±0) = tan(±0) = ±0, cos(0) = 1
      r1 = 1; // cos(0) for FSINCOS, 1.0 for FPTAN
    } else {
      switch (kind) {
        case 0:
          r0 = this.#approximate(Math.sin(x));
          break;
        case 1:
          r0 = this.#approximate(Math.cos(x));
          break;
        case 2:
          r0 = this.#approximate(Math.tan(x));
          r1 = 1;
          break;
        default:
          r0 = this.#approximate(Math.sin(x));
          r1 = this.#approximate(Math.cos(x));
      }
    }
    if (this.#blocked()) return;
    this.#set(0, r0);
    if (pushes) this.#push(r1);
  }

  /** FPATAN: ST(1) = atan2(ST(1), ST(0)), pop. */
  #fpatan(): void {
    this.#setCc(C1, 0);
    if (this.#binaryUnderflow()) return;
    const x = this.#get(0), y = this.#get(1);
    let r: number;
    if (x !== x || y !== y) r = this.#nanResult(x, y);
    else {
      r = Math.atan2(y, x);
      if (r !== 0) r = this.#approximate(r);
    }
    if (this.#blocked()) return;
    this.#set(1, r);
    this.#pop();
  }

  /** FYL2X: ST(1) = ST(1) * log2(ST(0)); FYL2XP1: ST(1) * log2(ST(0) + 1). Pop. */
  #fyl2x(plusOne: boolean): void {
    this.#setCc(C1, 0);
    if (this.#binaryUnderflow()) return;
    const x = this.#get(0), y = this.#get(1);
    const yInf = y === Infinity || y === -Infinity;
    let r: number;
    if (x !== x || y !== y) r = this.#nanResult(x, y);
    else if (plusOne) {
      if (x === 0) r = yInf ? this.#invalid() : signBit(x) !== signBit(y) ? -0 : 0;
      else if (yInf) r = (x > 0) === (y > 0) ? Infinity : -Infinity;
      else if (y === 0) r = (x > 0) === !signBit(y) ? 0 : -0;
      else r = this.#approximate(y * (Math.log1p(x) * Math.LOG2E));
    } else if (x < 0) r = this.#invalid(); // -0 is not below 0
    else if (x === 0) {
      if (y === 0) r = this.#invalid();
      else {
        if (!yInf) this.#exc |= ZE;
        r = signBit(y) ? Infinity : -Infinity;
      }
    } else if (x === Infinity) r = y === 0 ? this.#invalid() : signBit(y) ? -Infinity : Infinity;
    else if (x === 1) r = yInf ? this.#invalid() : signBit(y) ? -0 : 0;
    else if (yInf) r = (x > 1) === (y > 0) ? Infinity : -Infinity;
    else if (y === 0) r = (x > 1) === !signBit(y) ? 0 : -0;
    else {
      const e = exponentOf(x);
      // log2 of a power of two is exact: then only the multiplication rounds.
      r = scaled(1, e) === x ? this.#mul(y, e) : this.#approximate(y * Math.log2(x));
    }
    if (this.#blocked()) return;
    this.#set(1, r);
    this.#pop();
  }

  /** F2XM1: ST(0) = 2^ST(0) - 1 (defined for -1 <= x <= 1). */
  #f2xm1(): void {
    if (this.#underflowSt0()) return;
    this.#setCc(C1, 0);
    const x = this.#get(0);
    let r: number;
    if (x !== x) r = this.#nanResult(x, x);
    else if (x === 0 || x === Infinity) r = x;
    else if (x === -Infinity) r = -1;
    else if (x === 1 || x === -1) r = x === 1 ? 1 : -0.5;
    else r = this.#approximate(Math.expm1(x * Math.LN2));
    if (!this.#blocked()) this.#set(0, r);
  }

  /** For ST(0)/ST(1) instructions that write ST(1) and pop: true (masked response done) if either is empty. */
  #binaryUnderflow(): boolean {
    if (!this.#isEmpty(0) && !this.#isEmpty(1)) return false;
    this.#stackUnderflow();
    if (this.#masked(IE)) {
      this.#set(1, indefinite());
      this.#pop();
    }
    return true;
  }

  // ---- control word, environment, state images ------------------------------------------------

  /** FLDCW (and the CW of FLDENV/FRSTOR): bit 6 reads as 1, bits 7 and 13-15 as 0; ES/B follow. */
  #setControlWord(cw: number): void {
    this.#cw = (cw & 0x1F3F) | 0x40;
    this.#updateSummary();
  }

  /** ES and B are set exactly when some exception flag is set and unmasked. */
  #updateSummary(): void {
    if ((this.#sw & ~this.#cw & EXCEPTION_FLAGS) !== 0) this.#sw |= ES | B;
    else this.#sw &= ~(ES | B);
  }

  /** FNSTENV image (SDM Vol 1 Figures 8-9 to 8-12): 28 bytes, or 14 with a 16-bit operand size. */
  #fnstenv(addr: number, opsize16: boolean): void {
    const h = this.#host;
    const sw = this.statusWord(), tw = this.tagWord();
    if (this.realModeFormat) {
      const ip = ((this.#fcs << 4) + this.#fip) >>> 0, dp = ((this.#fds << 4) + this.#fdp) >>> 0;
      if (opsize16) {
        h.writeU16(addr, this.#cw);
        h.writeU16(addr + 2, sw);
        h.writeU16(addr + 4, tw);
        h.writeU16(addr + 6, ip & 0xFFFF);
        h.writeU16(addr + 8, ((ip >>> 4) & 0xF000) | this.#fop);
        h.writeU16(addr + 10, dp & 0xFFFF);
        h.writeU16(addr + 12, (dp >>> 4) & 0xF000);
      } else {
        h.writeU32(addr, 0xFFFF0000 | this.#cw);
        h.writeU32(addr + 4, 0xFFFF0000 | sw);
        h.writeU32(addr + 8, 0xFFFF0000 | tw);
        h.writeU32(addr + 12, 0xFFFF0000 | (ip & 0xFFFF));
        h.writeU32(addr + 16, ((ip >>> 4) & 0x0FFFF000) | this.#fop);
        h.writeU32(addr + 20, 0xFFFF0000 | (dp & 0xFFFF));
        h.writeU32(addr + 24, (dp >>> 4) & 0x0FFFF000);
      }
    } else if (opsize16) {
      h.writeU16(addr, this.#cw);
      h.writeU16(addr + 2, sw);
      h.writeU16(addr + 4, tw);
      h.writeU16(addr + 6, this.#fip & 0xFFFF);
      h.writeU16(addr + 8, this.#fcs);
      h.writeU16(addr + 10, this.#fdp & 0xFFFF);
      h.writeU16(addr + 12, this.#fds);
    } else {
      h.writeU32(addr, 0xFFFF0000 | this.#cw);
      h.writeU32(addr + 4, 0xFFFF0000 | sw);
      h.writeU32(addr + 8, 0xFFFF0000 | tw);
      h.writeU32(addr + 12, this.#fip);
      h.writeU32(addr + 16, this.#fcs | (this.#fop << 16));
      h.writeU32(addr + 20, this.#fdp);
      h.writeU32(addr + 24, 0xFFFF0000 | this.#fds);
    }
  }

  /** Reads an FSTENV image into #loadEnv: [cw, sw, tw, fip, fcs, fop, fdp, fds]. Changes nothing. */
  #readEnv(addr: number, opsize16: boolean): void {
    const h = this.#host, e = this.#loadEnv;
    if (opsize16) {
      e[0] = h.readU16(addr);
      e[1] = h.readU16(addr + 2);
      e[2] = h.readU16(addr + 4);
      const w3 = h.readU16(addr + 6),
        w4 = h.readU16(addr + 8),
        w5 = h.readU16(addr + 10),
        w6 = h.readU16(addr + 12);
      if (this.realModeFormat) {
        e[3] = ((w4 & 0xF000) << 4) | w3;
        e[4] = 0;
        e[5] = w4 & 0x7FF;
        e[6] = ((w6 & 0xF000) << 4) | w5;
        e[7] = 0;
      } else {
        e[3] = w3;
        e[4] = w4;
        e[5] = 0;
        e[6] = w5;
        e[7] = w6;
      }
    } else {
      e[0] = h.readU32(addr) & 0xFFFF;
      e[1] = h.readU32(addr + 4) & 0xFFFF;
      e[2] = h.readU32(addr + 8) & 0xFFFF;
      const d3 = h.readU32(addr + 12),
        d4 = h.readU32(addr + 16),
        d5 = h.readU32(addr + 20),
        d6 = h.readU32(addr + 24);
      if (this.realModeFormat) {
        e[3] = ((d4 & 0x0FFFF000) << 4) | (d3 & 0xFFFF);
        e[4] = 0;
        e[5] = d4 & 0x7FF;
        e[6] = ((d6 & 0x0FFFF000) << 4) | (d5 & 0xFFFF);
        e[7] = 0;
      } else {
        e[3] = d3;
        e[4] = d4 & 0xFFFF;
        e[5] = (d4 >>> 16) & 0x7FF;
        e[6] = d5;
        e[7] = d6 & 0xFFFF;
      }
    }
  }

  /** Installs #loadEnv; the tag word only says which registers are empty (the rest is recomputed). */
  #commitEnv(): void {
    const e = this.#loadEnv;
    this.#sw = e[1] & ~0x3800;
    this.#top = (e[1] >> 11) & 7;
    for (let p = 0; p < 8; p++) this.#empty[p] = ((e[2] >> (2 * p)) & 3) === 3 ? 1 : 0;
    this.#fip = e[3];
    this.#fcs = e[4];
    this.#fop = e[5];
    this.#fdp = e[6];
    this.#fds = e[7];
    this.#setControlWord(e[0]);
  }

  #fldenv(addr: number, opsize16: boolean): void {
    this.#readEnv(addr, opsize16);
    this.#commitEnv();
  }

  /** Writes ST(0)..ST(7) as 80-bit values, 10 bytes apart (FSAVE layout). */
  #saveRegisters(addr: number): void {
    for (let i = 0; i < 8; i++) {
      toFloat80(this.#get(i));
      this.#host.writeU32(addr + 10 * i, float80Out[0]);
      this.#host.writeU32(addr + 10 * i + 4, float80Out[1]);
      this.#host.writeU16(addr + 10 * i + 8, float80Out[2]);
    }
  }

  /** Reads 80-bit ST(0)..ST(7) from `addr` with the given stride into #loadRegs. Changes nothing. */
  #readRegisters(addr: number, stride: number): void {
    for (let i = 0; i < 8; i++) {
      const a = addr + stride * i;
      const lo = this.#host.readU32(a), hi = this.#host.readU32(a + 4), se = this.#host.readU16(a + 8);
      this.#loadRegs[i] = fromFloat80(lo, hi, se);
    }
  }

  #frstor(addr: number, opsize16: boolean): void {
    this.#readEnv(addr, opsize16);
    this.#readRegisters(addr + (opsize16 ? 14 : 28), 10);
    this.#commitEnv();
    for (let i = 0; i < 8; i++) this.#st[(this.#top + i) & 7] = this.#loadRegs[i];
  }

  /** FXSAVE (SDM Vol 2 FXSAVE, Table 3-53, 32-bit layout) to a 16-byte aligned 512-byte area. */
  fxsave(linearAddr: number): void {
    const h = this.#host, a = linearAddr;
    let abridged = 0;
    for (let p = 0; p < 8; p++) if (!this.#empty[p]) abridged |= 1 << p;
    h.writeU32(a, this.#cw | (this.statusWord() << 16));
    h.writeU32(a + 4, abridged | (this.#fop << 16));
    h.writeU32(a + 8, this.#fip);
    h.writeU32(a + 12, this.#fcs);
    h.writeU32(a + 16, this.#fdp);
    h.writeU32(a + 20, this.#fds);
    h.writeU32(a + 24, this.mxcsr);
    h.writeU32(a + 28, 0x0000FFBF); // MXCSR_MASK: all but DAZ
    for (let i = 0; i < 8; i++) {
      const r = a + 32 + 16 * i;
      toFloat80(this.#get(i));
      h.writeU32(r, float80Out[0]);
      h.writeU32(r + 4, float80Out[1]);
      h.writeU32(r + 8, float80Out[2]);
      h.writeU32(r + 12, 0);
    }
    for (let off = 160; off < 288; off += 4) h.writeU32(a + off, 0); // XMM0-7: none here
  }

  /** FXRSTOR from a 512-byte FXSAVE area; reads everything before changing anything. */
  fxrstor(linearAddr: number): void {
    const h = this.#host, a = linearAddr, e = this.#loadEnv;
    const d0 = h.readU32(a), d1 = h.readU32(a + 4);
    e[3] = h.readU32(a + 8);
    e[4] = h.readU32(a + 12) & 0xFFFF;
    e[6] = h.readU32(a + 16);
    e[7] = h.readU32(a + 20) & 0xFFFF;
    const mxcsr = h.readU32(a + 24);
    this.#readRegisters(a + 32, 16);
    // Expand the abridged tag: 0 bits are empty registers (11), others get any non-empty tag.
    let tw = 0;
    for (let p = 0; p < 8; p++) if (((d1 >> p) & 1) === 0) tw |= 3 << (2 * p);
    e[0] = d0 & 0xFFFF;
    e[1] = (d0 >>> 16) & 0xFFFF;
    e[2] = tw;
    e[5] = (d1 >>> 16) & 0x7FF;
    this.#commitEnv();
    for (let i = 0; i < 8; i++) this.#st[(this.#top + i) & 7] = this.#loadRegs[i];
    this.mxcsr = mxcsr & 0xFFFF;
  }
}
