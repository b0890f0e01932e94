/**
 * Which way JavaScript rounded: error-free transformations (Knuth's TwoSum, Dekker's TwoProduct)
 * that give the sign of (exact result - rounded result) for + - * / and sqrt. The x87 needs it for
 * the rounding-control modes other than nearest (SDM Vol 1 §4.8.4), the inexact flag #P, C1 ("rounded
 * up") and underflow. Operands are binary64; subnormal results are handled by rescaling.
 */

import { exponentOf, MIN_NORMAL, scaled } from "./float_bits.ts";

/** 2^27 + 1, Veltkamp's splitter for binary64. */
const SPLITTER = 134217729;

/** exact(a + b) - s for s = a + b rounded to nearest (finite, no overflow); always representable. */
export function addError(a: number, b: number, s: number): number {
  const bb = s - a;
  return (a - (s - bb)) + (b - bb);
}

/** exact(a * b) - p for p = a * b rounded to nearest, valid when nothing over- or underflows. */
function productError(a: number, b: number, p: number): number {
  let t = SPLITTER * a;
  const ahi = t - (t - a), alo = a - ahi;
  t = SPLITTER * b;
  const bhi = t - (t - b), blo = b - bhi;
  return ((ahi * bhi - p) + ahi * blo + alo * bhi) + alo * blo;
}

/**
 * Sign of (exact - r) given the sign `err` of (scaled exact - m) where m approximates the scaled
 * exact value at full precision and r, scaled by 2^-k, may sit on a coarser (subnormal) grid.
 */
function coarseSign(m: number, err: number, r: number, k: number): number {
  const rs = scaled(r, -k);
  const d = m - rs; // exact: both lie on m's grid, within a factor of two
  return d !== 0 ? Math.sign(d) : Math.sign(err);
}

/** Between these, Dekker's product needs no rescaling: nothing overflows or underflows. */
const SAFE_LOW = 2 ** -900, SAFE_HIGH = 2 ** 990;

function inSafeRange(x: number): boolean {
  const m = x < 0 ? -x : x;
  return m > SAFE_LOW && m < SAFE_HIGH;
}

/** Sign of exact(a * b) - p for finite non-zero a, b and p = a * b rounded to nearest, p finite. */
export function mulErrorSign(a: number, b: number, p: number): number {
  if (p === 0) return (a < 0) !== (b < 0) ? -1 : 1;
  if (inSafeRange(a) && inSafeRange(b) && inSafeRange(p)) return Math.sign(productError(a, b, p));
  const ea = exponentOf(a), eb = exponentOf(b);
  const ma = scaled(a, -ea), mb = scaled(b, -eb);
  const m = ma * mb;
  const err = productError(ma, mb, m);
  if (Math.abs(p) >= 2 * MIN_NORMAL) return Math.sign(err);
  return coarseSign(m, err, p, ea + eb);
}

/** Sign of exact(a / b) - q for finite non-zero a, b and q = a / b rounded to nearest, q finite. */
export function divErrorSign(a: number, b: number, q: number): number {
  if (q === 0) return (a < 0) !== (b < 0) ? -1 : 1;
  if (inSafeRange(a) && inSafeRange(b) && inSafeRange(q)) {
    const p = q * b;
    return Math.sign((a - p) - productError(q, b, p)) * Math.sign(b);
  }
  const ea = exponentOf(a), eb = exponentOf(b);
  const ma = scaled(a, -ea), mb = scaled(b, -eb);
  const m = ma / mb;
  const ph = m * mb;
  // ma - m*mb is exactly representable for a correctly rounded m (Boldo & Daumas).
  const residual = (ma - ph) - productError(m, mb, ph);
  const err = Math.sign(residual) * Math.sign(mb);
  if (Math.abs(q) >= 2 * MIN_NORMAL) return err;
  return coarseSign(m, err, q, ea - eb);
}

/** Sign of exact(sqrt(a)) - s for finite positive a and s = Math.sqrt(a). */
export function sqrtErrorSign(a: number, s: number): number {
  const k = exponentOf(s);
  const ma = scaled(a, -2 * k), ms = scaled(s, -k);
  const ph = ms * ms;
  return Math.sign((ma - ph) - productError(ms, ms, ph));
}

/**
 * `x` with its significand rounded to 24 bits in mode `rc` (precision control "single"), keeping
 * the binary64 exponent range. `x` must itself be the result correctly rounded to 53 bits in mode
 * `rc`: rounding 53 then 24 bits equals rounding once for + - * / sqrt (53 >= 2 * 24 + 2).
 */
export function roundTo24Bits(x: number, rc: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const k = exponentOf(x);
  return scaled(roundToIntegral(scaled(x, 23 - k), rc), k - 23);
}

/** `x` rounded to an integer in x87 rounding-control mode `rc` (0 nearest-even, 1 down, 2 up, 3 chop). */
export function roundToIntegral(x: number, rc: number): number {
  switch (rc) {
    case 0: {
      if (!(Math.abs(x) < 4503599627370496)) return x; // >= 2^52 (or NaN, inf): already integral
      let r = Math.round(x); // ties toward +inf; fix them to even
      if (r - x === 0.5 && r % 2 !== 0) r -= 1;
      return r;
    }
    case 1:
      return Math.floor(x);
    case 2:
      return Math.ceil(x);
    default:
      return Math.trunc(x);
  }
}
