/**
 * The x87 FPU (SDM Vol 1 ch. 8; Vol 2 pages for D8-DF): eight stack registers, control, status and
 * tag words, the last-instruction pointers, the FSAVE/FSTENV and FXSAVE images. The CPU decodes
 * ModRM and the effective address and calls `Fpu.execute`. Registers are binary64, not 80-bit: the
 * differences, and the CPU's side of the contract, are listed on the class.
 */

import type { FpuHost } from "./fpu_host.ts";
import {
  doubleBitsOut,
  exponentOf,
  float32Bits,
  float32NaNBits,
  float32NaNToDoubleBits,
  float32Step,
  float32ToDouble,
  float80Out,
  fromFloat80,
  INDEFINITE_HI,
  isDoubleDenormalBits,
  isFloat32Denormal,
  isFloat32NaN,
  isSignalingBits,
  largerNaNIsFirst,
  MIN_NORMAL,
  nextDown,
  nextUp,
  pow2,
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

/** Value slots beyond the eight registers: the memory operand, and a staged NaN result. */
const MEM = 8, RES = 9;

/**
 * One x87 FPU, checked instruction by instruction against the host's x87 (tests/x86/fpu/).
 *
 * Where binary64 registers differ from the 80-bit hardware:
 * - 53-bit significands: precision control "extended" (the FNINIT default) computes like "double";
 *   "double" is exact, and "single" is exact for + - * / sqrt. Rounding control is honoured wherever
 *   a result is rounded (arithmetic, FSQRT, FSCALE, FRNDINT, FIST, FBSTP, stores, constants).
 * - binary64 exponent range: results beyond it overflow or underflow at the operation (#O/#U are
 *   raised there, not at a later store to m64) and tininess is judged at 2^-1022. m80 loads beyond
 *   the range become infinities or zeros; m80, m64int and m80bcd values with more than 53
 *   significant bits, and the constants of FLDPI etc., are rounded silently on load (no #P).
 *   Stores of every format are exact where the value fits the format, as on hardware.
 * - Unmasked #O/#U with a register destination deliver the masked result where hardware would
 *   deliver it with its exponent biased by 24576; ES is still set, so #MF follows.
 * - Transcendentals use Math.* (about 1 ulp, exact argument reduction where hardware uses a 66-bit
 *   pi); #P is set for every inexact-by-nature result and C1 is cleared. Out of their domain,
 *   F2XM1 returns its operand (as AMD does) and FYL2XP1 below -1 raises #I.
 * - #D (denormal operand) comes only from m32fp/m64fp operands: a binary64 subnormal is a normal
 *   number in the 80-bit format, as after a hardware load. An unmasked #D does not stop FLD.
 * - m80 loads of unsupported encodings (pseudo-NaN, pseudo-infinity, unnormal) give the indefinite
 *   without #I; hardware keeps the encoding and raises #I when it is used.
 * FPREM/FPREM1 are exact, partial remainders included (reduction by 2^(D-N), N = 32 + D mod 32, as
 * on the host and in Bochs). FOP, FIP and FDP are recorded for every non-control instruction (no
 * FOP/FDP deprecation). D9 D8+i is FSTPNCE (AMD: FSTP without the underflow check); the other
 * undocumented aliases behave as their documented twins. FISTTP (SSE3) raises #UD.
 *
 * The CPU's side of the contract:
 * - #NM (CR0.EM, CR0.TS) is the CPU's: check it before `execute`, `fxsave` and `fxrstor`.
 * - #MF: before each waiting instruction (`fpuInstructionWaits(opcode, modrm)`, and FWAIT), if
 *   `checkPendingException()` the CPU raises #MF (CR0.NE = 1) or asserts IRQ 13 (CR0.NE = 0)
 *   instead of executing it. FXSAVE and FXRSTOR do not wait.
 * - `execute` returns FPU_DONE; FPU_INVALID_OPCODE (raise #UD; nothing changed); FPU_WROTE_AX
 *   (FNSTSW AX: AX = `statusWord()`); or FPU_WROTE_EFLAGS (FCOMI family: EFLAGS = (EFLAGS &
 *   ~FPU_EFLAGS_MASK) | `eflagsOut`; `eflagsWritten` says the same). FCMOVcc reads `eflagsIn`,
 *   which the CPU sets before `execute`.
 * - A fault thrown by the FpuHost leaves the FPU unchanged: every instruction does all its memory
 *   accesses before it changes FPU state. FXRSTOR's alignment check (#GP) and MXCSR's reserved bits
 *   are the CPU's; `realModeFormat` selects the real-mode FSTENV/FSAVE layouts.
 */
export class Fpu {
  /** EFLAGS as the CPU had it before `execute`; read by FCMOVcc (CF, PF, ZF). */
  eflagsIn = 0;
  /** ZF/PF/CF written by the FCOMI family; valid when `execute` returned FPU_WROTE_EFLAGS. */
  eflagsOut = 0;
  /** True after an instruction that wrote `eflagsOut` (the same news as FPU_WROTE_EFLAGS). */
  eflagsWritten = false;
  /** Stored and loaded by FXSAVE/FXRSTOR only (no SSE here). */
  mxcsr = 0x1F80;
  /** Set by the CPU in real and virtual-8086 mode: FSTENV/FSAVE/FLDENV/FRSTOR use the real-mode layouts. */
  realModeFormat = false;

  readonly #host: FpuHost;
  /**
   * Value slots: 0-7 the physical registers R0-R7 (ST(i) is R((top + i) & 7)), MEM the current
   * memory operand, RES a NaN result being staged. `#w` aliases them as [low, high] words. NaNs are
   * only ever written through `#w` (see float_bits.ts): a NaN handed to #set/#push as a number is a
   * placeholder for the words staged in RES.
   */
  readonly #f = new Float64Array(10);
  readonly #w = new Uint32Array(this.#f.buffer);
  /** 1 where the physical register's tag is "empty". Other tags are derived from the value. */
  readonly #empty = new Uint8Array(8);
  /** Scratch for FRSTOR/FXRSTOR, which must read everything before changing anything. */
  readonly #loadWords = new Uint32Array(16);
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
    for (let p = 0; p < 8; p++) tw |= this.#tagOf(p) << (2 * p);
    return tw;
  }

  /** ST(i)'s value (meaningless when empty; a NaN's payload is not preserved through a number). */
  st(i: number): number {
    return this.#f[(this.#top + i) & 7];
  }

  /** ST(i) as binary64 words [high, low], NaN payloads included (allocates: for tests and debuggers). */
  stBits(i: number): [number, number] {
    const p = (this.#top + i) & 7;
    return [this.#w[2 * p + 1], this.#w[2 * p]];
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
    this.eflagsWritten = false;
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
    const h = this.#host;
    switch (op) {
      case 0: // D8: m32fp arithmetic
        this.#readF32(addr);
        this.#arithMemory(reg);
        return FPU_DONE;
      case 1:
        switch (reg) {
          case 0:
            this.#readF32(addr);
            this.#fldMemory();
            return FPU_DONE;
          case 2:
          case 3:
            this.#fstF32(addr, reg === 3);
            return FPU_DONE;
          case 4:
            this.#readEnv(addr, opsize16);
            this.#commitEnv();
            return FPU_DONE;
          case 5:
            this.#setControlWord(h.readU16(addr));
            return FPU_DONE;
          case 6:
            this.#fnstenv(addr, opsize16);
            this.#cw |= EXCEPTION_FLAGS; // FNSTENV masks all exceptions after storing
            return FPU_DONE;
          case 7:
            h.writeU16(addr, this.#cw);
            return FPU_DONE;
          default:
            return FPU_INVALID_OPCODE;
        }
      case 2: // DA: m32int arithmetic
        this.#f[MEM] = h.readU32(addr) | 0;
        this.#arithMemory(reg);
        return FPU_DONE;
      case 3:
        switch (reg) {
          case 0:
            this.#fldInteger(h.readU32(addr) | 0);
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
        this.#readF64(addr);
        this.#arithMemory(reg);
        return FPU_DONE;
      case 5:
        switch (reg) {
          case 0:
            this.#readF64(addr);
            this.#fldMemory();
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
            h.writeU16(addr, this.statusWord());
            return FPU_DONE;
          default: // 1: FISTTP (SSE3); 5: reserved
            return FPU_INVALID_OPCODE;
        }
      case 6: // DE: m16int arithmetic
        this.#f[MEM] = (h.readU16(addr) << 16) >> 16;
        this.#arithMemory(reg);
        return FPU_DONE;
      default:
        switch (reg) {
          case 0:
            this.#fldInteger((h.readU16(addr) << 16) >> 16);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fistp(addr, 2, reg === 3);
            return FPU_DONE;
          case 4:
            this.#fbld(addr);
            return FPU_DONE;
          case 5: {
            const lo = h.readU32(addr) >>> 0;
            const hi = h.readU32(addr + 4) | 0;
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
      case 3: { // FSTPNCE: FSTP without the stack-underflow check; an empty ST(0) stays empty
        const p0 = this.#top, pi = (this.#top + i) & 7;
        const empty = this.#empty[p0];
        this.#copy(pi, p0);
        this.#empty[pi] = empty;
        this.#pop();
        this.#setCc(C1, 0);
        return FPU_DONE;
      }
    }
    switch (modrm) {
      case 0xE0: // FCHS: the sign bit, whatever the value
        if (!this.#underflowSt0()) this.#w[2 * this.#top + 1] ^= 0x80000000;
        this.#setCc(C1, 0);
        return FPU_DONE;
      case 0xE1: // FABS
        if (!this.#underflowSt0()) this.#w[2 * this.#top + 1] &= 0x7FFFFFFF;
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

  // ---- stack, tags, NaN words, exceptions -----------------------------------------------------

  /** The slot (physical register) of ST(i). */
  #slot(i: number): number {
    return (this.#top + i) & 7;
  }

  #get(i: number): number {
    return this.#f[(this.#top + i) & 7];
  }

  /** ST(i) = v; a NaN `v` stands for the words staged in RES. */
  #set(i: number, v: number): void {
    const p = (this.#top + i) & 7;
    if (v === v) this.#f[p] = v;
    else {
      this.#w[2 * p] = this.#w[2 * RES];
      this.#w[2 * p + 1] = this.#w[2 * RES + 1];
    }
    this.#empty[p] = 0;
  }

  #isEmpty(i: number): boolean {
    return this.#empty[(this.#top + i) & 7] !== 0;
  }

  /** Pushes v (a NaN stands for the words staged in RES). */
  #push(v: number): void {
    this.#top = (this.#top - 1) & 7;
    this.#set(0, v);
  }

  #pop(): void {
    this.#empty[this.#top] = 1;
    this.#top = (this.#top + 1) & 7;
  }

  /** Copies slot `src` into slot `dst` by words (NaN payloads intact); `dst` becomes non-empty. */
  #copy(dst: number, src: number): void {
    this.#w[2 * dst] = this.#w[2 * src];
    this.#w[2 * dst + 1] = this.#w[2 * src + 1];
    if (dst < 8) this.#empty[dst] = 0;
  }

  /** Stages NaN words in RES and returns a NaN placeholder for #set/#push. */
  #stageNaN(hi: number, lo: number): number {
    this.#w[2 * RES] = lo;
    this.#w[2 * RES + 1] = hi;
    return NaN;
  }

  /** The real indefinite (default QNaN), staged. */
  #indefinite(): number {
    return this.#stageNaN(INDEFINITE_HI, 0);
  }

  #isSignaling(s: number): boolean {
    return isSignalingBits(this.#w[2 * s + 1], this.#w[2 * s]);
  }

  /** The 2-bit tag of physical register p: 0 valid, 1 zero, 2 special (NaN, infinity), 3 empty. */
  #tagOf(p: number): number {
    if (this.#empty[p]) return 3;
    const v = this.#f[p];
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
    if (this.#masked(IE)) this.#set(0, this.#indefinite());
    return true;
  }

  /** Checks there is room to push; if not, raises stack overflow (masked: pushes the indefinite). */
  #canPush(): boolean {
    if (this.#empty[(this.#top - 1) & 7]) return true;
    this.#stackOverflow();
    if (this.#masked(IE)) this.#push(this.#indefinite());
    return false;
  }

  /**
   * The result when the operands in slots sa and sb include a NaN (SDM Vol 1 Table 4-7: a QNaN
   * beats an SNaN, else the larger significand), quieted and staged; #I for an SNaN.
   */
  #nanResult(sa: number, sb: number): number {
    const w = this.#w;
    const a = this.#f[sa], b = this.#f[sb];
    const aHi = w[2 * sa + 1], aLo = w[2 * sa], bHi = w[2 * sb + 1], bLo = w[2 * sb];
    const aNaN = a !== a, bNaN = b !== b;
    const aSignaling = aNaN && isSignalingBits(aHi, aLo), bSignaling = bNaN && isSignalingBits(bHi, bLo);
    if (aSignaling || bSignaling) this.#exc |= IE;
    let first = aNaN;
    if (aNaN && bNaN) first = aSignaling === bSignaling ? largerNaNIsFirst(aHi, aLo, bHi, bLo) : bSignaling;
    return first ? this.#stageNaN(aHi | 0x00080000, aLo) : this.#stageNaN(bHi | 0x00080000, bLo);
  }

  #invalid(): number {
    this.#exc |= IE;
    return this.#indefinite();
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
    if (r !== r) return this.#invalid(); // outside the function's domain
    if (r === Infinity || r === -Infinity) return this.#overflow(r > 0, (this.#cw >>> 10) & 3);
    this.#exc |= PE;
    if (r !== 0 && (r < 0 ? -r : r) < MIN_NORMAL) this.#exc |= UE;
    return r;
  }

  // ---- arithmetic ----------------------------------------------------------------------------

  /**
   * a op b for the values in slots sa and sb and the ModRM reg-field operations: 0 add, 1 mul,
   * 4 a - b, 5 b - a, 6 a / b, 7 b / a. Raises exceptions into #exc; callers check #blocked
   * before writing the result.
   */
  #arith(op: number, sa: number, sb: number): number {
    this.#setCc(C1, 0);
    if (op === 5 || op === 7) {
      const t = sa;
      sa = sb;
      sb = t;
      op--;
    }
    const a = this.#f[sa], b = this.#f[sb];
    if (a !== a || b !== b) return this.#nanResult(sa, sb);
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
      if (!aInf) this.#exc |= ZE; // infinity / 0 is an exact infinity; #Z outranks #D
      return a / b;
    }
    if (this.#denormalStops()) return 0;
    const q = a / b;
    if (aInf || bInf || a === 0) return q;
    if (q === Infinity || q === -Infinity) return this.#finish(q, 0, true);
    return this.#finish(q, divErrorSign(a, b, q), true);
  }

  /** D8/DA/DC/DE memory forms: ST(0) = ST(0) op MEM, or FCOM/FCOMP (FICOM/FICOMP). */
  #arithMemory(reg: number): void {
    if (reg === 2 || reg === 3) {
      const rel = this.#relate(this.#top, this.#isEmpty(0), MEM, false, false);
      this.#setCc(CC_ALL, CC_OF_RELATION[rel]);
      if (reg === 3 && !this.#blocked()) this.#pop();
      return;
    }
    if (this.#underflowSt0()) return;
    const r = this.#arith(reg, this.#top, MEM);
    if (!this.#blocked()) this.#set(0, r);
  }

  /** Register forms: ST(0) = ST(0) op ST(i), or (toSti) ST(i) = ST(i) op ST(0); optionally pop. */
  #arithSt(op: number, i: number, toSti: boolean, pop: boolean): void {
    const dest = toSti ? i : 0;
    if (this.#isEmpty(0) || this.#isEmpty(i)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) {
        this.#set(dest, this.#indefinite());
        if (pop) this.#pop();
      }
      return;
    }
    const r = this.#arith(op, this.#slot(dest), this.#slot(toSti ? 0 : i));
    if (this.#blocked()) return;
    this.#set(dest, r);
    if (pop) this.#pop();
  }

  // ---- comparisons ---------------------------------------------------------------------------

  /**
   * Compares the values in slots sa and sb: GREATER, LESS, EQUAL or UNORDERED; #I for an empty
   * operand, an SNaN, or (unless `quiet`) a QNaN; #D for a denormal memory operand.
   */
  #relate(sa: number, aEmpty: boolean, sb: number, bEmpty: boolean, quiet: boolean): number {
    this.#setCc(C1, 0);
    if (aEmpty || bEmpty) {
      this.#stackUnderflow();
      return UNORDERED;
    }
    const a = this.#f[sa], b = this.#f[sb];
    if (a !== a || b !== b) {
      if (!quiet || (a !== a && this.#isSignaling(sa)) || (b !== b && this.#isSignaling(sb))) this.#exc |= IE;
      return UNORDERED;
    }
    if (this.#memDenormal) this.#exc |= DE;
    return a > b ? GREATER : a < b ? LESS : EQUAL;
  }

  /** FCOM/FCOMP/FCOMPP/FUCOM* on ST(0) and ST(i), popping `pops` times unless an unmasked #I/#D stops it. */
  #fcomSt(i: number, quiet: boolean, pops: number): void {
    const rel = this.#relate(this.#top, this.#isEmpty(0), this.#slot(i), this.#isEmpty(i), quiet);
    this.#setCc(CC_ALL & ~C1, CC_OF_RELATION[rel]);
    if (this.#blocked()) return;
    for (let n = 0; n < pops; n++) this.#pop();
  }

  /** FCOMI/FUCOMI(P): EFLAGS are written even when an unmasked #I stops the pop (as on the host). */
  #fcomi(i: number, quiet: boolean, pop: boolean): number {
    const rel = this.#relate(this.#top, this.#isEmpty(0), this.#slot(i), this.#isEmpty(i), quiet);
    this.eflagsOut = EFLAGS_OF_RELATION[rel];
    this.eflagsWritten = true;
    if (pop && !this.#blocked()) this.#pop();
    return FPU_WROTE_EFLAGS;
  }

  #ftst(): void {
    this.#f[MEM] = 0;
    const rel = this.#relate(this.#top, this.#isEmpty(0), MEM, false, false);
    this.#setCc(CC_ALL & ~C1, CC_OF_RELATION[rel]);
  }

  /** FXAM: C3 C2 C0 classify ST(0) (SDM FXAM table), C1 = its sign. */
  #fxam(): void {
    const p = this.#top;
    const v = this.#f[p];
    const sign = (this.#w[2 * p + 1] & 0x80000000) !== 0 ? C1 : 0;
    let cls: number;
    if (this.#empty[p]) cls = C3 | C0;
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
      if (this.#masked(IE)) this.#set(0, this.#indefinite());
      return;
    }
    if (cond !== negate) this.#copy(this.#top, this.#slot(i));
  }

  // ---- loads ---------------------------------------------------------------------------------

  /** Reads an m32fp operand into MEM (widened exactly); notes a denormal for #D. */
  #readF32(addr: number): void {
    const bits = this.#host.readU32(addr);
    this.#memDenormal = isFloat32Denormal(bits);
    if (isFloat32NaN(bits)) {
      float32NaNToDoubleBits(bits);
      this.#w[2 * MEM] = doubleBitsOut[0];
      this.#w[2 * MEM + 1] = doubleBitsOut[1];
    } else {
      this.#f[MEM] = float32ToDouble(bits);
    }
  }

  /** Reads an m64fp operand into MEM; notes a denormal for #D. */
  #readF64(addr: number): void {
    const lo = this.#host.readU32(addr);
    const hi = this.#host.readU32(addr + 4);
    this.#memDenormal = isDoubleDenormalBits(hi, lo);
    this.#w[2 * MEM] = lo;
    this.#w[2 * MEM + 1] = hi;
  }

  /**
   * FLD m32fp/m64fp of the value in MEM: overflow first, then #I for an SNaN (quieted), then #D
   * (which, even unmasked, does not stop the load: the host x87 loads the denormal too).
   */
  #fldMemory(): void {
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    const v = this.#f[MEM];
    if (v !== v) {
      if (this.#isSignaling(MEM)) {
        this.#exc |= IE;
        if (!this.#masked(IE)) return;
      }
      this.#push(this.#stageNaN(this.#w[2 * MEM + 1] | 0x00080000, this.#w[2 * MEM]));
      return;
    }
    if (this.#memDenormal) this.#exc |= DE;
    this.#push(v);
  }

  /** FLD m80fp: no #I for SNaNs (no conversion in hardware); unsupported encodings load as the indefinite. */
  #fldF80(addr: number): void {
    const lo = this.#host.readU32(addr);
    const hi = this.#host.readU32(addr + 4);
    const se = this.#host.readU16(addr + 8);
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    fromFloat80(lo, hi, se);
    this.#w[2 * RES] = doubleBitsOut[0];
    this.#w[2 * RES + 1] = doubleBitsOut[1];
    this.#push(this.#f[RES]); // a NaN stands for the words just staged
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
    const src = this.#slot(i);
    const srcEmpty = this.#empty[src] !== 0;
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    if (srcEmpty) {
      this.#stackUnderflow();
      if (this.#masked(IE)) this.#push(this.#indefinite());
      return;
    }
    this.#top = (this.#top - 1) & 7;
    this.#copy(this.#top, src);
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

  /** A memory store must not happen: unmasked #I, or unmasked #O/#U (which then report without #P). */
  #storeBlocked(): boolean {
    if ((this.#exc & ~this.#cw & IE) !== 0) return true;
    if ((this.#exc & ~this.#cw & (OE | UE)) === 0) return false;
    this.#exc &= ~PE;
    this.#setCc(C1, 0);
    return true;
  }

  /** FST/FSTP m32fp. */
  #fstF32(addr: number, pop: boolean): void {
    let bits: number;
    this.#setCc(C1, 0);
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      bits = 0xFFC00000;
    } else {
      const p = this.#top;
      const v = this.#f[p];
      if (v !== v) {
        if (this.#isSignaling(p)) this.#exc |= IE;
        bits = float32NaNBits(this.#w[2 * p + 1] | 0x00080000, this.#w[2 * p]);
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
    let f = Math.fround(v);
    const vm = v < 0 ? -v : v;
    if (f === v) {
      // Unmasked, #U reports tiny results even when exact.
      if (f !== 0 && vm < 1.1754943508222875e-38 && !this.#masked(UE)) this.#exc |= UE;
      return f;
    }
    const rc = (this.#cw >>> 10) & 3;
    if ((rc === 1 && f > v) || (rc === 2 && f < v) || (rc === 3 && (f < 0 ? -f : f) > vm)) {
      // One binary32 step toward the exact value.
      const towardZero = (f > v) === (f > 0) && f !== 0;
      f = f === 0 ? (v > 0 ? 1.401298464324817e-45 : -1.401298464324817e-45) : float32Step(f, !towardZero);
    }
    const fm = f < 0 ? -f : f;
    this.#exc |= PE;
    if (fm > vm) this.#setCc(C1, C1);
    if (fm === Infinity || vm >= 3.402823669209385e38) this.#exc |= OE; // 2^128
    else if (vm < 1.1754943508222875e-38) this.#exc |= UE; // tiny before rounding, and inexact
    return f;
  }

  /** FST/FSTP m64fp: exact, except that an SNaN is quieted under #I. */
  #fstF64(addr: number, pop: boolean): void {
    let hi = INDEFINITE_HI, lo = 0;
    this.#setCc(C1, 0);
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
    } else {
      const p = this.#top;
      hi = this.#w[2 * p + 1];
      lo = this.#w[2 * p];
      if (isSignalingBits(hi, lo)) {
        this.#exc |= IE;
        if (!this.#masked(IE)) return;
        hi |= 0x00080000;
      } else if ((hi & 0x7FF00000) === 0 && ((hi & 0x000FFFFF) | lo) !== 0 && !this.#masked(UE)) {
        this.#exc |= UE; // unmasked, #U reports a tiny result even when exact, and stops the store
        return;
      }
    }
    this.#host.writeU32(addr, lo);
    this.#host.writeU32(addr + 4, hi);
    if (pop) this.#pop();
  }

  /** FSTP m80fp: exact, SNaNs stored as they are. */
  #fstpF80(addr: number): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      toFloat80(INDEFINITE_HI, 0);
    } else {
      toFloat80(this.#w[2 * this.#top + 1], this.#w[2 * this.#top]);
    }
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
      this.#set(i, this.#indefinite());
    } else {
      this.#copy(this.#slot(i), this.#top);
    }
    if (pop) this.#pop();
  }

  #fxch(i: number): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0) || this.#isEmpty(i)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      if (this.#isEmpty(0)) this.#set(0, this.#indefinite());
      if (this.#isEmpty(i)) this.#set(i, this.#indefinite());
    }
    const p0 = this.#top, pi = this.#slot(i);
    this.#copy(RES, p0);
    this.#copy(p0, pi);
    this.#copy(pi, RES);
  }

  // ---- arithmetic on the stack top -----------------------------------------------------------

  #fsqrt(): void {
    if (this.#underflowSt0()) return;
    this.#setCc(C1, 0);
    const x = this.#get(0);
    let r: number;
    if (x !== x) r = this.#nanResult(this.#top, this.#top);
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
    if (x !== x) r = this.#nanResult(this.#top, this.#top);
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
      if (this.#masked(IE)) this.#set(0, this.#indefinite());
      return;
    }
    const x = this.#get(0), y = this.#get(1);
    let r: number;
    if (x !== x || y !== y) r = this.#nanResult(this.#top, this.#slot(1));
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
        this.#set(0, this.#indefinite());
        this.#push(NaN);
      }
      return;
    }
    const x = this.#get(0);
    let e: number, m: number;
    if (x !== x) e = m = this.#nanResult(this.#top, this.#top);
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
      if (this.#masked(IE)) this.#set(0, this.#indefinite());
      return;
    }
    const a = this.#get(0), b = this.#get(1);
    let r: number;
    if (a !== a || b !== b) r = this.#nanResult(this.#top, this.#slot(1));
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
        this.#set(0, this.#indefinite());
        if (pushes) this.#push(NaN);
      }
      return;
    }
    const x = this.#get(0);
    let r0: number, r1 = 0;
    if (x !== x) r0 = r1 = this.#nanResult(this.#top, this.#top);
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
    if (x !== x || y !== y) r = this.#nanResult(this.#top, this.#slot(1));
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
    if (x !== x || y !== y) r = this.#nanResult(this.#top, this.#slot(1));
    else if (plusOne) {
      if (x === 0) r = yInf ? this.#invalid() : signBit(x) !== signBit(y) ? -0 : 0;
      else if (x < -1) r = this.#invalid(); // log of a negative number (the domain is |x| < 1 - sqrt(2)/2)
      else if (x === Infinity) r = y === 0 ? this.#invalid() : signBit(y) ? -Infinity : Infinity;
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
    if (x !== x) r = this.#nanResult(this.#top, this.#top);
    else if (x === 0 || x === Infinity) r = x;
    else if (x === -Infinity) r = -1;
    else if (x === 1 || x === -1) r = x === 1 ? 1 : -0.5;
    else if (x > 1 || x < -1) r = x; // out of range: the host x87 leaves the operand as it is
    else r = this.#approximate(Math.expm1(x * Math.LN2));
    if (!this.#blocked()) this.#set(0, r);
  }

  /** For ST(0)/ST(1) instructions that write ST(1) and pop: true (masked response done) if either is empty. */
  #binaryUnderflow(): boolean {
    if (!this.#isEmpty(0) && !this.#isEmpty(1)) return false;
    this.#stackUnderflow();
    if (this.#masked(IE)) {
      this.#set(1, this.#indefinite());
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

  /** Writes ST(0)..ST(7) as 80-bit values, 10 bytes apart (FSAVE layout). */
  #saveRegisters(addr: number): void {
    for (let i = 0; i < 8; i++) {
      const p = (this.#top + i) & 7;
      toFloat80(this.#w[2 * p + 1], this.#w[2 * p]);
      this.#host.writeU32(addr + 10 * i, float80Out[0]);
      this.#host.writeU32(addr + 10 * i + 4, float80Out[1]);
      this.#host.writeU16(addr + 10 * i + 8, float80Out[2]);
    }
  }

  /** Reads 80-bit ST(0)..ST(7) from `addr` with the given stride into #loadWords. Changes nothing. */
  #readRegisters(addr: number, stride: number): void {
    for (let i = 0; i < 8; i++) {
      const a = addr + stride * i;
      fromFloat80(this.#host.readU32(a), this.#host.readU32(a + 4), this.#host.readU16(a + 8));
      this.#loadWords[2 * i] = doubleBitsOut[0];
      this.#loadWords[2 * i + 1] = doubleBitsOut[1];
    }
  }

  /** Installs #loadWords as ST(0)..ST(7) relative to the (new) TOP. */
  #commitRegisters(): void {
    for (let i = 0; i < 8; i++) {
      const p = (this.#top + i) & 7;
      this.#w[2 * p] = this.#loadWords[2 * i];
      this.#w[2 * p + 1] = this.#loadWords[2 * i + 1];
    }
  }

  #frstor(addr: number, opsize16: boolean): void {
    this.#readEnv(addr, opsize16);
    this.#readRegisters(addr + (opsize16 ? 14 : 28), 10);
    this.#commitEnv();
    this.#commitRegisters();
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
      const r = a + 32 + 16 * i, p = (this.#top + i) & 7;
      toFloat80(this.#w[2 * p + 1], this.#w[2 * p]);
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
    const fip = h.readU32(a + 8), fcs = h.readU32(a + 12), fdp = h.readU32(a + 16), fds = h.readU32(a + 20);
    const mxcsr = h.readU32(a + 24);
    this.#readRegisters(a + 32, 16);
    // Expand the abridged tag: 0 bits are empty registers (11), others get any non-empty tag.
    let tw = 0;
    for (let p = 0; p < 8; p++) if (((d1 >> p) & 1) === 0) tw |= 3 << (2 * p);
    e[0] = d0 & 0xFFFF;
    e[1] = (d0 >>> 16) & 0xFFFF;
    e[2] = tw;
    e[3] = fip;
    e[4] = fcs & 0xFFFF;
    e[5] = (d1 >>> 16) & 0x7FF;
    e[6] = fdp;
    e[7] = fds & 0xFFFF;
    this.#commitEnv();
    this.#commitRegisters();
    this.mxcsr = mxcsr & 0xFFFF;
  }
}
