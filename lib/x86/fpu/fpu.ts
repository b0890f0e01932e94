/**
 * The x87 FPU (SDM Vol 1 ch. 8; Vol 2 pages for D8-DF): eight 80-bit stack registers, control,
 * status and tag words, the last-instruction pointers, the FSAVE/FSTENV and FXSAVE images. The CPU
 * decodes ModRM and the effective address and calls `Fpu.execute`. Arithmetic is in
 * extended_arith.ts, transcendentals in extended_math.ts; what differs from hardware is listed on
 * the class.
 */

import type { FpuHost } from "./fpu_host.ts";
import {
  doubleBitsOut,
  doubleFromBits,
  doubleHi,
  doubleLo,
  float80Out,
  fromFloat80,
  toFloat80,
} from "./float_bits.ts";
import {
  addExt,
  divExt,
  extOut,
  FMT_EXT,
  FMT_F32,
  FMT_F64,
  intFlags,
  mulExt,
  packInteger,
  R_C1,
  roundPack,
  roundToInteger,
  roundToSmallInteger,
  sqrtExt,
} from "./extended_arith.ts";
import { atan2Ext, f2xm1Ext, piQuartersExt, trigExt, yl2xExt, yl2xp1Ext } from "./extended_math.ts";
import { fromPackedBcd, toPackedBcd } from "./packed_bcd.ts";

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
/** Comparison outcomes, indexing the tables below. */
const GREATER = 0, LESS = 1, EQUAL = 2, UNORDERED = 3;
const CC_OF_RELATION = [0, C0, C3, C3 | C2 | C0];
const EFLAGS_OF_RELATION = [0, CF, ZF, ZF | PF | CF];

// Operand classes, from the encoding (SDM Vol 1 §8.2.2, Table 8-3).
const NORMAL = 0, ZERO = 1, DENORMAL = 2, INFINITE = 3, NAN = 4, UNSUPPORTED = 5;

/**
 * FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (D9 E8-EE): the significand to 64 bits rounded
 * toward zero, the biased exponent, and where the rest of the true value lies (1: above half an
 * ulp, -1: below, 0: exact), so each rounds per RC as on hardware.
 */
const CONSTANT_HI = new Uint32Array([
  0x80000000,
  0xD49A784B,
  0xB8AA3B29,
  0xC90FDAA2,
  0x9A209A84,
  0xB17217F7,
  0,
]);
const CONSTANT_LO = new Uint32Array([0, 0xCD1B8AFE, 0x5C17F0BB, 0x2168C234, 0xFBCFF798, 0xD1CF79AB, 0]);
const CONSTANT_EXP = new Uint16Array([0x3FFF, 0x4000, 0x3FFF, 0x4000, 0x3FFD, 0x3FFE, 0]);
const CONSTANT_REST = new Int8Array([0, -1, 1, 1, 1, 1, 0]);

/** True unless opcode/modrm is a non-waiting control instruction (FNINIT, FNCLEX, FNSTCW, FNSTSW, FNSTENV, FNSAVE, FNENI/FNDISI/FNSETPM). */
export function fpuInstructionWaits(opcode: number, modrm: number): boolean {
  const op = opcode & 7;
  if (modrm < 0xC0) {
    const reg = (modrm >> 3) & 7;
    return !((op === 1 && (reg === 6 || reg === 7)) || (op === 5 && (reg === 6 || reg === 7)));
  }
  return !((op === 3 && modrm >= 0xE0 && modrm <= 0xE4) || (op === 7 && modrm === 0xE0));
}

/** Value slots beyond the eight registers: the memory operand, two staged results, scratch. */
const MEM = 8, RES = 9, RES2 = 10, TMP = 11, SLOTS = 12;

/**
 * One x87 FPU, checked instruction by instruction against the host's x87 (tests/x86/fpu/).
 *
 * Registers hold 80-bit values bit for bit (64-bit significand with explicit integer bit, 15-bit
 * exponent): arithmetic, conversions, compares, FSQRT, FSCALE, FRNDINT, FXTRACT and FPREM/FPREM1
 * are exact or rounded once per PC and RC, denormals and unsupported encodings (pseudo-NaN,
 * pseudo-infinity, unnormal: #I) included, unmasked #O/#U delivering the exponent wrapped by 24576.
 * - Transcendentals are computed in higher precision (extended_math.ts) and rounded once; hardware
 *   is documented to within 1 ulp and reduces trigonometric arguments with a 66-bit pi, so results
 *   may differ from a given CPU by an ulp (and more for large arguments). #P is set and C1 follows
 *   the rounding. Out of their domain, F2XM1 returns its operand (as AMD does) and FYL2XP1 below -1
 *   raises #I.
 * - FPREM/FPREM1 reduce by 2^(D-N), N = 32 + D mod 32, for partial remainders, as on the host.
 * - FOP, FIP and FDP are recorded for every non-control instruction (no FOP/FDP deprecation). D9
 *   D8+i is FSTPNCE (AMD: FSTP without the underflow check); the other undocumented aliases behave
 *   as their documented twins. FISTTP (SSE3) raises #UD unless `sse3` is set.
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
  /** FISTTP (DF /1, DB /1, DD /1) executes; off, as on a CPU without SSE3 (CPUID says none). */
  sse3 = false;

  readonly #host: FpuHost;
  /**
   * Value slots: 0-7 the physical registers R0-R7 (ST(i) is R((top + i) & 7)), MEM the current
   * memory operand, RES/RES2 results being staged, TMP scratch. Each is an 80-bit image:
   * significand words [low, high] in #sig, sign << 15 | biased exponent in #se.
   */
  readonly #sig = new Uint32Array(2 * SLOTS);
  readonly #se = new Uint16Array(SLOTS);
  /** Unpacked operands for the arithmetic: [sign, exponent, significand high, low] twice. */
  readonly #u = new Float64Array(8);
  /** 1 where the physical register's tag is "empty". Other tags are derived from the value. */
  readonly #empty = new Uint8Array(8);
  /** Scratch for FRSTOR/FXRSTOR, which must read everything before changing anything. */
  readonly #loadWords = new Uint32Array(24);
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

  /** ST(i)'s value rounded to the nearest binary64 (meaningless when empty; for tests and debuggers). */
  st(i: number): number {
    return this.#toDouble((this.#top + i) & 7);
  }

  /** ST(i)'s 80-bit image as [sign << 15 | exponent, significand high, low] (allocates: tests, debuggers). */
  stBits(i: number): [number, number, number] {
    const p = (this.#top + i) & 7;
    return [this.#se[p], this.#sig[2 * p + 1], this.#sig[2 * p]];
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
        this.#loadInt32(MEM, h.readU32(addr) | 0);
        this.#arithMemory(reg);
        return FPU_DONE;
      case 3:
        switch (reg) {
          case 0:
            this.#fldInteger(h.readU32(addr) | 0);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fistp(addr, 4, reg === 3, false);
            return FPU_DONE;
          case 5:
            this.#fldF80(addr);
            return FPU_DONE;
          case 7:
            this.#fstpF80(addr);
            return FPU_DONE;
          case 1:
            if (!this.sse3) return FPU_INVALID_OPCODE;
            this.#fistp(addr, 4, true, true);
            return FPU_DONE;
          default: // 4, 6: reserved
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
          case 1:
            if (!this.sse3) return FPU_INVALID_OPCODE;
            this.#fistp(addr, 8, true, true);
            return FPU_DONE;
          default: // 5: reserved
            return FPU_INVALID_OPCODE;
        }
      case 6: // DE: m16int arithmetic
        this.#loadInt32(MEM, (h.readU16(addr) << 16) >> 16);
        this.#arithMemory(reg);
        return FPU_DONE;
      default:
        switch (reg) {
          case 0:
            this.#fldInteger((h.readU16(addr) << 16) >> 16);
            return FPU_DONE;
          case 2:
          case 3:
            this.#fistp(addr, 2, reg === 3, false);
            return FPU_DONE;
          case 4:
            this.#fbld(addr);
            return FPU_DONE;
          case 5: {
            const lo = h.readU32(addr) >>> 0;
            const hi = h.readU32(addr + 4) >>> 0;
            this.#setCc(C1, 0);
            if (!this.#canPush()) return FPU_DONE;
            this.#loadInt64(RES, lo, hi);
            this.#pushFrom(RES);
            return FPU_DONE;
          }
          case 6:
            this.#fbstp(addr);
            return FPU_DONE;
          case 7:
            this.#fistp(addr, 8, true, false);
            return FPU_DONE;
          default:
            if (!this.sse3) return FPU_INVALID_OPCODE;
            this.#fistp(addr, 2, true, true); // 1: FISTTP m16
            return FPU_DONE;
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
        if (!this.#underflowSt0()) this.#se[this.#top] ^= 0x8000;
        this.#setCc(C1, 0);
        return FPU_DONE;
      case 0xE1: // FABS
        if (!this.#underflowSt0()) this.#se[this.#top] &= 0x7FFF;
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

  // ---- slots, stack, tags, NaNs, exceptions ---------------------------------------------------

  /** The slot (physical register) of ST(i). */
  #slot(i: number): number {
    return (this.#top + i) & 7;
  }

  #isEmpty(i: number): boolean {
    return this.#empty[(this.#top + i) & 7] !== 0;
  }

  /** Copies slot `src` into slot `dst`, all 80 bits; a register `dst` becomes non-empty. */
  #copy(dst: number, src: number): void {
    this.#sig[2 * dst] = this.#sig[2 * src];
    this.#sig[2 * dst + 1] = this.#sig[2 * src + 1];
    this.#se[dst] = this.#se[src];
    if (dst < 8) this.#empty[dst] = 0;
  }

  /** Writes an 80-bit image into slot `dst`. */
  #put(dst: number, lo: number, hi: number, se: number): void {
    this.#sig[2 * dst] = lo;
    this.#sig[2 * dst + 1] = hi;
    this.#se[dst] = se;
    if (dst < 8) this.#empty[dst] = 0;
  }

  /** Slot `dst` = slot `src` with a pseudo-denormal re-encoded as the normal it equals (exponent 1). */
  #canonical(dst: number, src: number): void {
    this.#copy(dst, src);
    if ((this.#se[dst] & 0x7FFF) === 0 && this.#sig[2 * dst + 1] >= 0x80000000) this.#se[dst] |= 1;
  }

  /** Slot `dst` = the result in `extOut`. */
  #putOut(dst: number): void {
    this.#put(dst, extOut[0], extOut[1], extOut[2]);
  }

  /** ST(i) = slot `src`. */
  #setFrom(i: number, src: number): void {
    this.#copy((this.#top + i) & 7, src);
  }

  /** Pushes slot `src`. */
  #pushFrom(src: number): void {
    this.#top = (this.#top - 1) & 7;
    this.#copy(this.#top, src);
  }

  #pop(): void {
    this.#empty[this.#top] = 1;
    this.#top = (this.#top + 1) & 7;
  }

  /** Slot `dst` = the real indefinite (default QNaN: sign 1, significand C000...0). */
  #indefinite(dst: number): void {
    this.#put(dst, 0, 0xC0000000, 0xFFFF);
  }

  #zero(dst: number, sign: number): void {
    this.#put(dst, 0, 0, sign << 15);
  }

  #infinity(dst: number, sign: number): void {
    this.#put(dst, 0, 0x80000000, (sign << 15) | 0x7FFF);
  }

  /** The operand class of slot s (NORMAL ... UNSUPPORTED). */
  #cls(s: number): number {
    const e = this.#se[s] & 0x7FFF, hi = this.#sig[2 * s + 1];
    if (e === 0) return (hi | this.#sig[2 * s]) === 0 ? ZERO : DENORMAL;
    if (hi < 0x80000000) return UNSUPPORTED;
    if (e === 0x7FFF) return ((hi & 0x7FFFFFFF) | this.#sig[2 * s]) === 0 ? INFINITE : NAN;
    return NORMAL;
  }

  #sign(s: number): number {
    return this.#se[s] >>> 15;
  }

  /** A NaN slot whose quiet bit (significand bit 62) is clear. */
  #isSignaling(s: number): boolean {
    return (this.#sig[2 * s + 1] & 0x40000000) === 0;
  }

  /**
   * Unpacks finite non-zero slot s into #u[4k..4k+3] = sign, exponent, significand high, low,
   * normalised (denormals get an exponent below -16382).
   */
  #unpack(s: number, k: number): void {
    const se = this.#se[s], e = se & 0x7FFF;
    let hi = this.#sig[2 * s + 1], lo = this.#sig[2 * s];
    let exp = e === 0 ? -16382 : e - 16383;
    if (hi < 0x80000000) {
      if (hi === 0) {
        hi = lo;
        lo = 0;
        exp -= 32;
      }
      const z = Math.clz32(hi);
      if (z > 0) {
        hi = ((hi << z) | (lo >>> (32 - z))) >>> 0;
        lo = (lo << z) >>> 0;
        exp -= z;
      }
    }
    const u = this.#u;
    u[4 * k] = se >>> 15;
    u[4 * k + 1] = exp;
    u[4 * k + 2] = hi;
    u[4 * k + 3] = lo;
  }

  /** The 2-bit tag of physical register p: 0 valid, 1 zero, 2 special (NaN, infinity, denormal, unsupported), 3 empty. */
  #tagOf(p: number): number {
    if (this.#empty[p]) return 3;
    const c = this.#cls(p);
    return c === NORMAL ? 0 : c === ZERO ? 1 : 2;
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

  /** Takes the flags of a rounding (extended_arith.ts R_*): exceptions, and C1 = rounded up. */
  #rounded(flags: number): void {
    this.#exc |= flags & EXCEPTION_FLAGS;
    this.#setCc(C1, flags & R_C1);
  }

  #masked(flag: number): boolean {
    return (this.#cw & flag) !== 0;
  }

  #rc(): number {
    return (this.#cw >>> 10) & 3;
  }

  /** The precision control as significand bits: 24, 53 or 64 (PC = 1, reserved, computes as 64). */
  #prec(): number {
    const pc = (this.#cw >>> 8) & 3;
    return pc === 0 ? 24 : pc === 2 ? 53 : 64;
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
    if (this.#masked(IE)) this.#indefinite(this.#top);
    return true;
  }

  /** Checks there is room to push; if not, raises stack overflow (masked: pushes the indefinite). */
  #canPush(): boolean {
    if (this.#empty[(this.#top - 1) & 7]) return true;
    this.#stackOverflow();
    if (this.#masked(IE)) {
      this.#top = (this.#top - 1) & 7;
      this.#indefinite(this.#top);
    }
    return false;
  }

  /**
   * RES = the result when the operands in slots sa and sb include a NaN (SDM Vol 1 Table 4-7: a
   * QNaN beats an SNaN, else the larger significand, then the positive one), quieted; #I for an SNaN.
   */
  #nanResult(sa: number, sb: number): void {
    const aNaN = this.#cls(sa) === NAN, bNaN = this.#cls(sb) === NAN;
    const aSignaling = aNaN && this.#isSignaling(sa), bSignaling = bNaN && this.#isSignaling(sb);
    if (aSignaling || bSignaling) this.#exc |= IE;
    let first = aNaN;
    if (aNaN && bNaN) {
      if (aSignaling !== bSignaling) first = bSignaling;
      else {
        const ah = this.#sig[2 * sa + 1] & 0x3FFFFFFF, bh = this.#sig[2 * sb + 1] & 0x3FFFFFFF;
        const al = this.#sig[2 * sa], bl = this.#sig[2 * sb];
        if (ah !== bh) first = ah > bh;
        else if (al !== bl) first = al > bl;
        else first = this.#sign(sa) === 0 || this.#sign(sb) !== 0;
      }
    }
    const s = first ? sa : sb;
    this.#put(RES, this.#sig[2 * s], (this.#sig[2 * s + 1] | 0x40000000) >>> 0, this.#se[s]);
  }

  /** #I with the indefinite as the result (in RES). */
  #invalid(): void {
    this.#exc |= IE;
    this.#indefinite(RES);
  }

  /** Raises #D for a denormal operand; true when it is unmasked (nothing more may happen). */
  #denormalStops(denormal: boolean): boolean {
    if (!denormal) return false;
    this.#exc |= DE;
    return !this.#masked(DE);
  }

  /** Slot s as the nearest binary64 (NaNs lose their payload). */
  #toDouble(s: number): number {
    fromFloat80(this.#sig[2 * s], this.#sig[2 * s + 1], this.#se[s]);
    return doubleFromBits(doubleBitsOut[1], doubleBitsOut[0]);
  }

  /** Slot dst = binary64 x, exactly (x not a NaN). */
  #fromDouble(dst: number, x: number): void {
    toFloat80(doubleHi(x), doubleLo(x));
    this.#put(dst, float80Out[0], float80Out[1], float80Out[2]);
  }

  /** Slot dst = the int32 v, exactly. */
  #loadInt32(dst: number, v: number): void {
    if (v === 0) {
      this.#zero(dst, 0);
      return;
    }
    const sign = v < 0 ? 1 : 0;
    const m = sign ? -v : v; // up to 2^31
    const z = Math.clz32(m);
    this.#put(dst, 0, (m * 2 ** z) >>> 0, (sign << 15) | (16383 + 31 - z));
  }

  /** Slot dst = the int64 hi:lo, exactly. */
  #loadInt64(dst: number, lo: number, hi: number): void {
    const sign = hi >>> 31;
    if (sign) {
      lo = (-lo) >>> 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    }
    if ((hi | lo) === 0) {
      this.#zero(dst, 0);
      return;
    }
    let exp = 63;
    if (hi === 0) {
      hi = lo;
      lo = 0;
      exp = 31;
    }
    const z = Math.clz32(hi);
    if (z > 0) {
      hi = ((hi << z) | (lo >>> (32 - z))) >>> 0;
      lo = (lo << z) >>> 0;
    }
    this.#put(dst, lo, hi, (sign << 15) | (16383 + exp - z));
  }

  // ---- arithmetic ----------------------------------------------------------------------------

  /**
   * RES = a op b for the values in slots sa and sb and the ModRM reg-field operations: 0 add,
   * 1 mul, 4 a - b, 5 b - a, 6 a / b, 7 b / a. Raises exceptions into #exc; callers check #blocked
   * before writing the result.
   */
  #arith(op: number, sa: number, sb: number): void {
    this.#setCc(C1, 0);
    if (op === 5 || op === 7) {
      const t = sa;
      sa = sb;
      sb = t;
      op--;
    }
    const ca = this.#cls(sa), cb = this.#cls(sb);
    if (ca === UNSUPPORTED || cb === UNSUPPORTED) {
      this.#invalid();
      return;
    }
    if (ca === NAN || cb === NAN) {
      this.#nanResult(sa, sb);
      return;
    }
    const denormal = this.#memDenormal || ca === DENORMAL || cb === DENORMAL;
    switch (op) {
      case 0:
        this.#add(sa, ca, this.#sign(sa), sb, cb, this.#sign(sb), denormal);
        return;
      case 1:
        this.#mul(sa, ca, sb, cb, denormal);
        return;
      case 4:
        this.#add(sa, ca, this.#sign(sa), sb, cb, this.#sign(sb) ^ 1, denormal);
        return;
      default:
        this.#div(sa, ca, sb, cb, denormal);
    }
  }

  /** RES = slot s (finite, non-zero) with `sign`, rounded per PC and RC: what x + 0 and 0 - x give. */
  #roundSlot(s: number, sign: number): void {
    this.#unpack(s, 0);
    const u = this.#u;
    this.#rounded(roundPack(sign, u[1], u[2], u[3], 0, 0, this.#prec(), this.#rc(), this.#cw, FMT_EXT));
    this.#putOut(RES);
  }

  #add(
    sa: number,
    ca: number,
    aSign: number,
    sb: number,
    cb: number,
    bSign: number,
    denormal: boolean,
  ): void {
    if (ca === INFINITE && cb === INFINITE && aSign !== bSign) {
      this.#invalid();
      return;
    }
    if (this.#denormalStops(denormal)) return;
    if (ca === INFINITE || cb === INFINITE) {
      this.#infinity(RES, ca === INFINITE ? aSign : bSign);
      return;
    }
    if (ca === ZERO || cb === ZERO) {
      if (ca === ZERO && cb === ZERO) {
        // Exact zero: +0 except in round-down, where opposite signs give -0.
        this.#zero(RES, aSign === bSign ? aSign : this.#rc() === 1 ? 1 : 0);
      } else if (ca === ZERO) this.#roundSlot(sb, bSign);
      else this.#roundSlot(sa, aSign);
      return;
    }
    this.#unpack(sa, 0);
    this.#unpack(sb, 1);
    const u = this.#u;
    const flags = addExt(
      aSign,
      u[1],
      u[2],
      u[3],
      bSign,
      u[5],
      u[6],
      u[7],
      this.#prec(),
      this.#rc(),
      this.#cw,
    );
    if (flags < 0) this.#zero(RES, this.#rc() === 1 ? 1 : 0);
    else {
      this.#rounded(flags);
      this.#putOut(RES);
    }
  }

  #mul(sa: number, ca: number, sb: number, cb: number, denormal: boolean): void {
    const sign = this.#sign(sa) ^ this.#sign(sb);
    if ((ca === INFINITE && cb === ZERO) || (cb === INFINITE && ca === ZERO)) {
      this.#invalid();
      return;
    }
    if (this.#denormalStops(denormal)) return;
    if (ca === INFINITE || cb === INFINITE) this.#infinity(RES, sign);
    else if (ca === ZERO || cb === ZERO) this.#zero(RES, sign);
    else {
      this.#unpack(sa, 0);
      this.#unpack(sb, 1);
      const u = this.#u;
      this.#rounded(mulExt(sign, u[1], u[2], u[3], u[5], u[6], u[7], this.#prec(), this.#rc(), this.#cw));
      this.#putOut(RES);
    }
  }

  #div(sa: number, ca: number, sb: number, cb: number, denormal: boolean): void {
    const sign = this.#sign(sa) ^ this.#sign(sb);
    if ((ca === INFINITE && cb === INFINITE) || (ca === ZERO && cb === ZERO)) {
      this.#invalid();
      return;
    }
    if (cb === ZERO) {
      if (ca !== INFINITE) this.#exc |= ZE; // infinity / 0 is an exact infinity; #Z outranks #D
      this.#infinity(RES, sign);
      return;
    }
    if (this.#denormalStops(denormal)) return;
    if (ca === INFINITE) this.#infinity(RES, sign);
    else if (cb === INFINITE || ca === ZERO) this.#zero(RES, sign);
    else {
      this.#unpack(sa, 0);
      this.#unpack(sb, 1);
      const u = this.#u;
      this.#rounded(divExt(sign, u[1], u[2], u[3], u[5], u[6], u[7], this.#prec(), this.#rc(), this.#cw));
      this.#putOut(RES);
    }
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
    this.#arith(reg, this.#top, MEM);
    if (!this.#blocked()) this.#setFrom(0, RES);
  }

  /** Register forms: ST(0) = ST(0) op ST(i), or (toSti) ST(i) = ST(i) op ST(0); optionally pop. */
  #arithSt(op: number, i: number, toSti: boolean, pop: boolean): void {
    const dest = toSti ? i : 0;
    if (this.#isEmpty(0) || this.#isEmpty(i)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) {
        this.#indefinite(this.#slot(dest));
        if (pop) this.#pop();
      }
      return;
    }
    this.#arith(op, this.#slot(dest), this.#slot(toSti ? 0 : i));
    if (this.#blocked()) return;
    this.#setFrom(dest, RES);
    if (pop) this.#pop();
  }

  // ---- comparisons ---------------------------------------------------------------------------

  /** Compares finite or infinite (not NaN, not unsupported) slots: -1, 0, 1. */
  #order(sa: number, ca: number, sb: number, cb: number): number {
    const aZero = ca === ZERO, bZero = cb === ZERO;
    if (aZero && bZero) return 0;
    const aSign = aZero ? -1 : this.#sign(sa), bSign = bZero ? -1 : this.#sign(sb);
    // A zero sorts between the signs: compare as (sign class, magnitude).
    const aKey = aZero ? 0 : aSign ? -1 : 1, bKey = bZero ? 0 : bSign ? -1 : 1;
    if (aKey !== bKey) return aKey > bKey ? 1 : -1;
    // Same sign, both non-zero: compare magnitudes (denormals share exponent 1 with the smallest normals).
    let ea = this.#se[sa] & 0x7FFF, eb = this.#se[sb] & 0x7FFF;
    if (ea === 0) ea = 1;
    if (eb === 0) eb = 1;
    let mag: number;
    if (ea !== eb) mag = ea > eb ? 1 : -1;
    else {
      const ah = this.#sig[2 * sa + 1], bh = this.#sig[2 * sb + 1];
      const al = this.#sig[2 * sa], bl = this.#sig[2 * sb];
      mag = ah !== bh ? (ah > bh ? 1 : -1) : al !== bl ? (al > bl ? 1 : -1) : 0;
    }
    return aKey > 0 ? mag : -mag;
  }

  /**
   * Compares the values in slots sa and sb: GREATER, LESS, EQUAL or UNORDERED; #I for an empty
   * operand, an unsupported encoding, an SNaN, or (unless `quiet`) a QNaN; #D for a denormal.
   */
  #relate(sa: number, aEmpty: boolean, sb: number, bEmpty: boolean, quiet: boolean): number {
    this.#setCc(C1, 0);
    if (aEmpty || bEmpty) {
      this.#stackUnderflow();
      return UNORDERED;
    }
    const ca = this.#cls(sa), cb = this.#cls(sb);
    if (ca === UNSUPPORTED || cb === UNSUPPORTED) {
      this.#exc |= IE;
      return UNORDERED;
    }
    if (ca === NAN || cb === NAN) {
      if (!quiet || (ca === NAN && this.#isSignaling(sa)) || (cb === NAN && this.#isSignaling(sb))) {
        this.#exc |= IE;
      }
      return UNORDERED;
    }
    if (this.#memDenormal || ca === DENORMAL || cb === DENORMAL) this.#exc |= DE;
    const o = this.#order(sa, ca, sb, cb);
    return o > 0 ? GREATER : o < 0 ? LESS : EQUAL;
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
    this.#zero(MEM, 0);
    const rel = this.#relate(this.#top, this.#isEmpty(0), MEM, false, false);
    this.#setCc(CC_ALL & ~C1, CC_OF_RELATION[rel]);
  }

  /** FXAM: C3 C2 C0 classify ST(0) (SDM FXAM table), C1 = its sign. */
  #fxam(): void {
    const p = this.#top;
    const sign = this.#sign(p) ? C1 : 0;
    let cls: number;
    if (this.#empty[p]) cls = C3 | C0;
    else {
      switch (this.#cls(p)) {
        case NORMAL:
          cls = C2;
          break;
        case ZERO:
          cls = C3;
          break;
        case DENORMAL:
          cls = C3 | C2;
          break;
        case INFINITE:
          cls = C2 | C0;
          break;
        case NAN:
          cls = C0;
          break;
        default:
          cls = 0; // unsupported
      }
    }
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
      if (this.#masked(IE)) this.#indefinite(this.#top);
      return;
    }
    if (cond !== negate) this.#copy(this.#top, this.#slot(i));
  }

  // ---- loads ---------------------------------------------------------------------------------

  /** Reads an m32fp operand into MEM (widened exactly); notes a denormal for #D. */
  #readF32(addr: number): void {
    const bits = this.#host.readU32(addr) >>> 0;
    const sign = bits >>> 31, e = (bits >>> 23) & 0xFF, frac = bits & 0x7FFFFF;
    this.#memDenormal = e === 0 && frac !== 0;
    if (e === 0xFF) this.#put(MEM, 0, (0x80000000 | (frac << 8)) >>> 0, (sign << 15) | 0x7FFF);
    else if (e !== 0) this.#put(MEM, 0, (0x80000000 | (frac << 8)) >>> 0, (sign << 15) | (e - 127 + 16383));
    else if (frac === 0) this.#zero(MEM, sign);
    else {
      const z = Math.clz32(frac) - 8; // shift to put the leading one at bit 23
      this.#put(MEM, 0, (frac << (8 + z)) >>> 0, (sign << 15) | (-126 - z + 16383));
    }
  }

  /** Reads an m64fp operand into MEM (widened exactly); notes a denormal for #D. */
  #readF64(addr: number): void {
    const lo = this.#host.readU32(addr) >>> 0;
    const hi = this.#host.readU32(addr + 4) >>> 0;
    this.#memDenormal = (hi & 0x7FF00000) === 0 && ((hi & 0x000FFFFF) | lo) !== 0;
    toFloat80(hi, lo);
    this.#put(MEM, float80Out[0], float80Out[1], float80Out[2]);
  }

  /**
   * FLD m32fp/m64fp of the value in MEM: overflow first, then #I for an SNaN (quieted), then #D
   * (which, even unmasked, does not stop the load: the host x87 loads the denormal too).
   */
  #fldMemory(): void {
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    if (this.#cls(MEM) === NAN && this.#isSignaling(MEM)) {
      this.#exc |= IE;
      if (!this.#masked(IE)) return;
      this.#sig[2 * MEM + 1] |= 0x40000000;
    }
    if (this.#memDenormal) this.#exc |= DE;
    this.#pushFrom(MEM);
  }

  /** FLD m80fp: the image as it is (no #I for SNaNs, no #D: there is no conversion). */
  #fldF80(addr: number): void {
    const lo = this.#host.readU32(addr);
    const hi = this.#host.readU32(addr + 4);
    const se = this.#host.readU16(addr + 8);
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    this.#put(RES, lo >>> 0, hi >>> 0, se);
    this.#pushFrom(RES);
  }

  #fldInteger(v: number): void {
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    this.#loadInt32(RES, v);
    this.#pushFrom(RES);
  }

  #fbld(addr: number): void {
    const lo = this.#host.readU32(addr);
    const mid = this.#host.readU32(addr + 4);
    const hi = this.#host.readU16(addr + 8);
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    const m = fromPackedBcd(lo, mid, hi);
    const sign = (hi & 0x8000) !== 0 ? 1 : 0;
    if (m === 0n) this.#zero(RES, sign);
    else {
      packInteger(sign, m);
      this.#putOut(RES);
    }
    this.#pushFrom(RES);
  }

  #fldSt(i: number): void {
    const src = this.#slot(i);
    const srcEmpty = this.#empty[src] !== 0;
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    if (srcEmpty) {
      this.#stackUnderflow();
      if (this.#masked(IE)) {
        this.#top = (this.#top - 1) & 7;
        this.#indefinite(this.#top);
      }
      return;
    }
    this.#top = (this.#top - 1) & 7;
    this.#copy(this.#top, src);
  }

  /** FLD1 ... FLDZ: the constant rounded to 64 bits per RC (PC does not apply; no #P). */
  #fldConstant(index: number): void {
    const se = CONSTANT_EXP[index];
    let hi = CONSTANT_HI[index], lo = CONSTANT_LO[index];
    const rest = CONSTANT_REST[index], rc = this.#rc();
    if ((rest > 0 && (rc === 0 || rc === 2)) || (rest < 0 && rc === 2)) {
      lo = lo + 1;
      if (lo === 4294967296) { // (no constant's significand is all ones)
        lo = 0;
        hi++;
      }
    }
    this.#setCc(C1, 0);
    if (!this.#canPush()) return;
    this.#put(RES, lo >>> 0, hi >>> 0, se);
    this.#pushFrom(RES);
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

  /**
   * ST(0) converted to binary32 (`single`) or binary64 words in #loadWords[0..1] (low, high), or
   * false when the store must not happen. Raises #I, #O, #U, #P and sets C1.
   */
  #toMemoryFloat(single: boolean): boolean {
    const w = this.#loadWords;
    this.#setCc(C1, 0);
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return false;
      w[0] = single ? 0xFFC00000 : 0;
      w[1] = 0xFFF80000;
      return true;
    }
    const p = this.#top, c = this.#cls(p), sign = this.#sign(p);
    const hi = this.#sig[2 * p + 1], lo = this.#sig[2 * p];
    switch (c) {
      case UNSUPPORTED:
        this.#exc |= IE;
        w[0] = single ? 0xFFC00000 : 0;
        w[1] = 0xFFF80000;
        break;
      case NAN: {
        if (this.#isSignaling(p)) this.#exc |= IE;
        const q = (hi | 0x40000000) >>> 0; // quieted; the payload keeps its top bits
        if (single) w[0] = ((sign << 31) | 0x7F800000 | ((q >>> 8) & 0x7FFFFF)) >>> 0;
        else {
          w[1] = ((sign << 31) | 0x7FF00000 | ((q >>> 11) & 0xFFFFF)) >>> 0;
          w[0] = ((q << 21) | (lo >>> 11)) >>> 0;
        }
        break;
      }
      case INFINITE:
        w[0] = single ? ((sign << 31) | 0x7F800000) >>> 0 : 0;
        w[1] = ((sign << 31) | 0x7FF00000) >>> 0;
        break;
      case ZERO:
        w[0] = single ? (sign << 31) >>> 0 : 0;
        w[1] = (sign << 31) >>> 0;
        break;
      default: {
        this.#unpack(p, 0);
        const u = this.#u;
        const fmt = single ? FMT_F32 : FMT_F64;
        this.#rounded(roundPack(sign, u[1], u[2], u[3], 0, 0, single ? 24 : 53, this.#rc(), this.#cw, fmt));
        const e = extOut[2] & 0x7FFF, h = extOut[1], l = extOut[0];
        if (single) w[0] = ((sign << 31) | (e << 23) | ((h >>> 8) & 0x7FFFFF)) >>> 0;
        else {
          w[1] = ((sign << 31) | (e << 20) | ((h >>> 11) & 0xFFFFF)) >>> 0;
          w[0] = ((h << 21) | (l >>> 11)) >>> 0;
        }
      }
    }
    return !this.#storeBlocked();
  }

  /** FST/FSTP m32fp. */
  #fstF32(addr: number, pop: boolean): void {
    if (!this.#toMemoryFloat(true)) return;
    this.#host.writeU32(addr, this.#loadWords[0]);
    if (pop) this.#pop();
  }

  /** FST/FSTP m64fp. */
  #fstF64(addr: number, pop: boolean): void {
    if (!this.#toMemoryFloat(false)) return;
    this.#host.writeU32(addr, this.#loadWords[0]);
    this.#host.writeU32(addr + 4, this.#loadWords[1]);
    if (pop) this.#pop();
  }

  /** FSTP m80fp: the register image as it is, SNaNs and unsupported encodings included. */
  #fstpF80(addr: number): void {
    this.#setCc(C1, 0);
    let src = this.#top;
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
      this.#indefinite(RES);
      src = RES;
    }
    this.#host.writeU32(addr, this.#sig[2 * src]);
    this.#host.writeU32(addr + 4, this.#sig[2 * src + 1]);
    this.#host.writeU16(addr + 8, this.#se[src]);
    this.#pop();
  }

  /**
   * ST(0) rounded to an integer per RC (`chop`: toward zero) as a BigInt, or null for the
   * indefinite (#I raised: NaN, infinity, unsupported, or |result| >= `limit`). Raises #P, sets C1.
   */
  #toInteger(limit: bigint, chop: boolean): bigint | null {
    const p = this.#top, c = this.#cls(p);
    if (c === NAN || c === INFINITE || c === UNSUPPORTED) {
      this.#exc |= IE;
      return null;
    }
    if (c === ZERO) return 0n;
    this.#unpack(p, 0);
    const u = this.#u;
    const m = roundToInteger(u[0], u[1], u[2], u[3], chop ? 3 : this.#rc());
    const v = u[0] ? -m : m;
    if (v >= limit || v < -limit) {
      this.#exc |= IE;
      return null;
    }
    this.#rounded(intFlags);
    return v;
  }

  /** FIST/FISTP/FISTTP m16int/m32int/m64int; the integer indefinite under masked #I. */
  #fistp(addr: number, sizeBytes: number, pop: boolean, chop: boolean): void {
    this.#setCc(C1, 0);
    const c = this.#cls(this.#top);
    if (sizeBytes !== 8 && !this.#isEmpty(0) && (c === NORMAL || c === DENORMAL)) {
      // The common case in plain numbers: |x| < 2^31.
      this.#unpack(this.#top, 0);
      const u = this.#u;
      if (u[1] < 31) {
        const m = roundToSmallInteger(u[0], u[1], u[2], u[3], chop ? 3 : this.#rc());
        const v = u[0] ? -m : m;
        const limit = sizeBytes === 2 ? 32768 : 2147483648;
        if (v < limit && v >= -limit) {
          this.#rounded(intFlags);
          if (sizeBytes === 2) this.#host.writeU16(addr, v & 0xFFFF);
          else this.#host.writeU32(addr, v | 0);
          if (pop) this.#pop();
          return;
        }
      }
    }
    let v: bigint | null = null;
    if (this.#isEmpty(0)) {
      this.#stackUnderflow();
      if (!this.#masked(IE)) return;
    } else {
      v = this.#toInteger(
        sizeBytes === 2 ? 32768n : sizeBytes === 4 ? 2147483648n : 9223372036854775808n,
        chop,
      );
      if (v === null && !this.#masked(IE)) return;
    }
    if (sizeBytes === 2) this.#host.writeU16(addr, v === null ? 0x8000 : Number(BigInt.asUintN(16, v)));
    else if (sizeBytes === 4) {
      this.#host.writeU32(addr, v === null ? 0x80000000 : Number(BigInt.asIntN(32, v)));
    } else {
      const u = v === null ? 0x8000000000000000n : BigInt.asUintN(64, v);
      this.#host.writeU32(addr, Number(u & 0xFFFFFFFFn));
      this.#host.writeU32(addr + 4, Number(u >> 32n));
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
      const v = this.#toInteger(1000000000000000000n, false);
      if (v === null) {
        if (!this.#masked(IE)) return;
      } else {
        const out = toPackedBcd(v < 0n ? -v : v, this.#sign(this.#top) !== 0);
        w0 = out[0];
        w1 = out[1];
        w2 = out[2];
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
      this.#indefinite(this.#slot(i));
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
      if (this.#isEmpty(0)) this.#indefinite(this.#top);
      if (this.#isEmpty(i)) this.#indefinite(this.#slot(i));
    }
    const p0 = this.#top, pi = this.#slot(i);
    this.#copy(TMP, p0);
    this.#copy(p0, pi);
    this.#copy(pi, TMP);
  }

  // ---- arithmetic on the stack top -----------------------------------------------------------

  /**
   * For instructions on ST(0) alone: true when ST(0) is empty (masked response done), or its value
   * is a NaN or unsupported (RES holds the result, #I raised as due).
   */
  #unaryException(): boolean {
    if (this.#underflowSt0()) return true;
    const c = this.#cls(this.#top);
    if (c === UNSUPPORTED) this.#invalid();
    else if (c === NAN) this.#nanResult(this.#top, this.#top);
    else return false;
    if (!this.#blocked()) this.#setFrom(0, RES);
    return true;
  }

  #fsqrt(): void {
    this.#setCc(C1, 0);
    if (this.#unaryException()) return;
    const p = this.#top, c = this.#cls(p);
    if (c === ZERO) return; // sqrt(-0) = -0
    if (this.#sign(p)) this.#invalid();
    else if (this.#denormalStops(c === DENORMAL)) return;
    else if (c === INFINITE) return;
    else {
      this.#unpack(p, 0);
      const u = this.#u;
      this.#rounded(sqrtExt(u[1], u[2], u[3], this.#prec(), this.#rc(), this.#cw));
      this.#putOut(RES);
    }
    if (!this.#blocked()) this.#setFrom(0, RES);
  }

  #frndint(): void {
    this.#setCc(C1, 0);
    if (this.#unaryException()) return;
    const p = this.#top, c = this.#cls(p);
    if (c === ZERO || c === INFINITE) return;
    if (this.#denormalStops(c === DENORMAL)) return;
    this.#unpack(p, 0);
    const u = this.#u;
    if (u[1] >= 63) return; // already integral
    const m = roundToInteger(u[0], u[1], u[2], u[3], this.#rc());
    this.#rounded(intFlags);
    if (m === 0n) this.#zero(RES, u[0]);
    else {
      packInteger(u[0], m);
      this.#putOut(RES);
    }
    this.#setFrom(0, RES);
  }

  /** FSCALE: ST(0) * 2^trunc(ST(1)), rounded once to 64 bits. */
  #fscale(): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0) || this.#isEmpty(1)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) this.#indefinite(this.#top);
      return;
    }
    const px = this.#top, py = this.#slot(1);
    const cx = this.#cls(px), cy = this.#cls(py);
    if (cx === UNSUPPORTED || cy === UNSUPPORTED) this.#invalid();
    else if (cx === NAN || cy === NAN) this.#nanResult(px, py);
    else if (this.#denormalStops(cx === DENORMAL || cy === DENORMAL)) return;
    else if (cy === INFINITE) {
      const ySign = this.#sign(py);
      if (!ySign) {
        if (cx === ZERO) this.#invalid();
        else if (cx === INFINITE) this.#copy(RES, px);
        else this.#infinity(RES, this.#sign(px));
      } else if (cx === INFINITE) this.#invalid();
      else this.#zero(RES, this.#sign(px));
    } else if (cx === ZERO || cx === INFINITE) this.#copy(RES, px);
    else {
      let n = 0;
      if (cy !== ZERO) {
        this.#unpack(py, 1);
        const e = this.#u[5];
        n = e >= 31 ? 1 << 30 : e < 0 ? 0 : this.#u[6] >>> (31 - e);
        if (this.#u[4]) n = -n;
      }
      this.#unpack(px, 0);
      const u = this.#u;
      this.#rounded(roundPack(u[0], u[1] + n, u[2], u[3], 0, 0, 64, this.#rc(), this.#cw, FMT_EXT));
      this.#putOut(RES);
    }
    if (!this.#blocked()) this.#setFrom(0, RES);
  }

  /** FXTRACT: ST(0) becomes its exponent and the significand is pushed. */
  #fxtract(): void {
    this.#setCc(C1, 0);
    if (this.#isEmpty(0) || !this.#isEmpty(7)) {
      if (this.#isEmpty(0)) this.#stackUnderflow();
      else this.#stackOverflow();
      if (this.#masked(IE)) {
        this.#indefinite(this.#top);
        this.#top = (this.#top - 1) & 7;
        this.#indefinite(this.#top);
      }
      return;
    }
    const p = this.#top, c = this.#cls(p);
    if (c === UNSUPPORTED) {
      this.#invalid();
      this.#copy(RES2, RES);
    } else if (c === NAN) {
      this.#nanResult(p, p);
      this.#copy(RES2, RES);
    } else if (c === ZERO) {
      this.#exc |= ZE;
      this.#infinity(RES, 1);
      this.#copy(RES2, p);
    } else if (c === INFINITE) {
      this.#infinity(RES, 0);
      this.#copy(RES2, p);
    } else {
      if (this.#denormalStops(c === DENORMAL)) return;
      this.#unpack(p, 0);
      const u = this.#u;
      this.#loadInt32(RES, u[1]);
      this.#put(RES2, u[3], u[2], (u[0] << 15) | 16383);
    }
    if (this.#blocked()) return;
    this.#setFrom(0, RES);
    this.#pushFrom(RES2);
  }

  /** FPREM (truncating) and FPREM1 (IEEE, round-to-nearest quotient): exact, maybe partial. */
  #fprem(ieee: boolean): void {
    this.#setCc(C1 | C2, 0);
    if (this.#isEmpty(0) || this.#isEmpty(1)) {
      this.#stackUnderflow();
      if (this.#masked(IE)) this.#indefinite(this.#top);
      return;
    }
    const pa = this.#top, pb = this.#slot(1);
    const ca = this.#cls(pa), cb = this.#cls(pb);
    if (ca === UNSUPPORTED || cb === UNSUPPORTED) this.#invalid();
    else if (ca === NAN || cb === NAN) this.#nanResult(pa, pb);
    else if (ca === INFINITE || cb === ZERO) this.#invalid();
    else if (this.#denormalStops(ca === DENORMAL || cb === DENORMAL)) return;
    else if (ca === ZERO || cb === INFINITE) {
      this.#canonical(RES, pa);
      this.#setCc(C0 | C1 | C3, 0);
    } else {
      this.#unpack(pa, 0);
      this.#unpack(pb, 1);
      const u = this.#u;
      const sign = u[0], ea = u[1], eb = u[5];
      const ma = (BigInt(u[2]) << 32n) | BigInt(u[3]), mb = (BigInt(u[6]) << 32n) | BigInt(u[7]);
      const d = ea - eb;
      let r: bigint, rExp: number;
      if (d >= 64) {
        // Partial remainder: reduce by b * 2^(d - n), quotient truncated; C2 says "not done".
        const n = (d & 31) | 32;
        r = (ma << BigInt(n)) % mb;
        rExp = eb + (d - n);
        this.#setCc(C0 | C2 | C3, C2);
      } else {
        const A = d > 0 ? ma << BigInt(d) : ma, B = d < 0 ? mb << BigInt(-d) : mb;
        let q = A / B;
        r = A - q * B;
        rExp = d < 0 ? ea : eb;
        if (ieee && (2n * r > B || (2n * r === B && (q & 1n) === 1n))) {
          r = B - r; // |a - (q + 1) b|, with the sign flipped
          q++;
          this.#setCc(C0 | C1 | C3, 0);
          this.#quotientBits(Number(q & 7n));
          this.#remainder(sign ^ 1, r, rExp);
          if (!this.#blocked()) this.#setFrom(0, RES);
          return;
        }
        this.#quotientBits(Number(q & 7n));
      }
      this.#remainder(sign, r, rExp);
    }
    if (!this.#blocked()) this.#setFrom(0, RES);
  }

  #quotientBits(q: number): void {
    this.#setCc(C0 | C1 | C3, (q & 4 ? C0 : 0) | (q & 2 ? C3 : 0) | (q & 1 ? C1 : 0));
  }

  /** RES = (-1)^sign * r * 2^(exp - 63), exact (r < 2^64), or a signed zero. */
  #remainder(sign: number, r: bigint, exp: number): void {
    if (r === 0n) {
      this.#zero(RES, sign);
      return;
    }
    const bits = r.toString(2).length;
    const m = r << BigInt(64 - bits);
    const c1 = this.#ccBits & C1, c1Mask = this.#ccMask & C1;
    this.#rounded(
      roundPack(
        sign,
        exp - 64 + bits,
        Number(m >> 32n),
        Number(m & 0xFFFFFFFFn),
        0,
        0,
        64,
        0,
        this.#cw,
        FMT_EXT,
      ),
    );
    // The remainder is exact; C1 holds the quotient bit, not "rounded up".
    this.#ccBits = (this.#ccBits & ~C1) | c1;
    this.#ccMask = (this.#ccMask & ~C1) | c1Mask;
    this.#putOut(RES);
  }

  // ---- transcendentals -----------------------------------------------------------------------

  /** Takes a transcendental's rounded result from extOut into slot dst (flags from extended_math.ts). */
  #approximate(dst: number, flags: number): void {
    this.#rounded(flags);
    this.#putOut(dst);
  }

  /** True when finite slot s has magnitude above 1 (or, with `orEqual`, at least 1). */
  #beyondOne(s: number, orEqual: boolean): boolean {
    const e = this.#se[s] & 0x7FFF;
    if (e !== 16383) return e > 16383;
    return orEqual || this.#sig[2 * s + 1] !== 0x80000000 || this.#sig[2 * s] !== 0;
  }

  /** FSIN (0), FCOS (1), FPTAN (2), FSINCOS (3). |x| >= 2^63 sets C2 and changes nothing. */
  #trig(kind: number): void {
    this.#setCc(C1 | C2, 0);
    const pushes = kind >= 2;
    if (this.#isEmpty(0) || (pushes && !this.#isEmpty(7))) {
      if (this.#isEmpty(0)) this.#stackUnderflow();
      else this.#stackOverflow();
      if (this.#masked(IE)) {
        this.#indefinite(this.#top);
        if (pushes) {
          this.#top = (this.#top - 1) & 7;
          this.#indefinite(this.#top);
        }
      }
      return;
    }
    const p = this.#top, c = this.#cls(p);
    if (c === UNSUPPORTED || c === INFINITE) {
      this.#invalid();
      this.#copy(RES2, RES);
    } else if (c === NAN) {
      this.#nanResult(p, p);
      this.#copy(RES2, RES);
    } else if (c === ZERO) {
      if (kind === 1) this.#loadInt32(RES, 1);
      else this.#copy(RES, p); // sin(±0) = tan(±0) = ±0
      this.#loadInt32(RES2, 1); // cos(0) for FSINCOS, 1.0 for FPTAN
    } else if ((this.#se[p] & 0x7FFF) >= 16383 + 63) {
      this.#setCc(C2, C2);
      return;
    } else {
      if (this.#denormalStops(c === DENORMAL)) return;
      this.#unpack(p, 0);
      const u = this.#u, rc = this.#rc(), cw = this.#cw;
      switch (kind) {
        case 0:
        case 1:
          this.#approximate(RES, trigExt(kind, u[0], u[1], u[2], u[3], rc, cw));
          break;
        case 2:
          this.#approximate(RES, trigExt(2, u[0], u[1], u[2], u[3], rc, cw));
          this.#loadInt32(RES2, 1);
          break;
        default:
          this.#approximate(RES2, trigExt(1, u[0], u[1], u[2], u[3], rc, cw));
          this.#approximate(RES, trigExt(0, u[0], u[1], u[2], u[3], rc, cw));
      }
    }
    if (this.#blocked()) return;
    this.#setFrom(0, RES);
    if (pushes) this.#pushFrom(RES2);
  }

  /** FPATAN: ST(1) = atan2(ST(1), ST(0)), pop. */
  #fpatan(): void {
    this.#setCc(C1, 0);
    if (this.#binaryUnderflow()) return;
    const px = this.#top, py = this.#slot(1);
    const cx = this.#cls(px), cy = this.#cls(py);
    const xSign = this.#sign(px), ySign = this.#sign(py);
    const rc = this.#rc(), cw = this.#cw;
    if (cx === UNSUPPORTED || cy === UNSUPPORTED) this.#invalid();
    else if (cx === NAN || cy === NAN) this.#nanResult(px, py);
    else if (this.#denormalStops(cx === DENORMAL || cy === DENORMAL)) return;
    else if (cy === ZERO) {
      if (xSign) this.#approximate(RES, piQuartersExt(ySign, 4, rc, cw)); // ±pi
      else this.#zero(RES, ySign);
    } else if (cy === INFINITE) {
      const n = cx === INFINITE ? (xSign ? 3 : 1) : 2; // ±3pi/4, ±pi/4, ±pi/2
      this.#approximate(RES, piQuartersExt(ySign, n, rc, cw));
    } else if (cx === ZERO) this.#approximate(RES, piQuartersExt(ySign, 2, rc, cw));
    else if (cx === INFINITE) {
      if (xSign) this.#approximate(RES, piQuartersExt(ySign, 4, rc, cw));
      else this.#zero(RES, ySign);
    } else {
      this.#unpack(py, 0);
      this.#unpack(px, 1);
      const u = this.#u;
      this.#approximate(RES, atan2Ext(u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], rc, cw));
    }
    if (this.#blocked()) return;
    this.#setFrom(1, RES);
    this.#pop();
  }

  /** FYL2X: ST(1) = ST(1) * log2(ST(0)); FYL2XP1: ST(1) * log2(ST(0) + 1). Pop. */
  #fyl2x(plusOne: boolean): void {
    this.#setCc(C1, 0);
    if (this.#binaryUnderflow()) return;
    const px = this.#top, py = this.#slot(1);
    const cx = this.#cls(px), cy = this.#cls(py);
    if (cx === UNSUPPORTED || cy === UNSUPPORTED) this.#invalid();
    else if (cx === NAN || cy === NAN) this.#nanResult(px, py);
    else {
      const xSign = this.#sign(px), ySign = this.#sign(py);
      const yInf = cy === INFINITE, yZero = cy === ZERO;
      const rc = this.#rc(), cw = this.#cw;
      if (plusOne) {
        if (cx === ZERO) {
          if (yInf) this.#invalid();
          else this.#zero(RES, xSign ^ ySign);
        } else if (xSign && this.#beyondOne(px, false)) {
          this.#invalid(); // log of a negative number (the domain is |x| < 1 - sqrt(2)/2)
        } else if (cx === INFINITE) {
          if (yZero) this.#invalid();
          else this.#infinity(RES, ySign);
        } else if (this.#denormalStops(cx === DENORMAL || cy === DENORMAL)) return;
        else if (yInf) this.#infinity(RES, xSign ^ ySign);
        else if (yZero) this.#zero(RES, xSign ^ ySign);
        else if (xSign && !this.#beyondOne(px, true)) {
          this.#unpack(py, 0);
          this.#unpack(px, 1);
          const u = this.#u;
          this.#approximate(RES, yl2xp1Ext(u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], rc, cw));
        } else if (xSign) this.#infinity(RES, ySign ^ 1); // x = -1: log2(0)
        else {
          this.#unpack(py, 0);
          this.#unpack(px, 1);
          const u = this.#u;
          this.#approximate(RES, yl2xp1Ext(u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], rc, cw));
        }
      } else if (xSign && cx !== ZERO) this.#invalid(); // -0 is not below 0
      else if (cx === ZERO) {
        if (yZero) this.#invalid();
        else {
          if (!yInf) this.#exc |= ZE;
          this.#infinity(RES, ySign ^ 1);
        }
      } else if (cx === INFINITE) {
        if (yZero) this.#invalid();
        else this.#infinity(RES, ySign);
      } else if (this.#denormalStops(cx === DENORMAL || cy === DENORMAL)) return;
      else if (!this.#beyondOne(px, false) && this.#beyondOne(px, true)) { // x = 1
        if (yInf) this.#invalid();
        else this.#zero(RES, ySign);
      } else if (yInf) this.#infinity(RES, this.#beyondOne(px, false) === !ySign ? 0 : 1);
      else if (yZero) this.#zero(RES, this.#beyondOne(px, false) === !ySign ? 0 : 1);
      else {
        this.#unpack(py, 0);
        this.#unpack(px, 1);
        const u = this.#u;
        this.#approximate(RES, yl2xExt(u[0], u[1], u[2], u[3], u[5], u[6], u[7], rc, cw));
      }
    }
    if (this.#blocked()) return;
    this.#setFrom(1, RES);
    this.#pop();
  }

  /** F2XM1: ST(0) = 2^ST(0) - 1 (defined for -1 <= x <= 1). */
  #f2xm1(): void {
    this.#setCc(C1, 0);
    if (this.#unaryException()) return;
    const p = this.#top, c = this.#cls(p);
    if (c === ZERO) return;
    if (c === INFINITE) {
      if (this.#sign(p)) this.#loadInt32(RES, -1);
      else return;
    } else {
      if (this.#denormalStops(c === DENORMAL)) return;
      if (this.#beyondOne(p, false)) return; // out of range: the host x87 leaves the operand as it is
      this.#unpack(p, 0);
      const u = this.#u;
      this.#approximate(RES, f2xm1Ext(u[0], u[1], u[2], u[3], this.#rc(), this.#cw));
    }
    if (!this.#blocked()) this.#setFrom(0, RES);
  }

  /** For ST(0)/ST(1) instructions that write ST(1) and pop: true (masked response done) if either is empty. */
  #binaryUnderflow(): boolean {
    if (!this.#isEmpty(0) && !this.#isEmpty(1)) return false;
    this.#stackUnderflow();
    if (this.#masked(IE)) {
      this.#indefinite(this.#slot(1));
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
      this.#host.writeU32(addr + 10 * i, this.#sig[2 * p]);
      this.#host.writeU32(addr + 10 * i + 4, this.#sig[2 * p + 1]);
      this.#host.writeU16(addr + 10 * i + 8, this.#se[p]);
    }
  }

  /** Reads 80-bit ST(0)..ST(7) from `addr` with the given stride into #loadWords. Changes nothing. */
  #readRegisters(addr: number, stride: number): void {
    for (let i = 0; i < 8; i++) {
      const a = addr + stride * i;
      this.#loadWords[3 * i] = this.#host.readU32(a);
      this.#loadWords[3 * i + 1] = this.#host.readU32(a + 4);
      this.#loadWords[3 * i + 2] = this.#host.readU16(a + 8);
    }
  }

  /** Installs #loadWords as ST(0)..ST(7) relative to the (new) TOP. */
  #commitRegisters(): void {
    for (let i = 0; i < 8; i++) {
      const p = (this.#top + i) & 7;
      this.#sig[2 * p] = this.#loadWords[3 * i];
      this.#sig[2 * p + 1] = this.#loadWords[3 * i + 1];
      this.#se[p] = this.#loadWords[3 * i + 2];
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
      h.writeU32(r, this.#sig[2 * p]);
      h.writeU32(r + 4, this.#sig[2 * p + 1]);
      h.writeU32(r + 8, this.#se[p]);
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
