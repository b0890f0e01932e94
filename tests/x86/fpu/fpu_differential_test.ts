/**
 * Fpu against the host x87 (STYLE rule 11): thousands of cases run through the same instruction
 * sequence on both (FNINIT, FLDCW, FLD m80 per stack value, the instruction, FNSTSW, FNSAVE), then
 * SW, CW, tags, FOP, registers, memory, AX and EFLAGS are compared. Tolerances, each for a documented
 * gap in fpu.ts: results the host holds beyond binary64 (extra precision or exponent range) may
 * differ by one binary64 step with #O/#U/#P/C1 ignored; transcendentals get a relative tolerance.
 */

import { assert } from "../../assert.ts";
import { FakeFpuHost } from "./fake_fpu_host.ts";
import { type HostCase, type HostResult, MEM_BYTES, SAVE_BYTES, X87HostHarness } from "./x87_host_harness.ts";
import { Fpu, FPU_EFLAGS_MASK, FPU_WROTE_AX, FPU_WROTE_EFLAGS } from "../../../lib/x86/fpu/fpu.ts";
import {
  doubleBitsOut,
  doubleFromBits,
  float80Out,
  fromFloat80,
  toFloat80,
} from "../../../lib/x86/fpu/float_bits.ts";

// ---- values (as binary64 bit patterns: NaN payloads must survive plain arrays) ----------------

const bitsView = new DataView(new ArrayBuffer(8));
function bitsOf(x: number): bigint {
  bitsView.setFloat64(0, x, true);
  return bitsView.getBigUint64(0, true);
}
/** Marks a value given as an 80-bit image (sign/exponent << 64 | significand) rather than binary64 bits. */
const EXT = 1n << 96n;
function x80(se: number, sig: bigint): bigint {
  return EXT | (BigInt(se) << 64n) | sig;
}
/** The 80-bit image of a value: binary64 bits (widened exactly) or an `x80` image. */
function f80(b: bigint): Uint8Array {
  const out = new Uint8Array(10);
  const dv = new DataView(out.buffer);
  if (b >= EXT) {
    dv.setBigUint64(0, b & 0xFFFFFFFFFFFFFFFFn, true);
    dv.setUint16(8, Number((b >> 64n) & 0xFFFFn), true);
    return out;
  }
  toFloat80(Number(b >> 32n), Number(b & 0xFFFFFFFFn));
  dv.setUint32(0, float80Out[0], true);
  dv.setUint32(4, float80Out[1], true);
  dv.setUint16(8, float80Out[2], true);
  return out;
}

const QNAN = 0x7FF8000000000001n, NQNAN = 0xFFF8000000000005n, INDEF = 0xFFF8000000000000n;
const SNAN = 0x7FF0000000000001n, NSNAN = 0xFFF4000000000000n, QNAN_BIG = 0x7FFFFFFFFFFFFFFFn;
const NANS = [QNAN, NQNAN, INDEF, SNAN, NSNAN, QNAN_BIG];

const POOL: bigint[] = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  1.5,
  2,
  -2,
  3,
  -3,
  2.5,
  -2.5,
  3.5,
  0.1,
  -0.1,
  1 / 3,
  10,
  1e10,
  -123456.789,
  Math.PI,
  -Math.E,
  2 ** 52 + 1,
  2 ** 53,
  2 ** 63,
  -(2 ** 63),
  2 ** 64,
  1e18,
  32767.5,
  -32768.5,
  2147483647.5,
  -2147483648.5,
  2147483648,
  1e300,
  -1e300,
  1e-300,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  2.2250738585072014e-308,
  -2.2250738585072014e-308,
  5e-324,
  -5e-324,
  2.5e-310,
  1e-320,
  Infinity,
  -Infinity,
].map(bitsOf).concat(NANS);

/** Values only the 80-bit format has: its range ends, denormals, 64-bit significands, unsupported encodings. */
const XPOOL: bigint[] = [
  x80(0x7FFE, 0xFFFFFFFFFFFFFFFFn), // LDBL_MAX
  x80(0xFFFE, 0xFFFFFFFFFFFFFFFFn),
  x80(0x0001, 0x8000000000000000n), // LDBL_MIN
  x80(0x8001, 0x8000000000000001n),
  x80(0x0000, 0x7FFFFFFFFFFFFFFFn), // largest denormal
  x80(0x0000, 0x0000000000000001n), // smallest denormal
  x80(0x8000, 0x0000123456789ABCn),
  x80(0x0000, 0x8000000000000001n), // pseudo-denormals
  x80(0x8000, 0xC000000000000000n),
  x80(0x3FFF, 0x4000000000000000n), // unnormal
  x80(0x7FFF, 0x0000000000000000n), // pseudo-infinity
  x80(0xFFFF, 0x4000000000000001n), // pseudo-NaN
  x80(0x7FFF, 0xC000000000000001n), // QNaN, payload below binary64's reach
  x80(0xFFFF, 0x8000000000000001n), // SNaN, likewise
  x80(0x3FFF, 0x8000000000000001n), // 1 + 2^-63
  x80(0x3FFE, 0xFFFFFFFFFFFFFFFFn), // 1 - 2^-64
  x80(0xBFFF, 0xAAAAAAAAAAAAAAABn),
  x80(0x7FF0, 0xC90FDAA22168C235n),
  x80(0x000F, 0xB17217F7D1CF79ACn),
  x80(0x403E, 0xFFFFFFFFFFFFFFFFn), // 2^64 - 1
  x80(0xC03D, 0x8000000000000001n), // -(2^62 + 1)
  x80(0x4034, 0xDE0B6B3A763FFFFFn), // just under 10^18
];
/** Binary64 and 80-bit values together, for register operands. */
const APOOL = POOL.concat(XPOOL);

/** Deterministic xorshift PRNG, so failures reproduce. */
let seed = 0x2545F491;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
function randInt(n: number): number {
  return Math.floor(rand() * n);
}
function pick<T>(a: T[]): T {
  return a[randInt(a.length)];
}
/** A random finite double with exponent in [-e, e]. */
function randomDouble(e = 40): bigint {
  const mant = BigInt(Math.floor(rand() * 2 ** 26)) << 26n | BigInt(Math.floor(rand() * 2 ** 26));
  const exp = BigInt(1023 + randInt(2 * e + 1) - e);
  const sign = rand() < 0.5 ? 1n << 63n : 0n;
  return sign | exp << 52n | mant;
}
/** A random normal 80-bit value with exponent in [-e, e] (a full 64-bit significand). */
function randomExt(e = 40): bigint {
  const sig = (1n << 63n) | BigInt(Math.floor(rand() * 2 ** 31)) << 32n |
    BigInt(Math.floor(rand() * 2 ** 32));
  const exp = Math.max(1, Math.min(0x7FFE, 16383 + randInt(2 * e + 1) - e));
  return x80((rand() < 0.5 ? 0x8000 : 0) | exp, sig);
}
/** A binary64 value (for memory operands). */
function randomValue64(): bigint {
  return rand() < 0.3 ? pick(POOL) : randomDouble(rand() < 0.2 ? 1000 : 40);
}
/** A register value: binary64 or 80-bit, ordinary or special. */
function randomValue(): bigint {
  const r = rand();
  if (r < 0.1) return pick(XPOOL);
  if (r < 0.4) return randomValue64();
  return randomExt(rand() < 0.1 ? 16400 : rand() < 0.2 ? 1000 : 40);
}
/** A random precision control: single, double or extended. */
function randomPc(): number {
  return pick([0, 2, 3]);
}

// ---- encodings and cases ---------------------------------------------------------------------

interface Encoding {
  name: string;
  /** The instruction, and for `postStore` encodings FSTP m64 [esi+0x40] after it. */
  bytes: number[];
  /**
   * Followed by FSTP m64, so the host's extended-range result is rounded into binary64 once, as
   * ours was by the instruction itself: memory and flags then compare exactly, C1 taken from ours
   * before the store.
   */
  postStore: boolean;
  /** Transcendental: compare with a relative tolerance, ignoring #P, #U and C1. */
  approx: boolean;
  /** Control instruction: FOP is not updated. */
  control: boolean;
}

const encodings: Encoding[] = [];
const encodingIndex = new Map<string, number>();
function enc(
  name: string,
  opcode: number,
  modrm: number,
  flags: { approx?: boolean; control?: boolean; postStore?: boolean } = {},
): number {
  const key = `${opcode},${modrm},${!!flags.postStore}`;
  const known = encodingIndex.get(key);
  if (known !== undefined) return known;
  const bytes = flags.postStore ? [opcode, modrm, 0xDD, 0x5E, 0x40] : [opcode, modrm];
  encodings.push({
    name,
    bytes,
    approx: !!flags.approx,
    control: !!flags.control,
    postStore: !!flags.postStore,
  });
  encodingIndex.set(key, encodings.length - 1);
  return encodings.length - 1;
}
/** ModRM for a memory form with reg field `reg` and operand [esi]. */
function mem(reg: number): number {
  return (reg << 3) | 6;
}

interface Case extends HostCase {
  group: string;
}
const cases: Case[] = [];
const CW_DOUBLE = 0x027F; // all masked, PC = double, RC = nearest

function addCase(
  group: string,
  encoding: number,
  stack: bigint[],
  o: { cw?: number; eflags?: number; mem?: Uint8Array } = {},
): void {
  cases.push({
    group,
    encoding,
    cw: o.cw ?? CW_DOUBLE,
    eflags: o.eflags ?? 2,
    stack: stack.map(f80),
    mem: o.mem ?? new Uint8Array(MEM_BYTES),
  });
}
function memWith(write: (dv: DataView) => void): Uint8Array {
  const m = new Uint8Array(MEM_BYTES);
  write(new DataView(m.buffer));
  return m;
}
function memF64(b: bigint): Uint8Array {
  return memWith((dv) => dv.setBigUint64(0, b, true));
}
function memF32(bits: number): Uint8Array {
  return memWith((dv) => dv.setUint32(0, bits, true));
}
const F32_POOL = [
  0,
  0x80000000,
  0x3F800000,
  0xBF800000,
  0x3FC00000,
  0x40490FDB,
  0x7F7FFFFF,
  0xFF7FFFFF,
  0x00800000,
  0x00000001,
  0x80000001,
  0x00400000,
  0x7F800000,
  0xFF800000,
  0x7FC00000,
  0xFFC00001,
  0x7F800001,
  0xFFA00000,
  0x4B000001,
];
function randomF32(): number {
  if (rand() < 0.4) return pick(F32_POOL);
  return ((rand() < 0.5 ? 0x80000000 : 0) | ((100 + randInt(56)) << 23) | randInt(1 << 23)) >>> 0;
}
function withRc(rc: number, pc = 2): number {
  return 0x7F | (pc << 8) | (rc << 10);
}

const ARITH_NAMES = ["add", "mul", "com", "comp", "sub", "subr", "div", "divr"];
const ARITH_REGS = [0, 1, 4, 5, 6, 7];

// Register-form arithmetic: every pool pair for D8, random pairs and RC for DC/DE.
for (const reg of ARITH_REGS) {
  const d8 = enc(`f${ARITH_NAMES[reg]} st0,st1`, 0xD8, 0xC1 | (reg << 3));
  for (const a of APOOL) for (const b of APOOL) addCase("arith-pool", d8, [a, b], { cw: withRc(0, 3) });
  for (let k = 0; k < 400; k++) {
    addCase("arith-rc", d8, [randomValue(), randomValue()], { cw: withRc(randInt(4), randomPc()) });
  }
  for (let k = 0; k < 200; k++) {
    addCase("arith-pc-single", d8, [randomDouble(), randomDouble()], { cw: withRc(randInt(4), 0) });
  }
  for (const opcode of [0xDC, 0xDE]) {
    const i = 1 + randInt(2);
    const e = enc(`${opcode.toString(16)} /${reg} st${i}`, opcode, 0xC0 | (reg << 3) | i);
    for (let k = 0; k < 250; k++) {
      addCase("arith-sti", e, [randomValue(), randomValue(), randomValue()], {
        cw: withRc(randInt(4), randomPc()),
      });
    }
  }
  // Memory forms: m32fp, m64fp, m32int, m16int.
  const m32 = enc(`f${ARITH_NAMES[reg]} m32`, 0xD8, mem(reg));
  const m64 = enc(`f${ARITH_NAMES[reg]} m64`, 0xDC, mem(reg));
  const i32 = enc(`fi${ARITH_NAMES[reg]} m32`, 0xDA, mem(reg));
  const i16 = enc(`fi${ARITH_NAMES[reg]} m16`, 0xDE, mem(reg));
  for (let k = 0; k < 300; k++) {
    const cw = withRc(randInt(4), randomPc());
    addCase("arith-m32", m32, [randomValue()], { cw, mem: memF32(randomF32()) });
    addCase("arith-m64", m64, [randomValue()], { cw, mem: memF64(randomValue64()) });
    addCase("arith-i32", i32, [randomValue()], {
      cw,
      mem: memWith((dv) => dv.setInt32(0, randInt(2 ** 32) - 2 ** 31, true)),
    });
    addCase("arith-i16", i16, [randomValue()], {
      cw,
      mem: memWith((dv) => dv.setInt16(0, randInt(65536) - 32768, true)),
    });
  }
  // Denormal operands against zeros and specials, for #D next to #Z and #I.
  for (const a of APOOL) {
    addCase("arith-denormal", m64, [a], { mem: memF64(0x000FFFFFFFFFFFFFn) });
    addCase("arith-denormal", m32, [a], { mem: memF32(0x80000003) });
  }
}

// Unmasked exceptions: the destination stays, ES and B are set.
for (const reg of ARITH_REGS) {
  const d8 = enc(`f${ARITH_NAMES[reg]} st0,st1`, 0xD8, 0xC1 | (reg << 3));
  const m64 = enc(`f${ARITH_NAMES[reg]} m64`, 0xDC, mem(reg));
  for (let k = 0; k < 150; k++) {
    const cw = 0x0240 | randInt(64); // random exception masks (PE kept by chance)
    addCase("arith-unmasked", d8, [pick(APOOL), pick(APOOL)], { cw: cw | (randomPc() << 8) });
    addCase("arith-unmasked", d8, [randomExt(16400), randomExt(16400)], { cw: cw | (randomPc() << 8) });
    addCase("arith-unmasked", m64, [pick(POOL)], { cw, mem: memF64(pick(POOL)) });
  }
}

// Comparisons.
const compares = [
  enc("fcom st1", 0xD8, 0xD1),
  enc("fcomp st1", 0xD8, 0xD9),
  enc("fcompp", 0xDE, 0xD9),
  enc("fucom st1", 0xDD, 0xE1),
  enc("fucomp st1", 0xDD, 0xE9),
  enc("fucompp", 0xDA, 0xE9),
  enc("fcomi st1", 0xDB, 0xF1),
  enc("fucomi st1", 0xDB, 0xE9),
  enc("fcomip st1", 0xDF, 0xF1),
  enc("fucomip st1", 0xDF, 0xE9),
  enc("fcom2 st2 (alias)", 0xDC, 0xD2),
  enc("fcomp5 st1 (alias)", 0xDE, 0xD1),
];
for (const e of compares) {
  for (let k = 0; k < 400; k++) {
    addCase("compare", e, [pick(APOOL), pick(APOOL), pick(APOOL)], { cw: rand() < 0.2 ? 0x027E : CW_DOUBLE });
    const near = randomExt(16400);
    addCase("compare", e, [near, rand() < 0.5 ? near : near ^ 1n, randomValue()], {
      cw: rand() < 0.2 ? 0x027C : CW_DOUBLE,
    });
  }
  addCase("compare-empty", e, [pick(POOL)]);
  addCase("compare-empty", e, [pick(POOL)], { cw: 0x027E });
}
for (
  const [opcode, reg, kind] of [[0xD8, 2, "m32"], [0xD8, 3, "m32"], [0xDC, 2, "m64"], [0xDC, 3, "m64"], [
    0xDA,
    2,
    "i32",
  ], [0xDE, 3, "i16"]] as const
) {
  const e = enc(`fcom ${kind} /${reg}`, opcode, mem(reg));
  for (let k = 0; k < 200; k++) {
    const m = kind === "m32"
      ? memF32(randomF32())
      : kind === "m64"
      ? memF64(pick(POOL))
      : kind === "i32"
      ? memWith((dv) => dv.setInt32(0, pick([0, 1, -1, 3, 2147483647, -2147483648]), true))
      : memWith((dv) => dv.setInt16(0, pick([0, 1, -1, 3, 32767, -32768]), true));
    addCase("compare-mem", e, [pick(APOOL)], { mem: m });
  }
}
const ftst = enc("ftst", 0xD9, 0xE4), fxam = enc("fxam", 0xD9, 0xE5);
for (const v of APOOL) {
  addCase("ftst", ftst, [v]);
  addCase("fxam", fxam, [v]);
}
addCase("fxam", fxam, []);
addCase("ftst", ftst, []);

// One-operand arithmetic on ST(0).
const unary = [
  enc("fchs", 0xD9, 0xE0),
  enc("fabs", 0xD9, 0xE1),
  enc("fsqrt", 0xD9, 0xFA),
  enc("frndint", 0xD9, 0xFC),
  enc("fxtract", 0xD9, 0xF4),
];
for (const e of unary) {
  for (const v of APOOL) {
    for (let rc = 0; rc < 4; rc++) addCase("unary", e, [v], { cw: withRc(rc, randomPc()) });
  }
  for (let k = 0; k < 300; k++) addCase("unary", e, [randomValue()], { cw: withRc(randInt(4), randomPc()) });
  addCase("unary-empty", e, []);
}
const fsqrt = encodingIndex.get(`${0xD9},${0xFA},false`)!;
for (let k = 0; k < 300; k++) {
  addCase("fsqrt-pc-single", fsqrt, [randomDouble()], { cw: withRc(randInt(4), 0) });
  addCase("fsqrt-pc-single", fsqrt, [randomExt(16400)], { cw: withRc(randInt(4), randomPc()) });
}

// Two-operand ST(0)/ST(1) instructions.
const binary = [
  enc("fscale", 0xD9, 0xFD),
  enc("fprem", 0xD9, 0xF8),
  enc("fprem1", 0xD9, 0xF5),
];
for (const e of binary) {
  for (const a of APOOL) for (const b of APOOL) addCase("binary-pool", e, [a, b]);
  for (let k = 0; k < 600; k++) {
    addCase("binary", e, [randomValue(), randomValue()], { cw: withRc(randInt(4), randomPc()) });
  }
  addCase("binary-empty", e, [bitsOf(1)]);
}
const fscale = encodingIndex.get(`${0xD9},${0xFD},false`)!;
for (let k = 0; k < 500; k++) {
  // Scale into and below the subnormal range, and past the top.
  const n = pick([-1074, -1075, -1060, -1100, -1030, -1023, -1022, 1023, 1024, 2000, -2000]) + randInt(40) -
    20;
  addCase("fscale-range", fscale, [randomDouble(3), bitsOf(n)], { cw: withRc(randInt(4)) });
}
for (const e of [encodingIndex.get(`${0xD9},${0xF8},false`)!, encodingIndex.get(`${0xD9},${0xF5},false`)!]) {
  for (let k = 0; k < 400; k++) {
    // Partial remainders (exponent difference >= 64) and quotient bits.
    addCase("fprem-range", e, [randomDouble(300), randomDouble(20)]);
    addCase("fprem-range", e, [randomExt(300), randomExt(20)]);
    addCase("fprem-quotient", e, [
      bitsOf(randInt(1000) - 500 + rand()),
      bitsOf(pick([1, 0.75, 3, -2.5, 0.1])),
    ]);
  }
}

// Results rounded into the binary64 subnormal and overflow ranges, checked exactly through a store.
const CW_EXTENDED = 0x037F;
for (const [name, modrm] of [["fmul", 0xC9], ["fdiv", 0xF1], ["fscale", 0xFD]] as const) {
  const e = enc(`${name} + fstp m64`, name === "fscale" ? 0xD9 : 0xD8, modrm, { postStore: true });
  for (let k = 0; k < 700; k++) {
    const low = rand() < 0.7;
    let a: bigint, b: bigint;
    if (name === "fscale") {
      a = randomDouble(3);
      b = bitsOf((low ? -1075 : 1022) + randInt(60) - 30);
    } else {
      // Exponents summing (or differing) to just around -1022..-1080 or +1024.
      const target = low ? -1022 - randInt(60) : 1020 + randInt(8);
      const ea = Math.trunc(target / 2) + randInt(20) - 10;
      const eb = name === "fmul" ? target - ea : ea - target;
      a = (randomDouble(0) & ~(0x7FFn << 52n)) | BigInt(1023 + ea) << 52n;
      b = (randomDouble(0) & ~(0x7FFn << 52n)) | BigInt(1023 + eb) << 52n;
    }
    addCase("range-store", e, [a, b], { cw: (CW_EXTENDED & ~0xC00) | (randInt(4) << 10) });
  }
}
for (let k = 0; k < 7; k++) {
  const e = enc(`fld const ${k} + fstp m64`, 0xD9, 0xE8 + k, { postStore: true });
  for (let rc = 0; rc < 4; rc++) addCase("range-store", e, [], { cw: withRc(rc, 3) });
}

// Transcendentals.
const TRIG = new Set(["fsin", "fcos", "fptan", "fsincos"]);
const trans = [
  enc("f2xm1", 0xD9, 0xF0, { approx: true }),
  enc("fyl2x", 0xD9, 0xF1, { approx: true }),
  enc("fptan", 0xD9, 0xF2, { approx: true }),
  enc("fpatan", 0xD9, 0xF3, { approx: true }),
  enc("fyl2xp1", 0xD9, 0xF9, { approx: true }),
  enc("fsincos", 0xD9, 0xFB, { approx: true }),
  enc("fsin", 0xD9, 0xFE, { approx: true }),
  enc("fcos", 0xD9, 0xFF, { approx: true }),
];
const TRANS_POOL = APOOL;
for (const e of trans) {
  for (const a of TRANS_POOL) {
    for (const b of [bitsOf(1), bitsOf(-2.5), bitsOf(0), bitsOf(Infinity), QNAN]) {
      // FYL2XP1 at -1 and below is outside its domain, with a result the SDM leaves undefined.
      const img = f80(a), infinite = img[8] === 0xFF && (img[9] & 0x7F) === 0x7F;
      if (encodings[e].name === "fyl2xp1" && f80Value(img) <= -1 && !infinite) continue;
      // F2XM1 beyond [-1, 1] is undefined too (AMD returns the operand).
      if (
        encodings[e].name === "f2xm1" && Math.abs(f80Value(f80(a))) > 1 &&
        Math.abs(f80Value(f80(a))) < Infinity
      ) continue;
      addCase("trans-special", e, [a, b]);
    }
  }
  for (let k = 0; k < 300; k++) {
    const x = encodings[e].name === "f2xm1" || encodings[e].name === "fyl2xp1"
      ? (rand() * 2 - 1) * 0.29
      : (rand() - 0.3) * 50;
    addCase("trans", e, [bitsOf(x), bitsOf((rand() - 0.5) * 20)]);
  }
  for (let k = 0; k < 100; k++) {
    // 80-bit arguments, all rounding modes; trigonometric ones up to 2^63.
    const name = encodings[e].name;
    const x = TRIG.has(name)
      ? randomExt(63)
      : name === "f2xm1"
      ? randomExt(1) & ~(1n << 79n) | (rand() < 0.5 ? 1n << 79n : 0n)
      : randomExt(20);
    const ok = name === "f2xm1"
      ? Math.abs(f80Value(f80(x))) <= 1
      : name === "fyl2xp1"
      ? Math.abs(f80Value(f80(x))) < 0.29
      : true;
    if (!ok) continue;
    addCase("trans-ext", e, [x, randomExt(10)], { cw: withRc(randInt(4), randomPc()) });
  }
  addCase("trans-empty", e, []);
  addCase("trans-full", e, [1, 2, 3, 4, 5, 6, 7, 8].map(bitsOf));
}

// Loads.
const loads = {
  m32: enc("fld m32", 0xD9, mem(0)),
  m64: enc("fld m64", 0xDD, mem(0)),
  m80: enc("fld m80", 0xDB, mem(5)),
  i16: enc("fild m16", 0xDF, mem(0)),
  i32: enc("fild m32", 0xDB, mem(0)),
  i64: enc("fild m64", 0xDF, mem(5)),
  bcd: enc("fbld", 0xDF, mem(4)),
};
for (let k = 0; k < 300; k++) {
  const depth = pick([0, 1, 7, 8]);
  const stack = Array.from({ length: depth }, () => pick(APOOL));
  const cw = pick([CW_DOUBLE, 0x027E, 0x027D]);
  addCase("load", loads.m32, stack, { cw, mem: memF32(randomF32()) });
  addCase("load", loads.m64, stack, { cw, mem: memF64(randomValue64()) });
  addCase("load", loads.m80, stack, {
    cw,
    mem: memWith((dv) => new Uint8Array(dv.buffer).set(f80(randomValue()))),
  });
  addCase("load", loads.m80, stack, {
    cw,
    mem: memWith((dv) => new Uint8Array(dv.buffer).set(f80(pick(XPOOL)))),
  });
  addCase("load", loads.i16, stack, {
    cw,
    mem: memWith((dv) => dv.setInt16(0, randInt(65536) - 32768, true)),
  });
  addCase("load", loads.i32, stack, {
    cw,
    mem: memWith((dv) => dv.setInt32(0, randInt(2 ** 32) - 2 ** 31, true)),
  });
  addCase("load", loads.i64, stack, {
    cw,
    mem: memWith((dv) => {
      dv.setUint32(0, randInt(2 ** 32), true);
      dv.setInt32(4, pick([0, -1, randInt(2 ** 32) - 2 ** 31, randInt(1 << 20)]), true);
    }),
  });
  addCase("load", loads.bcd, stack, {
    cw,
    mem: memWith((dv) => {
      for (let i = 0; i < 9; i++) dv.setUint8(i, randInt(10) | (randInt(10) << 4));
      if (rand() < 0.5) { for (let i = 3 + randInt(6); i < 9; i++) dv.setUint8(i, 0); }
      dv.setUint8(9, rand() < 0.5 ? 0x80 : 0);
    }),
  });
}
// Unsupported 80-bit encodings: unnormal, pseudo-infinity, pseudo-NaN; and pseudo-denormal.
for (
  const [lo, hi, se] of [[0, 0x40000000, 0x3FFF], [0, 0, 0x7FFF], [1, 0x40000000, 0xFFFF], [5, 0x80000000, 0]]
) {
  for (const cw of [CW_DOUBLE, 0x027E]) {
    addCase("load-m80-unsupported", loads.m80, [], {
      cw,
      mem: memWith((dv) => {
        dv.setUint32(0, lo, true);
        dv.setUint32(4, hi, true);
        dv.setUint16(8, se, true);
      }),
    });
  }
}

// Stores.
const stores = [
  enc("fst m32", 0xD9, mem(2)),
  enc("fstp m32", 0xD9, mem(3)),
  enc("fst m64", 0xDD, mem(2)),
  enc("fstp m64", 0xDD, mem(3)),
  enc("fstp m80", 0xDB, mem(7)),
  enc("fist m16", 0xDF, mem(2)),
  enc("fistp m16", 0xDF, mem(3)),
  enc("fist m32", 0xDB, mem(2)),
  enc("fistp m32", 0xDB, mem(3)),
  enc("fistp m64", 0xDF, mem(7)),
  enc("fbstp", 0xDF, mem(6)),
];
const STORE_POOL = POOL.concat([
  1.00000011920928955078125,
  3.4028235677973366e38,
  3.4028234663852886e38,
  1.1754942807573643e-38,
  1.401298464324817e-45,
  7.006492321624085e-46,
  1e-40,
  65535.5,
  -32768.49,
  32767.49,
  -2147483648.4,
  9.2233720368547748e18,
  -9.223372036854775808e18,
  999999999999999999,
  -1e17 - 1,
  123456789012345678,
].map(bitsOf)).concat(XPOOL, [
  x80(0x407F, 0xFFFFFF7FFFFFFFFFn), // just under binary32's overflow threshold
  x80(0x407E, 0xFFFFFF8000000000n), // the binary32 overflow tie
  x80(0x43FE, 0xFFFFFFFFFFFFFBFFn), // just under binary64's
  x80(0x43FE, 0xFFFFFFFFFFFFFC00n), // the binary64 overflow tie
  x80(0x3C00, 0x8000000000000000n), // 2^-1023
  x80(0x3BCD, 0xC000000000000000n), // 1.5 * 2^-1074
  x80(0x3F80, 0x8000000000000000n), // 2^-127
  x80(0x3F69, 0x8000000000000001n), // just above 2^-150
  x80(0x403D, 0xFFFFFFFFFFFFFFFFn), // 2^63 - 1/2
  x80(0xC03E, 0x8000000000000000n), // -2^63
  x80(0xC03E, 0x8000000000000001n),
]);
for (const e of stores) {
  for (const v of STORE_POOL) for (let rc = 0; rc < 4; rc++) addCase("store", e, [v], { cw: withRc(rc) });
  for (let k = 0; k < 200; k++) {
    addCase("store", e, [randomValue()], { cw: withRc(randInt(4)) });
    addCase("store-unmasked", e, [pick(STORE_POOL)], { cw: 0x0240 | randInt(64) | (randInt(4) << 10) });
  }
  addCase("store-empty", e, []);
  addCase("store-empty", e, [], { cw: 0x027E });
}

// Stack manipulation, constants, FCMOVcc, control words.
for (let i = 0; i < 8; i++) {
  const stackOps = [
    enc(`fld st${i}`, 0xD9, 0xC0 | i),
    enc(`fxch st${i}`, 0xD9, 0xC8 | i),
    enc(`ffree st${i}`, 0xDD, 0xC0 | i),
    enc(`fst st${i}`, 0xDD, 0xD0 | i),
    enc(`fstp st${i}`, 0xDD, 0xD8 | i),
    enc(`ffreep st${i}`, 0xDF, 0xC0 | i),
    enc(`fxch4 st${i}`, 0xDD, 0xC8 | i),
    enc(`fstp1 st${i}`, 0xD9, 0xD8 | i),
    enc(`fstp8 st${i}`, 0xDF, 0xD0 | i),
  ];
  for (const e of stackOps) {
    // FSTP1 (D9 D8+i) is reserved in the SDM; AMD documents it as FSTPNCE, which skips the
    // stack-underflow check. Only the case where both agree is compared with the host.
    for (let depth = encodings[e].name.startsWith("fstp1") ? 1 : 0; depth <= 8; depth++) {
      const stack = Array.from({ length: depth }, () => pick(APOOL));
      addCase("stack", e, stack);
      addCase("stack", e, stack, { cw: 0x027E });
    }
  }
  for (let cc = 0; cc < 8; cc++) {
    const fcmov = enc(`fcmov${cc} st${i}`, cc < 4 ? 0xDA : 0xDB, 0xC0 | ((cc & 3) << 3) | i);
    for (const eflags of [0x02, 0x03, 0x06, 0x42, 0x43, 0x47, 0x46]) {
      addCase("fcmov", fcmov, Array.from({ length: 1 + randInt(8) }, () => pick(APOOL)), { eflags });
    }
    addCase("fcmov-empty", fcmov, [], { eflags: 0x47 });
  }
}
for (const modrm of [0xF6, 0xF7, 0xD0]) {
  const e = enc(`d9 ${modrm.toString(16)}`, 0xD9, modrm);
  for (let depth = 0; depth <= 8; depth += 2) {
    addCase(
      "stack",
      e,
      Array.from({ length: depth }, () => pick(POOL)),
    );
  }
}
for (let k = 0; k < 7; k++) {
  const e = enc(`fld const ${k}`, 0xD9, 0xE8 + k);
  for (let rc = 0; rc < 4; rc++) {
    addCase("constant", e, [], { cw: withRc(rc) });
    addCase("constant", e, [], { cw: withRc(rc, 3) });
  }
  addCase("constant-full", e, [1, 2, 3, 4, 5, 6, 7, 8].map(bitsOf));
}
const fldcw = enc("fldcw", 0xD9, mem(5), { control: true });
const fnstcw = enc("fnstcw", 0xD9, mem(7), { control: true });
const fnstswM = enc("fnstsw m16", 0xDD, mem(7), { control: true });
const fnstswAx = enc("fnstsw ax", 0xDF, 0xE0, { control: true });
for (let k = 0; k < 100; k++) {
  const stack = Array.from({ length: randInt(9) }, () => pick(POOL));
  addCase("control", fldcw, stack, { mem: memWith((dv) => dv.setUint16(0, randInt(65536), true)) });
  addCase("control", fnstcw, stack, { cw: randInt(65536) | 0x3F });
  addCase("control", fnstswM, stack);
  addCase("control", fnstswAx, stack);
}
// FLDENV and FRSTOR from crafted 32-bit protected-mode images.
const fldenv = enc("fldenv", 0xD9, mem(4), { control: true });
const frstor = enc("frstor", 0xDD, mem(4), { control: true });
for (let k = 0; k < 300; k++) {
  const image = memWith((dv) => {
    dv.setUint32(0, 0xFFFF0000 | randInt(65536), true);
    dv.setUint32(4, 0xFFFF0000 | randInt(65536), true);
    dv.setUint32(8, 0xFFFF0000 | randInt(65536), true);
    dv.setUint32(12, randInt(2 ** 32), true);
    dv.setUint32(16, randInt(2 ** 32), true);
    dv.setUint32(20, randInt(2 ** 32), true);
    dv.setUint32(24, randInt(2 ** 32), true);
    for (let i = 0; i < 8; i++) new Uint8Array(dv.buffer).set(f80(randomValue()), 28 + 10 * i);
  });
  // A full stack, so every register's content (which FLDENV's tags expose) is known on both sides.
  const stack = Array.from({ length: 8 }, () => pick(APOOL));
  addCase("env", fldenv, stack, { mem: image });
  addCase("env", frstor, stack, { mem: image });
}

// ---- our side ----------------------------------------------------------------------------------

const host = new FakeFpuHost(4096);
const fpu = new Fpu(host);
const CW_AT = 0x80, STACK_AT = 0x200, OPERAND_AT = 0x400, SAVE_AT = 0x800;

function runOurs(c: Case): HostResult {
  const e = encodings[c.encoding];
  fpu.execute(0xDB, 0xE3, 0, false, 0, 0, 0, 0); // FNINIT
  host.view.setUint16(CW_AT, c.cw, true);
  fpu.execute(0xD9, mem(5), CW_AT, false, 0, 0, 0, 0); // FLDCW
  for (let k = c.stack.length - 1; k >= 0; k--) {
    host.bytes.set(c.stack[k], STACK_AT);
    fpu.execute(0xDB, 0x2A, STACK_AT, false, 0, 0, 0, 0); // FLD m80, as the host's `fldt (%edx)`
  }
  host.bytes.set(c.mem, OPERAND_AT);
  fpu.eflagsIn = c.eflags;
  const status = fpu.execute(e.bytes[0], e.bytes[1], OPERAND_AT, false, 0, 0, 0, 0);
  const ax = status === FPU_WROTE_AX ? fpu.statusWord() : 0;
  const eflags = status === FPU_WROTE_EFLAGS ? (c.eflags & ~FPU_EFLAGS_MASK) | fpu.eflagsOut : c.eflags;
  if (e.postStore) fpu.execute(0xDD, 0x5E, OPERAND_AT + 0x40, false, 0, 0, 0, 0);
  const sw = fpu.statusWord();
  fpu.execute(0xDD, mem(6), SAVE_AT, false, 0, 0, 0, 0); // FNSAVE
  return {
    sw,
    ax,
    eflags,
    save: host.bytes.slice(SAVE_AT, SAVE_AT + SAVE_BYTES),
    mem: host.bytes.slice(OPERAND_AT, OPERAND_AT + MEM_BYTES),
  };
}

// ---- comparison --------------------------------------------------------------------------------

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
/** The binary64 nearest to an 80-bit image (a NaN's payload is not kept: compare images for that). */
function f80Value(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, 10);
  fromFloat80(dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint16(8, true));
  return doubleFromBits(doubleBitsOut[1], doubleBitsOut[0]);
}
/** How many 64-bit-significand steps apart two finite 80-bit images of the same sign are. */
function ulps(a: Uint8Array, b: Uint8Array): number {
  const key = (x: Uint8Array) => {
    const dv = new DataView(x.buffer, x.byteOffset, 10);
    return (BigInt(dv.getUint16(8, true) & 0x7FFF) << 63n) + (dv.getBigUint64(0, true) & ((1n << 63n) - 1n));
  };
  const d = key(a) - key(b);
  return Number(d < 0n ? -d : d);
}
/**
 * Transcendentals: within 2 ulps (hardware documents 1 ulp; we round a 128-bit result once). For
 * trigonometric arguments beyond pi/4 a CPU reduces with its own approximation of pi (Intel's has
 * 66 bits, as ours): there the absolute difference may also reach |x| * 2^-64.
 */
function withinTranscendentalTolerance(e: Encoding, c: Case, rh: Uint8Array, ru: Uint8Array): boolean {
  const vh = f80Value(rh), vu = f80Value(ru);
  if (vh !== vh || vu !== vu) return false;
  if ((rh[9] & 0x80) === (ru[9] & 0x80) && ulps(rh, ru) <= 2) return true;
  if (!TRIG.has(e.name)) return false;
  const x = Math.abs(f80Value(c.stack[0]));
  return x > Math.PI / 4 && Math.abs(vh - vu) <= x * 2 ** -64 + Math.abs(vh) * 2 ** -62;
}

/** Describes how ours differs from the host's, or returns "" when they agree (bit for bit, but for transcendentals). */
function compare(c: Case, hw: HostResult, us: HostResult): string {
  const e = encodings[c.encoding];
  const problems: string[] = [];
  const dvH = new DataView(hw.save.buffer), dvU = new DataView(us.save.buffer);
  let swMask = 0xFFFF;
  // Transcendentals: within a tolerance; #P, #U and C1 depend on the last bit.
  if (e.approx) swMask &= ~(0x20 | 0x10 | 0x200 | 0x80 | 0x8000);
  const tagsH = dvH.getUint16(8, true);
  const topH = (dvH.getUint16(4, true) >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    if (((tagsH >> (2 * ((topH + i) & 7))) & 3) === 3) continue;
    const rh = hw.save.subarray(28 + 10 * i, 38 + 10 * i), ru = us.save.subarray(28 + 10 * i, 38 + 10 * i);
    if (hex(rh) === hex(ru)) continue;
    const vh = f80Value(rh), vu = f80Value(ru);
    if (e.approx && withinTranscendentalTolerance(e, c, rh, ru)) {
      if (Deno.env.get("X87_ULPS")) console.log(`${e.name} ${ulps(rh, ru)} ulp ${describe(c)}`);
      continue;
    }
    problems.push(`ST(${i}) host ${hex(rh)} (${vh}) ours ${hex(ru)} (${vu})`);
  }
  const swH = dvH.getUint16(4, true), swU = dvU.getUint16(4, true);
  if ((swH & swMask) !== (swU & swMask)) {
    problems.push(`SW host ${swH.toString(16)} ours ${swU.toString(16)}`);
  }
  if ((hw.sw & swMask) !== (us.sw & swMask)) {
    problems.push(`FNSTSW host ${hw.sw.toString(16)} ours ${us.sw.toString(16)}`);
  }
  const cwH = dvH.getUint16(0, true), cwU = dvU.getUint16(0, true);
  if (cwH !== cwU) problems.push(`CW host ${cwH.toString(16)} ours ${cwU.toString(16)}`);
  const twU = dvU.getUint16(8, true);
  if (tagsH !== twU) problems.push(`TW host ${tagsH.toString(16)} ours ${twU.toString(16)}`);
  const fopH = dvH.getUint16(18, true) & 0x7FF, fopU = dvU.getUint16(18, true) & 0x7FF;
  // A host FOP of 0 may be a context switch's doing: AMD's FXSAVE/XSAVE skip FOP (and FIP/FDP)
  // unless an exception is pending, so a switch between the instruction and FNSAVE clears them.
  if (!e.control && fopH !== fopU && fopH !== 0) {
    problems.push(`FOP host ${fopH.toString(16)} ours ${fopU.toString(16)}`);
  }
  if (hex(hw.mem) !== hex(us.mem)) {
    const at = e.postStore ? 0x40 : 0, n = e.name.includes("m32") ? 4 : e.postStore ? 8 : 10;
    const mh = hw.mem.subarray(at, at + n), mu = us.mem.subarray(at, at + n);
    problems.push(`memory host ${hex(mh)} ours ${hex(mu)}`);
  }
  if ((hw.eflags & FPU_EFLAGS_MASK) !== (us.eflags & FPU_EFLAGS_MASK)) {
    problems.push(`EFLAGS host ${hw.eflags.toString(16)} ours ${us.eflags.toString(16)}`);
  }
  if (hw.ax !== us.ax) problems.push(`AX host ${hw.ax.toString(16)} ours ${us.ax.toString(16)}`);
  return problems.join("; ");
}

function describe(c: Case): string {
  const e = encodings[c.encoding];
  const st = c.stack.map((b) => `${f80Value(b)}[${hex(b)}]`).join(", ");
  return `${e.name} (${e.bytes.map((b) => b.toString(16)).join(" ")}) cw=${c.cw.toString(16)} efl=${
    c.eflags.toString(16)
  } st=[${st}] mem=${hex(c.mem.subarray(0, 10))}`;
}

// ---- the tests ---------------------------------------------------------------------------------

const harness = await X87HostHarness.build(encodings.map((e) => e.bytes));
const skipReason = typeof harness === "string" ? harness : "";
if (skipReason) console.warn(`Fpu differential tests skipped: ${skipReason}`);

const groups = [...new Set(cases.map((c) => c.group.replace(/-.*$/, "")))];
for (const group of groups) {
  Deno.test({
    name: `Fpu.execute matches the host x87 on ${group} cases${
      skipReason ? ` (skipped: ${skipReason})` : ""
    }`,
    ignore: skipReason !== "",
    async fn() {
      const mine = cases.filter((c) => c.group.replace(/-.*$/, "") === group);
      const results = await (harness as X87HostHarness).run(mine);
      const failures: string[] = [];
      for (let k = 0; k < mine.length; k++) {
        const diff = compare(mine[k], results[k], runOurs(mine[k]));
        if (diff) failures.push(`${describe(mine[k])}\n    ${diff}`);
      }
      assert(
        failures.length === 0,
        `${failures.length} of ${mine.length} cases differ:\n${failures.slice(0, 25).join("\n")}`,
      );
    },
  });
}
