/**
 * The x87 transcendentals (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, FYL2X, FYL2XP1, F2XM1; SDM Vol 1
 * §8.3.10) computed in BigInt fixed point with at least 128 fraction bits (more for tiny arguments,
 * so the relative precision holds), then rounded once to 64 bits per RC: well within the 1 ulp
 * hardware documents. Trigonometric arguments are reduced with a 320-bit pi, not hardware's 66-bit
 * one, so for large arguments a CPU differs from us (and from the true value) by more. Operands are
 * finite and non-zero, unpacked as sign, exponent and 64-bit significand; results go to `extOut`.
 */

import { FMT_EXT, roundPack } from "./extended_arith.ts";

const F = 128;
const ONE = 1n << 128n;

function bitLength(m: bigint): number {
  let b = 0;
  while (m >= 0x10000000000000000n) {
    m >>= 64n;
    b += 64;
  }
  const hi = Number(m >> 32n);
  return hi > 0 ? b + 64 - Math.clz32(hi) : b + 32 - Math.clz32(Number(m & 0xFFFFFFFFn));
}

/** atan(1/n) at `bits` fraction bits (Machin-style series; n >= 2). */
function atanInverse(n: bigint, bits: bigint): bigint {
  const one = 1n << bits;
  let term = one / n, sum = term, k = 1n;
  const n2 = n * n;
  while (term !== 0n) {
    term /= n2;
    const t = term / (2n * k + 1n);
    sum += k % 2n === 1n ? -t : t;
    k++;
  }
  return sum;
}

/** pi at 320 fraction bits: 16 atan(1/5) - 4 atan(1/239). */
const PI_320 = 16n * atanInverse(5n, 330n) - 4n * atanInverse(239n, 330n) >> 10n;
const PI = PI_320 >> 192n; // at F bits
/** pi to 66 bits (times 2^64), the approximation hardware reduces trigonometric arguments with. */
const PI66 = 0xC90FDAA22168C234Cn >> 2n;
/** ln 2 at F + 8 bits: 2 atanh(1/3). */
const LN2 = atanhSeries((1n << 136n) / 3n, 136n) * 2n >> 8n;

/** atanh(s) = s + s^3/3 + s^5/5 ... for fixed-point s (|s| < 1/2) at `bits` fraction bits. */
function atanhSeries(s: bigint, bits: bigint): bigint {
  const one = 1n << bits;
  const s2 = (s * s) / one;
  let term = s, sum = s, k = 1n;
  while (term !== 0n) {
    term = (term * s2) / one; // (division truncates toward zero, so a negative series ends too)
    sum += term / (2n * k + 1n);
    k++;
  }
  return sum;
}

/**
 * Rounds (-1)^sign * m * 2^e (m != 0, an approximation of an irrational value unless `exact`, so
 * inexact) to 64 bits per RC into `extOut`; returns roundPack's flags.
 */
function roundApprox(sign: number, m: bigint, e: number, rc: number, cw: number, exact = false): number {
  if (m < 0n) {
    m = -m;
    sign ^= 1;
  }
  const bits = bitLength(m);
  const top = bits >= 96 ? m >> BigInt(bits - 96) : m << BigInt(96 - bits);
  return roundPack(
    sign,
    e + bits - 1,
    Number(top >> 64n),
    Number((top >> 32n) & 0xFFFFFFFFn),
    Number(top & 0xFFFFFFFFn),
    exact ? 0 : 1,
    64,
    rc,
    cw,
    FMT_EXT,
  );
}

/** The operand as fixed point at `bits` fraction bits (exact when bits + exp >= 63). */
function fixed(exp: number, hi: number, lo: number, bits: number): bigint {
  const m = (BigInt(hi) << 32n) | BigInt(lo);
  const shift = bits + exp - 63;
  return shift >= 0 ? m << BigInt(shift) : m >> BigInt(-shift);
}

/** sin and cos of fixed-point r (|r| <= pi/4) at `bits` fraction bits, into SIN_COS. */
function sinCos(r: bigint, bits: bigint): void {
  const one = 1n << bits;
  const r2 = (r * r) >> bits;
  let s = r, sTerm = r, c = one, cTerm = one;
  for (let k = 1n; sTerm !== 0n || cTerm !== 0n; k++) {
    cTerm = -((cTerm * r2) >> bits) / ((2n * k - 1n) * (2n * k));
    c += cTerm;
    sTerm = -((sTerm * r2) >> bits) / ((2n * k) * (2n * k + 1n));
    s += sTerm;
  }
  sinOut = s;
  cosOut = c;
}
let sinOut = 0n, cosOut = 0n;

/**
 * Reduces x = (-1)^sign * sig * 2^(exp-63) (|x| < 2^63) modulo pi/2: the quadrant (mod 4) and the
 * remainder at `bits` fraction bits, then sin and cos of the remainder into sinOut/cosOut.
 */
function reducedSinCos(sign: number, exp: number, hi: number, lo: number): { q: number; bits: number } {
  if (exp < -1) {
    const bits = F + 8 - exp; // |x| < 1/2: no reduction; keep the relative precision
    let r = fixed(exp, hi, lo, bits);
    if (sign) r = -r;
    sinCos(r, BigInt(bits));
    return { q: 0, bits };
  }
  const x = fixed(exp, hi, lo, 320); // exact: exp >= -1
  const halfPi = PI66 << (320n - 65n);
  let k = (x + (halfPi >> 1n)) / halfPi; // round to nearest
  let r = x - k * halfPi;
  r >>= 192n - 8n;
  if (sign) {
    r = -r;
    k = -k;
  }
  const bits = F + 8;
  sinCos(r, BigInt(bits));
  return { q: Number(BigInt.asUintN(2, k)), bits };
}

/** FSIN/FCOS/FPTAN/FSINCOS results: kind 0 sin, 1 cos, 2 tan; returns flags (result in extOut). */
export function trigExt(
  kind: number,
  sign: number,
  exp: number,
  hi: number,
  lo: number,
  rc: number,
  cw: number,
): number {
  const { q, bits } = reducedSinCos(sign, exp, hi, lo);
  const s = sinOut, c = cosOut;
  // sin(r + q pi/2), cos(r + q pi/2)
  let sv: bigint, cv: bigint;
  switch (q) {
    case 0:
      sv = s;
      cv = c;
      break;
    case 1:
      sv = c;
      cv = -s;
      break;
    case 2:
      sv = -s;
      cv = -c;
      break;
    default:
      sv = -c;
      cv = s;
  }
  if (kind === 0) return roundApprox(0, sv, -bits, rc, cw);
  if (kind === 1) return roundApprox(0, cv, -bits, rc, cw);
  const t = (sv << BigInt(bits)) / cv;
  return roundApprox(0, t, -bits, rc, cw);
}

/** atan of fixed-point z (0 <= z <= 1) at `bits` fraction bits: three argument halvings, then the series. */
function atanFixed(z: bigint, bits: bigint): bigint {
  const one = 1n << bits;
  for (let k = 0; k < 3; k++) {
    // atan(z) = 2 atan(z / (1 + sqrt(1 + z^2)))
    const root = isqrtBig(((z * z) >> bits) + one << bits);
    z = (z << bits) / (one + root);
  }
  const z2 = (z * z) >> bits;
  let term = z, sum = z;
  for (let k = 1n; term !== 0n; k++) {
    term = -((term * z2) >> bits);
    sum += term / (2n * k + 1n);
  }
  return sum << 3n;
}

function isqrtBig(n: bigint): bigint {
  if (n < 2n) return n;
  const b = bitLength(n);
  let x = 1n << BigInt((b >> 1) + 1);
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

/**
 * FPATAN: atan2(y, x) for finite non-zero x and y, as unpacked operands; returns flags.
 */
export function atan2Ext(
  ySign: number,
  yExp: number,
  yHi: number,
  yLo: number,
  xSign: number,
  xExp: number,
  xHi: number,
  xLo: number,
  rc: number,
  cw: number,
): number {
  const ym = (BigInt(yHi) << 32n) | BigInt(yLo), xm = (BigInt(xHi) << 32n) | BigInt(xLo);
  const yBigger = yExp > xExp || (yExp === xExp && ym > xm);
  // z = min / max in [0, 1], with enough bits that a tiny ratio keeps its relative precision.
  const d = Math.abs(yExp - xExp);
  const bits = F + 8 + d;
  const bitsB = BigInt(bits);
  const num = yBigger ? xm : ym, den = yBigger ? ym : xm;
  const z = (num << BigInt(bits - d)) / den;
  let a = atanFixed(z, bitsB);
  const piB = PI_320 >> BigInt(320 - bits) || 1n;
  if (yBigger) a = (piB >> 1n) - a;
  if (xSign) a = piB - a;
  return roundApprox(ySign, a, -bits, rc, cw);
}

/** log2 of m * 2^e0 (m > 0) as fixed point at F + 8 bits (the integer part exact). */
function log2Fixed(m: bigint, e0: number): bigint {
  const bits = BigInt(F + 8);
  const P = 140;
  const bl = bitLength(m);
  m = bl >= P ? m >> BigInt(bl - P) : m << BigInt(P - bl); // [2^(P-1), 2^P)
  let e = e0 + bl - 1;
  const one = 1n << BigInt(P - 1);
  let num = m - one, den = m + one;
  if (m > (0xB504F333F9DE6484n << BigInt(P - 64))) { // above sqrt(2): use m / 2 in [sqrt(2)/2, 1)
    e++;
    num = m - 2n * one;
    den = m + 2n * one;
  }
  const s = (num << bits) / den;
  const ln = atanhSeries(s, bits) * 2n;
  return (BigInt(e) << bits) + (ln << bits) / LN2_136;
}
const LN2_136 = LN2 << 8n;

/** FYL2X: y * log2(x) for finite non-zero y and finite positive x != 1; returns flags. */
export function yl2xExt(
  ySign: number,
  yExp: number,
  yHi: number,
  yLo: number,
  xExp: number,
  xHi: number,
  xLo: number,
  rc: number,
  cw: number,
): number {
  const l = log2Fixed((BigInt(xHi) << 32n) | BigInt(xLo), xExp - 63);
  const ym = (BigInt(yHi) << 32n) | BigInt(yLo);
  // log2 of a power of two is exact: then only the multiplication rounds.
  return roundApprox(ySign, ym * l, yExp - 63 - (F + 8), rc, cw, xHi === 0x80000000 && xLo === 0);
}

/** FYL2XP1: y * log2(1 + x) for finite non-zero y and x (x > -1); returns flags. */
export function yl2xp1Ext(
  ySign: number,
  yExp: number,
  yHi: number,
  yLo: number,
  xSign: number,
  xExp: number,
  xHi: number,
  xLo: number,
  rc: number,
  cw: number,
): number {
  const ym = (BigInt(yHi) << 32n) | BigInt(yLo);
  if (xExp >= -2) {
    // |x| >= 1/4 (beyond the documented domain too): log2 of 1 + x, summed exactly.
    const xm = (BigInt(xHi) << 32n) | BigInt(xLo); // x = xm * 2^(xExp - 63)
    const sign = xSign ? -1n : 1n;
    const l2 = xExp <= 63
      ? log2Fixed((1n << BigInt(63 - xExp)) + sign * xm, xExp - 63)
      : log2Fixed((xm << BigInt(xExp - 63)) + sign, 0);
    return roundApprox(ySign, ym * l2, yExp - 63 - (F + 8), rc, cw);
  }
  // ln(1 + x) = 2 atanh(x / (2 + x)), with fraction bits enough for tiny x.
  const bits = F + 8 + Math.max(0, -xExp);
  const bitsB = BigInt(bits);
  let x = fixed(xExp, xHi, xLo, bits);
  if (xSign) x = -x;
  const s = (x << bitsB) / ((2n << bitsB) + x);
  const ln = atanhSeries(s, bitsB) * 2n;
  const l = (ln << 136n) / LN2_136;
  return roundApprox(ySign, ym * l, yExp - 63 - bits, rc, cw);
}

/** F2XM1: 2^x - 1 for finite non-zero x, -1 <= x <= 1; returns flags. */
export function f2xm1Ext(sign: number, exp: number, hi: number, lo: number, rc: number, cw: number): number {
  const bits = F + 8 + Math.max(0, -exp);
  const bitsB = BigInt(bits);
  let t = (fixed(exp, hi, lo, bits) * (LN2 << BigInt(8))) >> 136n; // x ln 2
  if (sign) t = -t;
  let term = t, sum = t;
  for (let k = 2n; term !== 0n; k++) {
    term = ((term * t) >> bitsB) / k;
    sum += term;
  }
  return roundApprox(0, sum, -bits, rc, cw);
}

/** pi at F bits, for FPATAN's exact special results (±pi, ±pi/2, ±pi/4, ±3pi/4): index n gives n * pi / 4. */
export function piQuartersExt(sign: number, n: number, rc: number, cw: number): number {
  return roundApprox(sign, (PI * BigInt(n)) >> 2n, -F, rc, cw);
}

/** For tests: pi and ln 2 at F = 128 fraction bits. */
export const PI_128 = PI, LN2_128 = LN2;
export { ONE as FIXED_ONE };
