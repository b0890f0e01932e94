/**
 * Generates differential-test cases from the decoder's own opcode table (lib/x86/opcode_table.ts,
 * STYLE rule 10): every user-level form, with and without 0x66, register and memory operands (all
 * mod values, SIB, disp8/32, 16-bit addressing), REP/LOCK/segment prefixes, edge-value operands, the
 * SDM's dynamically undefined results, and flag consumers after the instruction (lazy flags). Far
 * transfers, segment loads, I/O and system forms are left out.
 */
import {
  AF,
  CF,
  DF,
  OF,
  OPCODE_FORMS,
  type OpcodeForm,
  PF,
  SF,
  STATUS_FLAGS,
  ZF,
} from "../../../lib/x86/opcode_table.ts";
import {
  CODE_BASE,
  CODE_PAGE_BOUNDARY,
  DATA_REGION,
  type DiffCase,
  ENTRY_EIP,
  LOW_REGION,
  makeBackground,
  type Patch,
  type Region,
} from "./diff_case.ts";
import { Prng } from "./prng.ts";

const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

/** Forms the generator leaves out, with the reason (keyed by mnemonic or "mnemonic operands"). */
const SKIPPED: Record<string, string> = {
  "MOV Ew,Sw": "selector values differ between host user mode and our flat CPL 0",
  CALLF: "far transfers need the host's descriptor tables",
  JMPF: "far transfers need the host's descriptor tables",
  RETF: "far transfers need the host's descriptor tables",
  IRET: "far transfers need the host's descriptor tables",
  // This (virtualised) host reports ICEBP's #DB with EIP at the INT1; the SDM's trap EIP is after it.
  INT1: "the host's #DB EIP for ICEBP is not architectural here",
};

/** Mnemonics that accept LOCK when their destination is memory (SDM Vol. 2, LOCK). */
const LOCKABLE = new Set([
  "ADD",
  "ADC",
  "AND",
  "BTC",
  "BTR",
  "BTS",
  "CMPXCHG",
  "CMPXCHG8B",
  "DEC",
  "INC",
  "NEG",
  "NOT",
  "OR",
  "SBB",
  "SUB",
  "XOR",
  "XADD",
  "XCHG",
]);

/** Forms without a v/z operand whose behaviour still follows the operand size. */
const SIZE_SENSITIVE_OPCODES = new Set([
  0x06,
  0x0E,
  0x16,
  0x1E,
  0x60,
  0x61,
  0x6A,
  0x98,
  0x99,
  0x9C,
  0x9D,
  0xC8,
  0xC9,
  0x1A0,
  0x1A8,
]);

const SHIFTS = new Set(["ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "SAL", "SAR"]);
const STRINGS = new Set([
  "MOVSB",
  "MOVS",
  "CMPSB",
  "CMPS",
  "STOSB",
  "STOS",
  "LODSB",
  "LODS",
  "SCASB",
  "SCAS",
]);
const EDGES = [
  0,
  1,
  2,
  0x7E,
  0x7F,
  0x80,
  0x81,
  0xFE,
  0xFF,
  0x100,
  0x7FFF,
  0x8000,
  0x8001,
  0xFFFE,
  0xFFFF,
  0x1_0000,
  0x7FFF_FFFF,
  0x8000_0000,
  0x8000_0001,
  0xFFFF_FFFE,
  0xFFFF_FFFF,
];
/** Flags each condition pair (O/NO, B/AE, E/NE, BE/A, S/NS, P/NP, L/GE, LE/G) reads. */
const CONDITION_FLAGS = [OF, CF, ZF, CF | ZF, SF, PF, SF | OF, ZF | SF | OF];
const CONDITION_NAMES = [
  "o",
  "no",
  "b",
  "ae",
  "e",
  "ne",
  "be",
  "a",
  "s",
  "ns",
  "p",
  "np",
  "l",
  "ge",
  "le",
  "g",
];
const SHIFT_COUNTS = [0, 1, 1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 0xFF];

/** The regions and their backgrounds the cases were generated against. */
export interface CaseSet {
  readonly cases: DiffCase[];
  readonly regions: readonly Region[];
  readonly backgrounds: readonly Uint8Array[];
}

export interface GeneratorOptions {
  readonly seed: number;
  readonly count: number;
  /** Whether the host can map LOW_REGION, so 16-bit addressing may touch memory. */
  readonly lowRegion: boolean;
  /** Only forms with these mnemonics, when given (for focused runs). */
  readonly mnemonics?: ReadonlySet<string>;
  /**
   * Only REP MOVS whose destination overlaps ahead of its source in the copy direction: there the
   * SDM's element-by-element result differs from a block copy, and some hosts' fast string moves
   * give the block copy. Such cases are checked against the architecture apart (string_overlap_test.ts);
   * ordinary runs overlap copies only the other way, where both readings agree.
   */
  readonly hazardousOverlap?: boolean;
  /**
   * The host is made by our CPUID vendor (GenuineIntel): results the SDM leaves undefined but that
   * we model after that vendor (VENDOR_DEFINED in this file) are compared too. On other hosts they
   * are left out, and tests/x86/ops/vendor_undefined_test.ts checks them against Intel's values.
   */
  readonly hostIsOurVendor?: boolean;
}

/** A form the generator covers, or one it skips and why. */
export interface FormPlan {
  readonly form: OpcodeForm;
  readonly skip: string | null;
}

/** Every form in OPCODE_FORMS with the generator's verdict; duplicated (opcode, ext) keys are table bugs. */
export function planForms(): FormPlan[] {
  const seen = new Map<number, OpcodeForm>();
  const plans: FormPlan[] = [];
  // A Z-expanded row overlapping an exact row (e.g. XCHG 91+r reaching 98) yields to the exact row.
  const exact = new Set<number>();
  for (const f of OPCODE_FORMS) {
    if (!f.operands.some((o) => o[0] === "Z")) exact.add(f.opcode * 8 + Math.max(f.ext, 0));
  }
  for (const f of OPCODE_FORMS) {
    const key = f.opcode * 8 + Math.max(f.ext, 0);
    const isZ = f.operands.some((o) => o[0] === "Z");
    let skip = skipReason(f);
    if (skip === null && isZ && exact.has(key)) {
      skip = `table bug: ${f.mnemonic} ${f.operands.join(",")} expands onto opcode ${
        hex(f.opcode)
      } of another row`;
    } else if (skip === null && seen.has(key)) {
      skip = `duplicate of ${seen.get(key)!.mnemonic}`;
    }
    if (skip === null) seen.set(key, f);
    plans.push({ form: f, skip });
  }
  return plans;
}

function skipReason(f: OpcodeForm): string | null {
  if (f.cls === "system") return "system instruction (CPL 0 only)";
  if (f.cls === "io") return "port I/O";
  return SKIPPED[`${f.mnemonic} ${f.operands.join(",")}`] ?? SKIPPED[f.mnemonic] ?? null;
}

/** How many cases a form gets relative to others: more for forms with more behaviours. */
function weightOf(f: OpcodeForm): number {
  const m = f.mnemonic;
  if (SHIFTS.has(m) || m === "SHLD" || m === "SHRD") return 3;
  if (STRINGS.has(m) || m === "DIV" || m === "IDIV" || m === "MUL" || m === "IMUL") return 3;
  if (["DAA", "DAS", "AAA", "AAS", "AAM", "AAD", "ADC", "SBB", "CMPXCHG", "BSF", "BSR"].includes(m)) return 2;
  if (m.startsWith("BT")) return 2;
  return 1;
}

/** Generates `count` cases, cycling through the covered forms by weight. */
export function generateCases(opts: GeneratorOptions): CaseSet {
  const regions = opts.lowRegion ? [DATA_REGION, LOW_REGION] : [DATA_REGION];
  const backgrounds = regions.map((r) => makeBackground(r, opts.seed));
  const forms: OpcodeForm[] = [];
  for (const p of planForms()) {
    if (p.skip !== null || (opts.mnemonics !== undefined && !opts.mnemonics.has(p.form.mnemonic))) continue;
    for (let w = weightOf(p.form); w > 0; w--) forms.push(p.form);
  }
  if (forms.length === 0) throw new Error("no instruction forms selected");
  const rnd = new Prng(opts.seed);
  const cases: DiffCase[] = [];
  for (let i = 0; i < opts.count; i++) {
    const form = forms[i % forms.length];
    const builder = new CaseBuilder(form, rnd, opts.lowRegion, regions, backgrounds);
    builder.hazardousOverlap = opts.hazardousOverlap === true;
    builder.hostIsOurVendor = opts.hostIsOurVendor === true;
    cases.push(builder.build());
  }
  return { cases, regions, backgrounds };
}

function hex(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}

function maskOf(bits: number): number {
  return bits === 32 ? -1 : (1 << bits) - 1;
}

/** A memory operand's encoding and the linear address it reaches. */
interface MemChoice {
  modrm: number; // mod and rm; reg is filled in later
  sib: number; // -1 when absent
  disp: number;
  dispBytes: number;
  linearAddr: number;
}

/** Where an operand lives once encoded. */
type RegLoc = { kind: "reg"; reg: number; bits: number };
type MemLoc = { kind: "mem"; addr: number; bits: number };
type Loc = RegLoc | MemLoc;

/** Builds one case: picks prefixes and an encoding, pins registers addresses depend on, then values. */
class CaseBuilder {
  readonly form: OpcodeForm;
  readonly rnd: Prng;
  readonly lowRegion: boolean;
  readonly regions: readonly Region[];
  readonly backgrounds: readonly Uint8Array[];
  readonly m: string;
  readonly regs = new Int32Array(8);
  pinned = 0;
  eflags = 0;
  opsize = 32;
  addr16 = false;
  prefixes: number[] = [];
  lock = false;
  rep = 0;
  modrm = -1;
  mem: MemChoice | null = null;
  imms: { value: number; bytes: number }[] = [];
  memWrites = new Map<number, number>();
  undefFlags: number;
  undefRegBits: Int32Array | null = null;
  memMask: Map<number, number> | null = null;
  note = "";
  /** Registers the address of a memory operand must not use (they carry a chosen value). */
  avoid = 0;
  /** See GeneratorOptions.hazardousOverlap. */
  hazardousOverlap = false;
  /** See GeneratorOptions.hostIsOurVendor. */
  hostIsOurVendor = false;

  constructor(
    form: OpcodeForm,
    rnd: Prng,
    lowRegion: boolean,
    regions: readonly Region[],
    backgrounds: readonly Uint8Array[],
  ) {
    this.form = form;
    this.rnd = rnd;
    this.lowRegion = lowRegion;
    this.regions = regions;
    this.backgrounds = backgrounds;
    this.m = form.mnemonic;
    this.undefFlags = form.undefFlags;
  }

  build(): DiffCase {
    const { rnd, form } = this;
    for (let r = 0; r < 8; r++) this.regs[r] = this.anyValue(32);
    this.regs[ESP] = this.stackPointer();
    const fl = rnd.below(10);
    const status = fl === 0 ? 0 : fl === 1 ? STATUS_FLAGS : rnd.u32() & STATUS_FLAGS;
    this.eflags = 2 | status | (rnd.chance(0.3) ? DF : 0);
    this.choosePrefixes();

    if (STRINGS.has(this.m)) this.genString();
    else if (form.cls === "control") this.genControl();
    else if (form.cls === "stack") this.genStack();
    else this.genGeneric();

    return this.finish();
  }

  // ---- prefixes ----------------------------------------------------------------------------

  choosePrefixes(): void {
    const { rnd, form } = this;
    const ops = form.operands;
    const sized = ops.some((o) => o.endsWith("v") || o.endsWith("z") || o === "eAX" || o === "Xv") ||
      SIZE_SENSITIVE_OPCODES.has(form.opcode);
    const noSize = form.cls === "control" || this.m === "BSWAP";
    if (!noSize && (sized ? rnd.chance(0.4) : rnd.chance(0.03))) this.opsize = 16;
    if (this.opsize === 16) this.prefixes.push(0x66);
  }

  /** Adds 0x67 when this form can use 16-bit addressing here. */
  maybeAddr16(p: number): void {
    if (this.rnd.chance(p)) {
      this.addr16 = true;
      this.prefixes.push(0x67);
    }
  }

  // ---- values --------------------------------------------------------------------------------

  /** An edge value (55%) or a random one, of `bits` width, as int32. */
  anyValue(bits: number): number {
    const rnd = this.rnd;
    let v: number;
    if (rnd.chance(0.55)) {
      const mask = maskOf(bits) >>> 0;
      const edges = EDGES.filter((e) => e <= mask);
      v = rnd.pick(edges);
      if (rnd.chance(0.15)) v = (mask - v) >>> 0; // mirror: 0xFFFFFFFE, 0x7FFFFF80, ...
    } else {
      v = rnd.u32();
      if (rnd.chance(0.2)) v &= 0xFF;
    }
    return v & maskOf(bits);
  }

  /** A stack pointer inside the data region, usually aligned, sometimes at a page boundary. */
  stackPointer(): number {
    const rnd = this.rnd;
    if (rnd.chance(0.1)) return DATA_REGION.base + 0xA000 + rnd.below(4) * 0x1000 + rnd.range(-6, 6);
    const base = DATA_REGION.base + 0x9000 + rnd.below(0x5000);
    return rnd.chance(0.85) ? base & ~3 : base;
  }

  /** An address in [lo, hi] for an access of `sizeBytes`, crossing a page boundary 8% of the time. */
  pickTarget(lo: number, hi: number, sizeBytes: number): number {
    const rnd = this.rnd;
    if (sizeBytes > 1 && rnd.chance(0.08)) {
      const t = ((lo + rnd.below(hi - lo) + 0xFFF) & ~0xFFF) - rnd.range(1, sizeBytes - 1);
      if (t >= lo && t <= hi) return t;
    }
    return lo + rnd.below(hi - lo);
  }

  pin(reg: number, value: number): void {
    this.regs[reg] = value;
    this.pinned |= 1 << reg;
  }

  isPinned(reg: number): boolean {
    return (this.pinned & (1 << reg)) !== 0;
  }

  /** Writes a register slice unless an address depends on the whole register. */
  setReg(reg: number, bits: number, value: number, force = false): void {
    const full = bits === 8 ? reg & 3 : reg;
    if (!force && this.isPinned(full)) return;
    const r = this.regs;
    if (bits === 32) r[reg] = value;
    else if (bits === 16) r[reg] = (r[reg] & ~0xFFFF) | (value & 0xFFFF);
    else if (reg < 4) r[reg] = (r[reg] & ~0xFF) | (value & 0xFF);
    else r[full] = (r[full] & ~0xFF00) | ((value & 0xFF) << 8);
  }

  getReg(reg: number, bits: number): number {
    const r = this.regs;
    if (bits === 32) return r[reg];
    if (bits === 16) return r[reg] & 0xFFFF;
    return reg < 4 ? r[reg] & 0xFF : (r[reg & 3] >>> 8) & 0xFF;
  }

  writeMem(addr: number, bits: number, value: number): void {
    for (let i = 0; i < bits / 8; i++) this.memWrites.set((addr + i) >>> 0, (value >>> (8 * i)) & 0xFF);
  }

  readMem(addr: number, bits: number): number {
    let v = 0;
    for (let i = 0; i < bits / 8; i++) {
      const a = (addr + i) >>> 0;
      let b = this.memWrites.get(a);
      if (b === undefined) {
        const k = this.regions.findIndex((r) => a >= r.base && a < r.base + r.sizeBytes);
        b = this.backgrounds[k][a - this.regions[k].base];
      }
      v |= b << (8 * i);
    }
    return bits === 32 ? v | 0 : v;
  }

  set(loc: Loc, value: number): void {
    if (loc.kind === "reg") this.setReg(loc.reg, loc.bits, value);
    else this.writeMem(loc.addr, loc.bits, value);
  }

  get(loc: Loc): number {
    return loc.kind === "reg" ? this.getReg(loc.reg, loc.bits) : this.readMem(loc.addr, loc.bits);
  }

  // ---- ModRM and addresses ---------------------------------------------------------------------

  /** Chooses a memory operand whose bytes [addr, addr+sizeBytes) land inside the data regions. */
  chooseMem(sizeBytes: number, espForAddr = this.regs[ESP]): void {
    const { rnd } = this;
    if (this.addr16) {
      const lo = LOW_REGION.base + 0x100, hi = LOW_REGION.base + LOW_REGION.sizeBytes - 0x100 - sizeBytes;
      this.mem = this.solve16(lo, hi, () => this.pickTarget(lo, hi, sizeBytes));
    } else {
      const lo = DATA_REGION.base + 0x100, hi = DATA_REGION.base + DATA_REGION.sizeBytes - 0x100 - sizeBytes;
      for (let tries = 0; tries < 40 && this.mem === null; tries++) {
        this.mem = this.solve32(lo, hi, this.pickTarget(lo, hi, sizeBytes), espForAddr);
      }
      if (this.mem === null) {
        const t = lo + rnd.below(hi - lo);
        this.mem = { modrm: 0x05, sib: -1, disp: t, dispBytes: 4, linearAddr: t };
      }
    }
    if (rnd.chance(0.1)) this.prefixes.push(rnd.pick([0x26, 0x36, 0x3E]));
  }

  /** A register (mod 3) r/m operand. */
  chooseRegRm(): number {
    const rm = this.rnd.below(8);
    this.modrm = 0xC0 | rm;
    return rm;
  }

  solve32(lo: number, hi: number, target: number, espForAddr: number): MemChoice | null {
    const rnd = this.rnd;
    const mod = rnd.below(3);
    const rm = rnd.below(8);
    let base = -1, index = -1, scale = 0, sib = -1;
    if (rm === 4) {
      scale = rnd.below(4);
      index = rnd.below(8);
      base = rnd.below(8);
      sib = (scale << 6) | (index << 3) | base;
      if (index === 4) index = -1;
      if (base === 5 && mod === 0) base = -1;
    } else if (!(rm === 5 && mod === 0)) {
      base = rm;
    }
    const dispBytes = mod === 1 ? 1 : mod === 2 || base === -1 ? 4 : 0;
    if ((base >= 0 && (this.avoid >> base) & 1) || (index >= 0 && (this.avoid >> index) & 1)) return null;
    const fixed = (r: number) => r === ESP ? espForAddr : this.regs[r];
    const known = (r: number) => this.isPinned(r);
    let disp = dispBytes === 1
      ? rnd.range(-128, 127)
      : dispBytes === 4 && rnd.chance(0.5)
      ? rnd.u32()
      : rnd.range(-0x1000, 0x1000);
    if (dispBytes === 0) disp = 0;
    let bv = 0, iv = 0;
    if (index >= 0 && index === base) {
      const f = 1 + (1 << scale);
      if (known(base)) {
        bv = iv = fixed(base);
        if (dispBytes === 4) disp = (target - Math.imul(bv, f)) | 0;
      } else {
        bv = iv = Math.floor((target - disp) / f);
      }
    } else {
      if (index >= 0) iv = known(index) ? fixed(index) : rnd.chance(0.5) ? rnd.range(-64, 64) : rnd.u32();
      const scaled = Math.imul(iv, 1 << scale);
      if (base >= 0 && known(base)) {
        bv = fixed(base);
        if (dispBytes === 4) disp = (target - bv - scaled) | 0;
        else if (index >= 0 && !known(index)) {
          iv = ((target - bv - disp) >>> 0) >>> scale;
        }
      } else if (base >= 0) {
        bv = (target - disp - scaled) | 0;
      } else {
        disp = (target - scaled) | 0;
      }
    }
    const ea = ((base >= 0 ? bv : 0) + (index >= 0 ? Math.imul(iv, 1 << scale) : 0) + disp) >>> 0;
    if (ea < lo || ea > hi) return null;
    if (base >= 0 && !known(base)) this.pin(base, bv);
    if (index >= 0 && !known(index)) this.pin(index, iv);
    if (base === ESP || index === ESP) this.pinned |= 1 << ESP;
    return { modrm: (mod << 6) | rm, sib, disp: disp | 0, dispBytes, linearAddr: ea };
  }

  /** 16-bit addressing: [BX+SI], [BP+DI], [SI], [BP+disp], ... with the sum wrapping at 64 KiB. */
  solve16(lo: number, hi: number, pickTarget: () => number): MemChoice {
    const rnd = this.rnd;
    const RM16 = [[EBX, ESI], [EBX, EDI], [EBP, ESI], [EBP, EDI], [ESI], [EDI], [EBP], [EBX]];
    for (;;) {
      const mod = rnd.below(3), rm = rnd.below(8);
      const regs = mod === 0 && rm === 6 ? [] : RM16[rm];
      if (regs.some((r) => (this.avoid >> r) & 1)) continue;
      const dispBytes = mod === 1 ? 1 : mod === 2 || regs.length === 0 ? 2 : 0;
      const target = pickTarget();
      let disp = dispBytes === 1 ? rnd.range(-128, 127) : dispBytes === 2 ? rnd.below(0x10000) : 0;
      const free = regs.filter((r) => !this.isPinned(r));
      let sum = disp;
      for (const r of regs) if (this.isPinned(r)) sum += this.regs[r];
      for (let k = 0; k < free.length; k++) {
        const r = free[k];
        const low = k === free.length - 1 ? (target - sum) & 0xFFFF : rnd.below(0x10000);
        this.pin(r, (rnd.u32() & ~0xFFFF) | low);
        sum += low;
      }
      if (free.length === 0 && regs.length === 0) disp = target;
      if (free.length === 0 && regs.length > 0 && dispBytes === 2) disp = (disp + target - sum) & 0xFFFF;
      let ea = disp;
      for (const r of regs) ea += this.regs[r];
      ea &= 0xFFFF;
      if (ea < lo || ea > hi) continue;
      return { modrm: (mod << 6) | rm, sib: -1, disp, dispBytes, linearAddr: ea };
    }
  }

  // ---- generic ALU / MOV forms -----------------------------------------------------------------

  /** Bits of an operand given as SDM size letter. */
  bitsOf(op: string): number {
    const s = op[op.length - 1];
    if (op === "AL" || op === "CL") return 8;
    if (op === "DX") return 16;
    if (op === "eAX") return this.opsize;
    if (s === "b" || op === "Ibs") return op === "Ibs" ? 8 : 8;
    if (s === "w") return 16;
    if (s === "d") return 32;
    if (s === "q") return 64;
    return this.opsize;
  }

  /** Encodes the ModRM-based operands; returns their locations in operand order (immediates excluded). */
  genGeneric(): void {
    const { form, rnd, m } = this;
    const ops = form.operands;
    const eOp = ops.find((o) => o[0] === "E" || o[0] === "M");
    const needsModrm = ops.some((o) => "EGM".includes(o[0]));
    const noAccess = m === "LEA" || m === "NOP";
    if (ops.some((o) => o[0] === "E" || o[0] === "M") && !noAccess) {
      this.maybeAddr16(this.lowRegion ? 0.08 : 0);
    } else if (noAccess && eOp !== undefined) this.maybeAddr16(0.2);
    // Registers carrying values the semantics below choose must not double as address registers.
    if (m === "DIV" || m === "IDIV") this.avoid = (1 << EAX) | (1 << EDX);
    if (m === "CMPXCHG") this.avoid = 1 << EAX;
    if (m === "CMPXCHG8B") this.avoid = 0x0F;
    if (ops.includes("CL")) this.avoid |= 1 << ECX;
    const gOp = ops.find((o) => o[0] === "G");
    const reg = form.ext >= 0 ? form.ext : rnd.below(8);
    if (gOp !== undefined && (m.startsWith("BT") || m === "BOUND")) {
      // The G operand is a bit offset / array index: keep it out of the address.
      this.avoid |= 1 << (this.bitsOf(gOp) === 8 ? reg & 3 : reg);
    }

    let eLoc: Loc | null = null;
    if (eOp !== undefined) {
      const bits = eOp === "M"
        ? this.opsize
        : eOp === "Ma"
        ? this.opsize * 2
        : eOp === "Mq"
        ? 64
        : this.bitsOf(eOp);
      const memOnly = eOp[0] === "M";
      const wantMem = memOnly ? !rnd.chance(0.04) : rnd.chance(0.5);
      if (wantMem) {
        if (noAccess) {
          this.mem = this.randomAddress();
        } else {
          this.chooseMem(bits === 64 ? 8 : bits / 8);
        }
        eLoc = { kind: "mem", addr: this.mem!.linearAddr, bits };
      } else {
        const rm = this.chooseRegRm();
        eLoc = { kind: "reg", reg: rm, bits: Math.min(bits, 32) };
        if (memOnly) this.note = "register operand where memory is required (#UD)";
      }
    }
    if (needsModrm) {
      if (this.modrm < 0) this.modrm = this.mem!.modrm;
      this.modrm |= reg << 3;
    }
    const gLoc: RegLoc | null = gOp === undefined ? null : { kind: "reg", reg, bits: this.bitsOf(gOp) };
    const locs: Loc[] = [];
    for (const o of ops) {
      if (o[0] === "E" || o[0] === "M") locs.push(eLoc!);
      else if (o[0] === "G") locs.push(gLoc!);
      else if (o[0] === "Z") locs.push({ kind: "reg", reg: form.opcode & 7, bits: this.bitsOf(o) });
      else if (o === "AL" || o === "eAX") locs.push({ kind: "reg", reg: EAX, bits: this.bitsOf(o) });
      else if (o === "CL") locs.push({ kind: "reg", reg: ECX, bits: 8 });
      else if (o[0] === "O") {
        this.genMoffs();
        locs.push({ kind: "mem", addr: this.mem!.linearAddr, bits: this.bitsOf(o) });
      }
    }
    // Operand values first, then immediates, then the per-mnemonic rules that relate them.
    for (const loc of locs) {
      if (loc.bits <= 32 && !(noAccess && loc.kind === "mem")) this.set(loc, this.anyValue(loc.bits));
    }
    if (eLoc?.kind === "mem" && eLoc.bits === 64) {
      this.writeMem(eLoc.addr, 32, rnd.u32());
      this.writeMem(eLoc.addr + 4, 32, rnd.u32());
    }
    // Half the two-operand cases compare equal values, for ZF, CF and borrow edges.
    if (
      locs.length >= 2 && locs[0].bits === locs[1].bits && locs[0].bits <= 32 && !noAccess && rnd.chance(0.15)
    ) {
      this.set(locs[1], this.get(locs[0]));
    }
    const immOp = ops.find((o) => o[0] === "I");
    if (immOp !== undefined) this.genImmediates(immOp, ops);
    this.applySemantics(locs, eLoc, gLoc);
    if (this.lockFits(ops, eLoc)) {
      if (rnd.chance(0.3)) this.lock = true;
    } else if ((form.cls === "alu" || form.cls === "mov") && rnd.chance(0.01)) {
      this.lock = true;
      this.note = "LOCK on a form that does not allow it (#UD)";
    }
  }

  lockFits(ops: readonly string[], eLoc: Loc | null): boolean {
    return LOCKABLE.has(this.m) && eLoc !== null && eLoc.kind === "mem" &&
      (ops[0][0] === "E" || ops[0][0] === "M");
  }

  /** An address for LEA/NOP: any registers, any displacement (no memory is touched). */
  randomAddress(): MemChoice {
    const rnd = this.rnd;
    const mod = rnd.below(3), rm = rnd.below(8);
    const sib = !this.addr16 && rm === 4 ? rnd.below(256) : -1;
    let dispBytes = mod === 1 ? 1 : mod === 2 ? (this.addr16 ? 2 : 4) : 0;
    if (mod === 0 && this.addr16 && rm === 6) dispBytes = 2;
    if (mod === 0 && !this.addr16 && (rm === 5 || (sib & 7) === 5 && rm === 4)) dispBytes = 4;
    const disp = dispBytes === 1 ? rnd.range(-128, 127) : dispBytes === 2 ? rnd.below(0x10000) : rnd.u32();
    return { modrm: (mod << 6) | rm, sib, disp, dispBytes, linearAddr: 0 };
  }

  /** MOV AL/eAX <-> moffs: the address is the displacement itself. */
  genMoffs(): void {
    const rnd = this.rnd;
    if (this.lowRegion) this.maybeAddr16(0.1);
    const r = this.addr16 ? LOW_REGION : DATA_REGION;
    const t = r.base + 0x100 + rnd.below(r.sizeBytes - 0x200);
    this.mem = { modrm: -1, sib: -1, disp: t, dispBytes: this.addr16 ? 2 : 4, linearAddr: t };
    if (rnd.chance(0.1)) this.prefixes.push(rnd.pick([0x26, 0x36, 0x3E]));
  }

  genImmediates(immOp: string, ops: readonly string[]): void {
    const rnd = this.rnd;
    const m = this.m;
    if (SHIFTS.has(m) || m === "SHLD" || m === "SHRD") {
      this.imms.push({ value: rnd.chance(0.8) ? rnd.pick(SHIFT_COUNTS) : rnd.below(256), bytes: 1 });
    } else if (m === "AAM" || m === "AAD") {
      const k = rnd.below(10);
      this.imms.push({ value: k < 6 ? 10 : k < 9 ? rnd.below(256) : 0, bytes: 1 });
    } else if (m.startsWith("BT")) {
      this.imms.push({ value: rnd.chance(0.7) ? rnd.below(this.opsize * 2) : rnd.below(256), bytes: 1 });
    } else if (immOp === "Ib" || immOp === "Ibs") {
      this.imms.push({ value: this.anyValue(8), bytes: 1 });
    } else if (immOp === "Iw") {
      this.imms.push({ value: this.anyValue(16), bytes: 2 });
    } else {
      const bits = this.opsize;
      let v = this.anyValue(bits);
      // Sign-extended byte immediates' 32-bit twins: equal values in both encodings.
      if (ops.length === 2 && rnd.chance(0.1)) v = (v << 24) >> 24;
      this.imms.push({ value: v, bytes: bits / 8 });
    }
  }

  /** Relates operands where the SDM's interesting cases need it; sets dynamic undefined results. */
  applySemantics(locs: Loc[], eLoc: Loc | null, gLoc: RegLoc | null): void {
    const { rnd, m } = this;
    const bits = locs[0]?.bits ?? this.opsize;
    if (SHIFTS.has(m) || m === "SHLD" || m === "SHRD") {
      const countOp = this.form.operands[this.form.operands.length - 1];
      let count: number;
      if (countOp === "1") count = 1;
      else if (countOp === "CL") {
        count = rnd.chance(0.8) ? rnd.pick(SHIFT_COUNTS) : rnd.below(256);
        this.setReg(ECX, 8, count, true);
        count = this.getReg(ECX, 8);
      } else count = this.imms[0].value;
      this.shiftUndefined(count & 0x1F, bits, locs[0]);
      this.note = `count=${count}`;
      return;
    }
    switch (m) {
      case "DIV":
      case "IDIV":
        this.genDivide(eLoc!, m === "IDIV");
        return;
      case "BSF":
      case "BSR": {
        const src = locs[1];
        const k = rnd.below(10);
        if (k < 2) this.set(src, 0);
        else if (k < 6) this.set(src, 1 << rnd.below(src.bits));
        if (this.get(src) === 0) {
          this.undefDest(locs[0]);
          this.note = "source 0: destination undefined";
        }
        return;
      }
      case "BT":
      case "BTS":
      case "BTR":
      case "BTC":
        if (gLoc !== null && eLoc?.kind === "mem") {
          // Register bit offsets address memory outside the operand: keep them within 256 bytes.
          const off = rnd.range(-2048, 2047);
          this.setReg(gLoc.reg, gLoc.bits, off);
          this.note = `bit offset ${off}`;
        }
        return;
      case "CMPXCHG":
        if (rnd.chance(0.5)) this.setReg(EAX, bits, this.get(locs[0]), true);
        return;
      case "CMPXCHG8B":
        if (eLoc?.kind === "mem" && rnd.chance(0.5)) {
          this.setReg(EAX, 32, this.readMem(eLoc.addr, 32), true);
          this.setReg(EDX, 32, this.readMem(eLoc.addr + 4, 32), true);
        }
        return;
      case "BOUND":
        if (eLoc?.kind === "mem") this.genBound(eLoc, gLoc!);
        return;
      case "XLAT":
        this.genXlat();
        return;
    }
  }

  /** The SDM's count-dependent undefined flags for shifts, rotates and double shifts. */
  shiftUndefined(masked: number, bits: number, dest: Loc): void {
    const m = this.m;
    if (masked === 0) {
      this.undefFlags = 0; // no flags change at all
      return;
    }
    let u = masked === 1 ? 0 : OF;
    if (m === "SHL" || m === "SHR" || m === "SAL" || m === "SAR" || m === "SHLD" || m === "SHRD") u |= AF;
    if ((m === "SHL" || m === "SHR" || m === "SAL") && masked >= bits) u |= CF;
    if ((m === "SHLD" || m === "SHRD") && bits === 16 && masked > 16) {
      // Vendor-defined: the result, CF, SF, ZF and PF (Intel's A:B:A shift); OF and AF stay undefined.
      if (this.hostIsOurVendor) u = OF | AF;
      else {
        u = STATUS_FLAGS;
        this.undefDest(dest);
      }
    }
    // Vendor-defined: OF of a multi-bit RCL/RCR (Intel keeps the first step's value).
    if ((m === "RCL" || m === "RCR") && this.hostIsOurVendor) u &= ~OF;
    this.undefFlags = u;
  }

  /** Marks a destination's value as undefined (register bits, or every byte of memory). */
  undefDest(loc: Loc): void {
    if (loc.kind === "reg") {
      this.undefRegBits ??= new Int32Array(8);
      if (loc.bits === 8 && loc.reg >= 4) this.undefRegBits[loc.reg & 3] |= 0xFF00;
      else this.undefRegBits[loc.reg] |= maskOf(loc.bits);
    } else {
      this.memMask ??= new Map();
      for (let i = 0; i < loc.bits / 8; i++) this.memMask.set(loc.addr + i, 0);
    }
  }

  /** DIV/IDIV: a quotient that fits, divide by zero, or quotient overflow (#DE). */
  genDivide(divisor: Loc, signed: boolean): void {
    const rnd = this.rnd;
    const bits = divisor.bits;
    const k = rnd.below(20);
    let d = BigInt.asUintN(bits, BigInt(this.get(divisor)));
    if (k < 3) {
      this.set(divisor, 0);
      this.note = "divisor 0 (#DE)";
      return;
    }
    if (d === 0n) {
      d = 1n + BigInt(rnd.below(200));
      this.set(divisor, Number(d));
    }
    const sd = BigInt.asIntN(bits, d);
    let dividend: bigint;
    const half = 1n << BigInt(bits - 1);
    if (k < 6) {
      // Quotient overflow: for DIV a high half >= divisor; for IDIV the most negative over -1, or big.
      if (signed && rnd.chance(0.5)) {
        // The most negative dividends over -1 overflow; -2^(n-1) over 1 is the most negative quotient.
        const j = rnd.below(3);
        this.set(divisor, j === 2 ? 1 : -1);
        dividend = j === 0 ? -(half << BigInt(bits)) : -half;
      } else if (signed) {
        dividend = sd * (half + BigInt(rnd.below(4)));
      } else {
        dividend = (d << BigInt(bits)) + BigInt(rnd.u32() >>> 0) % d;
      }
      this.note = "quotient overflow candidate";
    } else {
      const qMax = signed ? half : 1n << BigInt(bits);
      const q = BigInt(rnd.u32() >>> 0) % qMax * (signed && rnd.chance(0.5) ? -1n : 1n);
      const dd = signed ? sd : d;
      const absD = dd < 0n ? -dd : dd;
      let r = BigInt(rnd.u32() >>> 0) % absD;
      if (q * dd < 0n || (q === 0n && rnd.chance(0.5))) r = -r;
      dividend = q * dd + r;
    }
    const full = BigInt.asUintN(bits * 2, dividend);
    const lo = Number(BigInt.asUintN(bits, full));
    const hi = Number(full >> BigInt(bits));
    if (bits === 8) this.setReg(EAX, 16, lo | (hi << 8), true);
    else {
      this.setReg(EAX, bits, lo, true);
      this.setReg(EDX, bits, hi, true);
    }
  }

  /** BOUND: the index inside, at the edges of, or outside [lower, upper] (#BR). */
  genBound(pair: MemLoc, index: RegLoc): void {
    const rnd = this.rnd;
    const bits = this.opsize;
    const lower = this.anyValue(bits), upper = this.anyValue(bits);
    const sx = (v: number) => bits === 16 ? (v << 16) >> 16 : v | 0;
    this.writeMem(pair.addr, bits, lower);
    this.writeMem(pair.addr + bits / 8, bits, upper);
    const k = rnd.below(5);
    const v = k === 0
      ? sx(lower)
      : k === 1
      ? sx(upper)
      : k === 2
      ? sx(lower) - 1
      : k === 3
      ? sx(upper) + 1
      : this.anyValue(bits);
    this.setReg(index.reg, bits, v);
  }

  genXlat(): void {
    const rnd = this.rnd;
    if (this.lowRegion) this.maybeAddr16(0.15);
    const al = this.getReg(EAX, 8);
    if (this.addr16) {
      const t = LOW_REGION.base + 0x100 + rnd.below(0x7000);
      this.pin(EBX, (rnd.u32() & ~0xFFFF) | ((t - al) & 0xFFFF));
    } else {
      this.pin(EBX, DATA_REGION.base + 0x100 + rnd.below(0x7000) - al);
    }
  }

  // ---- strings ---------------------------------------------------------------------------------

  genString(): void {
    const { rnd, m } = this;
    const hazard = this.hazardousOverlap && m.startsWith("MOVS");
    if (this.lowRegion && !hazard) this.maybeAddr16(0.1);
    const size = m.endsWith("B") ? 1 : this.opsize / 8;
    const k = rnd.below(10);
    this.rep = hazard ? 0xF3 : k < 4 ? 0 : k < 8 ? 0xF3 : 0xF2;
    if (this.rep !== 0) this.prefixes.push(this.rep);
    const n = hazard ? rnd.pick([2, 3, 4, 5, 8]) : this.rep === 0 ? 1 : rnd.pick([0, 1, 1, 2, 3, 4, 5, 8]);
    const cx = this.rep === 0 ? rnd.u32() : n;
    if (this.addr16) this.pin(ECX, (rnd.u32() & ~0xFFFF) | (cx & 0xFFFF));
    else this.pin(ECX, cx);
    const down = (this.eflags & DF) !== 0;
    const span = Math.max(n, 1) * size;
    const region = this.addr16 ? LOW_REGION : DATA_REGION;
    const place = () => {
      const lo = region.base + 0x100 + (down ? span : 0);
      const room = region.sizeBytes - 0x200 - span;
      const a = lo + rnd.below(room);
      const crossing = ((a + 0xFFF) & ~0xFFF) - rnd.below(span + 1); // the run crosses a page
      if (rnd.chance(0.1) && crossing >= lo && crossing < lo + room) return crossing;
      return rnd.chance(0.7) ? a & ~(size - 1) : a;
    };
    let src = place(), dst = place();
    // Overlapping copies: the destination behind the source in the copy direction (or equal), where
    // element-by-element and block copies agree; ahead of it only in hazardous-overlap runs.
    const behind = down ? size : -size;
    if (hazard) dst = src - behind * rnd.range(1, n - 1);
    else if (m.startsWith("MOVS") && rnd.chance(0.15)) dst = src + behind * rnd.range(0, 2);
    const reg16 = (v: number) => this.addr16 ? (rnd.u32() & ~0xFFFF) | (v & 0xFFFF) : v;
    this.pin(ESI, reg16(src));
    this.pin(EDI, reg16(dst));
    src = this.addr16 ? src & 0xFFFF : src;
    dst = this.addr16 ? dst & 0xFFFF : dst;
    const bits = size * 8;
    const step = down ? -size : size;
    const acc = this.anyValue(bits);
    this.setReg(EAX, bits, acc);
    const matchFor = rnd.below(Math.max(n, 1) + 1); // elements that compare equal before a difference
    for (let i = 0; i < Math.max(n, 1); i++) {
      const v = this.anyValue(bits);
      const equal = this.rep === 0xF2 ? i >= matchFor : i < matchFor;
      if (m.startsWith("CMPS")) {
        this.writeMem(src + i * step, bits, v);
        this.writeMem(dst + i * step, bits, equal ? v : v ^ (1 << rnd.below(bits)));
      } else if (m.startsWith("SCAS")) {
        this.writeMem(dst + i * step, bits, equal ? acc : acc ^ (1 << rnd.below(bits)));
      } else if (!m.startsWith("STOS")) {
        this.writeMem(src + i * step, bits, v);
      }
    }
    if (rnd.chance(0.1) && !m.startsWith("STOS") && !m.startsWith("SCAS")) {
      this.prefixes.push(rnd.pick([0x26, 0x36, 0x3E]));
    }
    this.note = this.rep === 0
      ? ""
      : `${this.rep === 0xF3 ? "REP" : "REPNE"} count=${n}${down ? " DF=1" : ""}`;
  }

  // ---- stack -----------------------------------------------------------------------------------

  genStack(): void {
    const { rnd, m, form } = this;
    const sp = this.regs[ESP];
    this.pin(ESP, sp);
    const size = this.opsize / 8;
    switch (m) {
      case "PUSH":
        if (form.operands[0] === "Ev") {
          this.genEvOperand(sp);
        } else if (form.operands[0] === "Iz" || form.operands[0] === "Ibs") {
          this.imms.push(
            form.operands[0] === "Ibs"
              ? { value: this.anyValue(8), bytes: 1 }
              : { value: this.anyValue(this.opsize), bytes: size },
          );
        } else if (form.operands[0][0] !== "Z") {
          // PUSH Sreg: the selectors differ (user vs flat CPL 0) and whether the upper half is written
          // is model-specific (SDM PUSH): compare ESP and everything but those bytes.
          this.memMask = new Map();
          for (let i = 1; i <= size; i++) this.memMask.set(sp - i, 0);
        }
        return;
      case "POP":
        this.writeMem(sp, this.opsize, this.anyValue(this.opsize));
        if (form.operands[0] === "Ev") this.genEvOperand(sp + size);
        return;
      case "PUSHA":
        return;
      case "POPA":
        for (let i = 0; i < 8; i++) this.writeMem(sp + i * size, this.opsize, this.anyValue(this.opsize));
        return;
      case "PUSHF":
        // The image holds IF/IOPL (host user mode vs our CPL 0): compare status flags and DF only.
        this.memMask = new Map([[sp - size, 0xD5], [sp - size + 1, 0x0C]]);
        if (size === 4) this.memMask.set(sp - 2, 0).set(sp - 1, 0);
        return;
      case "POPF": {
        // Only status flags and DF: TF would single-step, AC would fault, IF/IOPL differ by CPL.
        const v = 2 | (rnd.u32() & (STATUS_FLAGS | DF));
        this.writeMem(sp, this.opsize, v);
        return;
      }
      case "ENTER": {
        const level = rnd.pick([0, 0, 1, 1, 2, 3, 5, rnd.below(32), 32 + rnd.below(3)]);
        const alloc = rnd.pick([0, 4, 8, 12, 0x10, 0x100, rnd.below(0x800)]);
        this.imms.push({ value: alloc, bytes: 2 }, { value: level, bytes: 1 });
        this.pin(EBP, sp + rnd.range(-0x100, 0x400));
        this.note = `alloc=${alloc} level=${level}`;
        return;
      }
      case "LEAVE": {
        const bp = sp + rnd.range(-0x100, 0x800) & ~(rnd.chance(0.9) ? 3 : 0);
        this.pin(EBP, bp);
        this.writeMem(bp, this.opsize, this.anyValue(this.opsize));
        return;
      }
    }
  }

  /** The r/m operand of PUSH Ev / POP Ev (ESP as a base uses `espForAddr`, per the SDM's POP rule). */
  genEvOperand(espForAddr: number): void {
    const rnd = this.rnd;
    const bits = this.opsize;
    if (rnd.chance(0.6)) {
      this.chooseMem(bits / 8, espForAddr);
      this.modrm = this.mem!.modrm | (this.form.ext << 3);
      this.writeMem(this.mem!.linearAddr, bits, this.anyValue(bits));
    } else {
      const rm = this.chooseRegRm();
      this.modrm |= this.form.ext << 3;
      this.setReg(rm, bits, this.anyValue(bits));
    }
  }

  // ---- control transfer -------------------------------------------------------------------------

  /** A code-page address for a jump to land on: a HLT outside the instruction. */
  codeTarget(len: number, near: boolean): number {
    const rnd = this.rnd;
    for (;;) {
      const t = near ? ENTRY_EIP + len + rnd.range(-128, 127) : CODE_BASE + 0x10 + rnd.below(0xFE0);
      if (t < ENTRY_EIP || t >= ENTRY_EIP + len) return t;
    }
  }

  genControl(): void {
    const { rnd, m, form } = this;
    const ops = form.operands;
    if (ops[0] === "Jb" || ops[0] === "Jz") {
      if (m.startsWith("LOOP") || m === "JCXZ") {
        this.maybeAddr16(0.3);
        const cx = rnd.pick([0, 1, 2, 3, 0x1_0000, 0x1_0001, 0xFFFF, -1, rnd.u32()]);
        this.pin(ECX, cx);
      }
      if (m === "CALL") this.pin(ESP, this.regs[ESP]);
      const opLen = this.prefixes.length + (form.opcode >= 0x100 ? 2 : 1) + (ops[0] === "Jb" ? 1 : 4);
      const t = this.codeTarget(opLen, ops[0] === "Jb" || rnd.chance(0.3));
      const rel = t - (ENTRY_EIP + opLen);
      this.imms.push({ value: rel, bytes: ops[0] === "Jb" ? 1 : 4 });
      this.note = `target ${hex(t)}`;
      return;
    }
    switch (m) {
      case "RET": {
        const sp = this.regs[ESP];
        this.pin(ESP, sp);
        this.writeMem(sp, 32, this.codeTarget(3, false));
        if (ops[0] === "Iw") {
          this.imms.push({ value: rnd.pick([0, 2, 4, 8, 0x10, rnd.below(0x1_0000)]), bytes: 2 });
        }
        return;
      }
      case "CALL":
      case "JMP": {
        // FF /2, FF /4: target in a register or in memory.
        this.pin(ESP, this.regs[ESP]);
        const t = this.codeTarget(8, false);
        if (rnd.chance(0.5)) {
          this.chooseMem(4);
          this.modrm = this.mem!.modrm | (form.ext << 3);
          this.writeMem(this.mem!.linearAddr, 32, t);
        } else {
          let rm = rnd.below(8);
          if (m === "CALL") { while (rm === ESP) rm = rnd.below(8); }
          this.modrm = 0xC0 | (form.ext << 3) | rm;
          this.pin(rm, t);
        }
        this.note = `target ${hex(t)}`;
        return;
      }
      case "INT":
        this.imms.push({ value: rnd.pick([3, 4]), bytes: 1 });
        return;
      case "INTO":
        if (rnd.chance(0.5)) this.eflags |= OF;
        return;
      case "BOUND":
        this.genGeneric();
        return;
    }
  }

  // ---- assembly --------------------------------------------------------------------------------

  finish(): DiffCase {
    const { rnd, form } = this;
    const bytes: number[] = [];
    const prefixes = [...this.prefixes];
    if (this.lock) prefixes.push(0xF0);
    // Prefix order is free (SDM 2.1.1); shuffle so the decoder sees every order.
    for (let i = prefixes.length - 1; i > 0; i--) {
      const j = rnd.below(i + 1);
      [prefixes[i], prefixes[j]] = [prefixes[j], prefixes[i]];
    }
    // Redundant DS overrides up to the 15-byte limit, or past it (#GP, SDM Vol. 2, 2.3.11).
    if (form.cls !== "control" && rnd.chance(0.02)) {
      const len = prefixes.length + this.lengthAfterPrefixes();
      const pad = rnd.pick([15, 15, 16, 17]) - len;
      for (let i = 0; i < pad; i++) prefixes.unshift(0x3E);
      this.note += `${this.note === "" ? "" : "; "}${len + Math.max(pad, 0)}-byte instruction`;
    }
    bytes.push(...prefixes);
    if (form.opcode >= 0x100) bytes.push(0x0F);
    bytes.push(form.opcode & 0xFF);
    const mem = this.mem;
    if (this.modrm >= 0) {
      bytes.push(this.modrm);
      if ((this.modrm & 0xC0) !== 0xC0 && mem !== null) {
        if (mem.sib >= 0) bytes.push(mem.sib);
      }
    }
    if (mem !== null && (this.modrm < 0 || (this.modrm & 0xC0) !== 0xC0)) {
      for (let i = 0; i < mem.dispBytes; i++) bytes.push((mem.disp >>> (8 * i)) & 0xFF);
    }
    for (const imm of this.imms) {
      for (let i = 0; i < imm.bytes; i++) bytes.push((imm.value >>> (8 * i)) & 0xFF);
    }
    bytes.push(...this.flagConsumers());
    // Jump targets were placed relative to ENTRY_EIP; anything else may straddle the code pages.
    let entryEip = ENTRY_EIP;
    if (form.cls !== "control" && this.m !== "RET" && bytes.length >= 2 && rnd.chance(0.12)) {
      entryEip = CODE_PAGE_BOUNDARY - rnd.range(1, bytes.length - 1);
    }
    return {
      form,
      code: new Uint8Array(bytes),
      entryEip,
      regs: this.regs,
      eflags: this.eflags,
      patches: this.patches(),
      undefFlags: this.undefFlags,
      undefRegBits: this.undefRegBits,
      memMask: this.memMask,
      note: this.note,
    };
  }

  /** Opcode, ModRM, SIB, displacement and immediate bytes. */
  lengthAfterPrefixes(): number {
    const mem = this.mem;
    let n = this.form.opcode >= 0x100 ? 2 : 1;
    if (this.modrm >= 0) n += 1 + (mem !== null && (this.modrm & 0xC0) !== 0xC0 && mem.sib >= 0 ? 1 : 0);
    if (mem !== null && (this.modrm < 0 || (this.modrm & 0xC0) !== 0xC0)) n += mem.dispBytes;
    for (const imm of this.imms) n += imm.bytes;
    return n;
  }

  /**
   * Instructions after this one that read its flags (SETcc to memory, Jcc to a HLT), so the lazy
   * flags are consumed by the next instruction as in real code, not only materialised at the end.
   * Only conditions whose flags are defined for these inputs are used.
   */
  flagConsumers(): number[] {
    const { rnd, form } = this;
    const producer = form.defFlags !== 0 || this.m === "POPF";
    if (!producer || form.cls === "control" || !rnd.chance(0.4)) return [];
    let defined = STATUS_FLAGS & ~this.undefFlags;
    // Chosen front to back (each reads only flags defined at that point), encoded back to front
    // so a Jcc can jump past the rest onto a HLT.
    const items: { kind: "set" | "jcc" | "carry"; cc: number }[] = [];
    for (let k = rnd.range(1, 3); k > 0; k--) {
      const conds = CONDITION_FLAGS.flatMap((f, i) => (f & ~defined) === 0 ? [2 * i, 2 * i + 1] : []);
      if (conds.length === 0) break;
      const r = rnd.below(8);
      if (r < 2 && (defined & CF) !== 0) {
        const op = rnd.below(4); // ADC, SBB, RCL 1, RCR 1 on memory: CF into an arithmetic result
        items.push({ kind: "carry", cc: op });
        defined |= op < 2 ? STATUS_FLAGS : CF | OF;
      } else {
        items.push({ kind: r < 6 ? "set" : "jcc", cc: rnd.pick(conds) });
      }
    }
    if (items.length === 0) return [];
    let tail: number[] = [];
    for (let k = items.length - 1; k >= 0; k--) {
      const { kind, cc } = items[k];
      const a = DATA_REGION.base + 0xFF00 + rnd.below(0x80);
      const abs = [a & 0xFF, (a >> 8) & 0xFF, (a >> 16) & 0xFF, a >>> 24];
      if (kind === "set") tail = [0x0F, 0x90 | cc, 0x05, ...abs, ...tail];
      else if (kind === "jcc") tail = [0x70 | cc, tail.length + rnd.range(1, 16), ...tail];
      else if (cc === 0) tail = [0x80, 0x15, ...abs, this.anyValue(8), ...tail]; // adc byte [abs], imm8
      else if (cc === 1) tail = [0x83, 0x1D, ...abs, this.anyValue(8), ...tail]; // sbb dword [abs], imm8
      else tail = [cc === 2 ? 0xD0 : 0xD1, cc === 2 ? 0x15 : 0x1D, ...abs, ...tail]; // rcl byte / rcr dword [abs], 1
    }
    // Sometimes a flag-neutral instruction in between, so the lazy state must survive it.
    if (rnd.chance(0.3)) tail = [...rnd.pick([[0x90], [0x8D, 0x76, 0x00], [0x87, 0xC0]]), ...tail];
    const names = items.map(({ kind, cc }) =>
      kind === "set"
        ? `set${CONDITION_NAMES[cc]}`
        : kind === "jcc"
        ? `j${CONDITION_NAMES[cc]}`
        : ["adc", "sbb", "rcl", "rcr"][cc]
    );
    this.note += `${this.note === "" ? "" : "; "}then ${names.join(", ")}`;
    return tail;
  }

  /** memWrites as runs of consecutive bytes (at most 255 each, the file format's limit). */
  patches(): Patch[] {
    const addrs = [...this.memWrites.keys()].sort((a, b) => a - b);
    const out: Patch[] = [];
    let i = 0;
    while (i < addrs.length) {
      let j = i + 1;
      while (j < addrs.length && addrs[j] === addrs[j - 1] + 1 && j - i < 255) j++;
      out.push({
        linearAddr: addrs[i],
        bytes: Uint8Array.from(addrs.slice(i, j), (a) => this.memWrites.get(a)!),
      });
      i = j;
    }
    return out;
  }
}
