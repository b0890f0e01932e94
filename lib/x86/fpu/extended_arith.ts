/**
 * Double-extended arithmetic for the x87 (SDM Vol 1 §4.8, §8.1.5): exact + - * / sqrt of 64-bit
 * significands, rounded once per precision control (24, 53 or 64 bits) and rounding control, over
 * the 15-bit exponent range with denormals, or into the binary64/binary32 formats for stores. Add
 * and multiply use 32- and 16-bit limbs in plain numbers (the hot path allocates nothing); divide
 * and square root use BigInt. Operands are finite, non-zero and normalised (integer bit set, exponent
 * unbounded): the FPU handles zeros, infinities, NaNs and denormal unpacking before calling here.
 */

/** Result words: [significand low 32, significand high 32, sign << 15 | biased exponent]. */
export const extOut = new Uint32Array(3);

// Flags returned by the rounding functions: the status-word bits they raise, plus C1.
export const R_OE = 0x08, R_UE = 0x10, R_PE = 0x20, R_C1 = 0x200;

/** Target formats of `roundPack`: the register (15-bit exponent), binary64, binary32. */
export const FMT_EXT = 0, FMT_F64 = 1, FMT_F32 = 2;
const BIAS = [16383, 1023, 127];
const EMAX_FIELD = [0x7FFF, 0x7FF, 0xFF];
/** The exponent bias adjustment for unmasked overflow/underflow into a register (SDM §8.5.3, 8.5.4). */
const WRAP = 24576;

/** `shiftRight96`'s result: [w0, w1, w2, sticky (non-zero when a set bit fell off)]. */
const shifted = new Uint32Array(4);

/** Shifts the 96-bit w2:w1:w0 right by `s` >= 0 bits into `shifted`, what falls off kept as sticky. */
function shiftRight96(w2: number, w1: number, w0: number, s: number): void {
  let sticky = 0;
  if (s >= 96) {
    sticky = w2 | w1 | w0;
    w2 = w1 = w0 = 0;
  } else {
    while (s >= 32) {
      sticky |= w0;
      w0 = w1;
      w1 = w2;
      w2 = 0;
      s -= 32;
    }
    if (s > 0) {
      sticky |= w0 << (32 - s);
      w0 = ((w0 >>> s) | (w1 << (32 - s))) >>> 0;
      w1 = ((w1 >>> s) | (w2 << (32 - s))) >>> 0;
      w2 = w2 >>> s;
    }
  }
  shifted[0] = w0;
  shifted[1] = w1;
  shifted[2] = w2;
  shifted[3] = sticky === 0 ? 0 : 1;
}

/**
 * Rounds the exact value 1.w2w1w0... * 2^exp (w2 bit 31 set; `sticky` non-zero when bits below w0
 * were lost) to `prec` bits (64, 53, 24) in mode `rc` for `fmt`, with tininess judged before
 * rounding. `cw` supplies the #U/#O masks: unmasked, a register result gets its exponent wrapped by
 * 24576 and a memory result (F64, F32) is flagged only (the caller stores nothing). Writes
 * `extOut` (significand with the integer bit at bit 63, biased exponent of `fmt`, sign) and returns
 * the R_* flags.
 */
export function roundPack(
  sign: number,
  exp: number,
  w2: number,
  w1: number,
  w0: number,
  sticky: number,
  prec: number,
  rc: number,
  cw: number,
  fmt: number,
): number {
  let flags = 0;
  let e = exp + BIAS[fmt];
  let tiny = false;
  // A register result is tiny after rounding (as the host shows): just below 2^-16382, a value
  // that rounds up to it at full precision is not tiny.
  if (e === 0 && fmt === FMT_EXT && (cw & R_UE) !== 0 && roundsToCarry(sign, w2, w1, w0, sticky, prec, rc)) {
    e = 1;
    w2 = 0x80000000;
    w1 = w0 = sticky = 0;
    flags = R_PE | R_C1;
  }
  if (e <= 0) {
    if ((cw & R_UE) === 0) {
      flags |= R_UE;
      if (fmt !== FMT_EXT) return flags; // the store does not happen
      e += WRAP;
    } else {
      tiny = true;
      // Denormalise: shift right by 1 - e, keeping what falls off as sticky.
      shiftRight96(w2, w1, w0, 1 - e);
      e = 0;
      w0 = shifted[0];
      w1 = shifted[1];
      w2 = shifted[2];
      sticky |= shifted[3];
    }
  }
  let hi = w2 >>> 0, lo = w1 >>> 0;
  let lsb: number, round: number, rest: number;
  if (prec === 64) {
    lsb = lo & 1;
    round = w0 >>> 31;
    rest = (w0 & 0x7FFFFFFF) | sticky;
  } else if (prec === 53) {
    lsb = (lo >>> 11) & 1;
    round = (lo >>> 10) & 1;
    rest = (lo & 0x3FF) | w0 | sticky;
    lo = (lo & 0xFFFFF800) >>> 0;
  } else {
    lsb = (hi >>> 8) & 1;
    round = (hi >>> 7) & 1;
    rest = (hi & 0x7F) | lo | w0 | sticky;
    hi = (hi & 0xFFFFFF00) >>> 0;
    lo = 0;
  }
  const inexact = (round | rest) !== 0;
  let inc: boolean;
  switch (rc) {
    case 0:
      inc = round !== 0 && (rest !== 0 || lsb !== 0);
      break;
    case 1:
      inc = inexact && sign !== 0;
      break;
    case 2:
      inc = inexact && sign === 0;
      break;
    default:
      inc = false;
  }
  if (inc) {
    if (prec === 24) hi += 0x100;
    else {
      lo += prec === 64 ? 1 : 0x800;
      if (lo >= 4294967296) {
        lo -= 4294967296;
        hi += 1;
      }
    }
    if (hi >= 4294967296) {
      hi = 0x80000000;
      e++;
    } else if (e === 0 && hi >= 0x80000000) e = 1; // a denormal rounded up into the normal range
    flags |= R_C1;
  }
  if (inexact) {
    flags |= R_PE;
    if (tiny) flags |= R_UE;
  }
  if (e >= EMAX_FIELD[fmt]) {
    if ((cw & R_OE) === 0) {
      flags |= R_OE;
      if (fmt !== FMT_EXT) return flags;
      e -= WRAP;
    } else {
      flags = R_OE | R_PE;
      const toInfinity = rc === 0 || (rc === 2 && sign === 0) || (rc === 1 && sign !== 0);
      if (toInfinity) {
        flags |= R_C1;
        hi = 0x80000000;
        lo = 0;
        e = EMAX_FIELD[fmt];
      } else {
        e = EMAX_FIELD[fmt] - 1;
        hi = prec === 24 ? 0xFFFFFF00 : 0xFFFFFFFF;
        lo = prec === 64 ? 0xFFFFFFFF : prec === 53 ? 0xFFFFF800 : 0;
      }
    }
  }
  extOut[0] = lo;
  extOut[1] = hi;
  extOut[2] = (sign << 15) | e;
  return flags;
}

/** True when rounding the normalised significand w2:w1:w0 to `prec` bits carries out of it (all ones, rounded up). */
function roundsToCarry(
  sign: number,
  w2: number,
  w1: number,
  w0: number,
  sticky: number,
  prec: number,
  rc: number,
): boolean {
  let ones: boolean, round: number, rest: number;
  if (prec === 64) {
    ones = w2 === 0xFFFFFFFF && w1 === 0xFFFFFFFF;
    round = w0 >>> 31;
    rest = (w0 & 0x7FFFFFFF) | sticky;
  } else if (prec === 53) {
    ones = w2 === 0xFFFFFFFF && (w1 >>> 11) === 0x1FFFFF;
    round = (w1 >>> 10) & 1;
    rest = (w1 & 0x3FF) | w0 | sticky;
  } else {
    ones = (w2 >>> 8) === 0xFFFFFF;
    round = (w2 >>> 7) & 1;
    rest = (w2 & 0x7F) | w1 | w0 | sticky;
  }
  if (!ones) return false;
  switch (rc) {
    case 0:
      return round !== 0; // the kept bits are odd (all ones): a tie rounds up too
    case 1:
      return sign !== 0 && (round | rest) !== 0;
    case 2:
      return sign === 0 && (round | rest) !== 0;
    default:
      return false;
  }
}

/** Scratch for the limb arithmetic. */
const limbs = new Float64Array(8);

/**
 * a + b (`subtract`: a - b) for normalised magnitudes; signs give the operation's operand signs.
 * An exact zero result is not rounded: it returns -1 (the caller picks the zero's sign per RC).
 */
export function addExt(
  aSign: number,
  aExp: number,
  aHi: number,
  aLo: number,
  bSign: number,
  bExp: number,
  bHi: number,
  bLo: number,
  prec: number,
  rc: number,
  cw: number,
): number {
  // Order by magnitude: a is the larger.
  if (bExp > aExp || (bExp === aExp && (bHi > aHi || (bHi === aHi && bLo > aLo)))) {
    let t = aSign;
    aSign = bSign;
    bSign = t;
    t = aExp;
    aExp = bExp;
    bExp = t;
    t = aHi;
    aHi = bHi;
    bHi = t;
    t = aLo;
    aLo = bLo;
    bLo = t;
  }
  shiftRight96(bHi, bLo, 0, aExp - bExp);
  let b0 = shifted[0];
  const b1 = shifted[1], b2 = shifted[2], sticky = shifted[3];
  if (sticky !== 0) b0 = (b0 | 1) >>> 0; // jam: the rounding position is 32 bits above
  let w2: number, w1: number, w0: number, e = aExp;
  if (aSign === bSign) {
    w0 = b0;
    w1 = aLo + b1;
    w2 = aHi + b2;
    if (w1 >= 4294967296) {
      w1 -= 4294967296;
      w2 += 1;
    }
    if (w2 >= 4294967296) {
      // Carry out: shift right by one, jamming the lost bit.
      w0 = ((w0 >>> 1) | ((w1 & 1) << 31) | (w0 & 1)) >>> 0;
      w1 = ((w1 >>> 1) | ((w2 & 1) << 31)) >>> 0;
      w2 = (0x80000000 | ((w2 >>> 0) >>> 1)) >>> 0;
      e++;
    }
  } else {
    w0 = -b0;
    let borrow = 0;
    if (w0 < 0) {
      w0 += 4294967296;
      borrow = 1;
    }
    w1 = aLo - b1 - borrow;
    borrow = 0;
    if (w1 < 0) {
      w1 += 4294967296;
      borrow = 1;
    }
    w2 = aHi - b2 - borrow;
    if (w2 === 0 && w1 === 0 && w0 === 0) return -1;
    // Normalise left.
    while (w2 === 0) {
      w2 = w1;
      w1 = w0;
      w0 = 0;
      e -= 32;
    }
    const z = Math.clz32(w2);
    if (z > 0) {
      w2 = ((w2 << z) | (w1 >>> (32 - z))) >>> 0;
      w1 = ((w1 << z) | (w0 >>> (32 - z))) >>> 0;
      w0 = (w0 << z) >>> 0;
      e -= z;
    }
  }
  return roundPack(aSign, e, w2, w1, w0, 0, prec, rc, cw, FMT_EXT);
}

/** a * b for normalised significands (sign already combined). */
export function mulExt(
  sign: number,
  aExp: number,
  aHi: number,
  aLo: number,
  bExp: number,
  bHi: number,
  bLo: number,
  prec: number,
  rc: number,
  cw: number,
): number {
  const a0 = aLo & 0xFFFF, a1 = aLo >>> 16, a2 = aHi & 0xFFFF, a3 = aHi >>> 16;
  const b0 = bLo & 0xFFFF, b1 = bLo >>> 16, b2 = bHi & 0xFFFF, b3 = bHi >>> 16;
  const l = limbs;
  l[0] = a0 * b0;
  l[1] = a0 * b1 + a1 * b0;
  l[2] = a0 * b2 + a1 * b1 + a2 * b0;
  l[3] = a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0;
  l[4] = a1 * b3 + a2 * b2 + a3 * b1;
  l[5] = a2 * b3 + a3 * b2;
  l[6] = a3 * b3;
  l[7] = 0;
  let carry = 0;
  for (let k = 0; k < 8; k++) {
    const t = l[k] + carry;
    carry = Math.floor(t / 65536);
    l[k] = t - carry * 65536;
  }
  let p0 = l[0] + l[1] * 65536, p1 = l[2] + l[3] * 65536;
  let p2 = l[4] + l[5] * 65536, p3 = l[6] + l[7] * 65536;
  let e = aExp + bExp + 1;
  if (p3 < 0x80000000) {
    p3 = ((p3 << 1) | (p2 >>> 31)) >>> 0;
    p2 = ((p2 << 1) | (p1 >>> 31)) >>> 0;
    p1 = ((p1 << 1) | (p0 >>> 31)) >>> 0;
    p0 = (p0 << 1) >>> 0;
    e--;
  }
  return roundPack(sign, e, p3, p2, p1, p0, prec, rc, cw, FMT_EXT);
}

const M32 = 0xFFFFFFFFn;

function big64(hi: number, lo: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Rounds a positive BigInt q (exactly 96 significant bits, value q * 2^(exp - 95)) with sticky. */
function roundBig96(
  sign: number,
  exp: number,
  q: bigint,
  sticky: number,
  prec: number,
  rc: number,
  cw: number,
): number {
  return roundPack(
    sign,
    exp,
    Number(q >> 64n),
    Number((q >> 32n) & M32),
    Number(q & M32),
    sticky,
    prec,
    rc,
    cw,
    FMT_EXT,
  );
}

/** a / b for normalised significands. */
export function divExt(
  sign: number,
  aExp: number,
  aHi: number,
  aLo: number,
  bExp: number,
  bHi: number,
  bLo: number,
  prec: number,
  rc: number,
  cw: number,
): number {
  const a = big64(aHi, aLo), b = big64(bHi, bLo);
  let e = aExp - bExp;
  let n: bigint;
  if (a >= b) n = a << 95n;
  else {
    n = a << 96n;
    e--;
  }
  const q = n / b;
  return roundBig96(sign, e, q, n - q * b === 0n ? 0 : 1, prec, rc, cw);
}

/** The integer square root of n (floor). */
export function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  for (let k = 0; k < 4; k++) {
    const y = (x + n / x) >> 1n;
    if (y === x) break;
    x = y;
  }
  while (x * x > n) x--;
  while ((x + 1n) * (x + 1n) <= n) x++;
  return x;
}

/** sqrt(a) for a positive normalised significand. */
export function sqrtExt(
  aExp: number,
  aHi: number,
  aLo: number,
  prec: number,
  rc: number,
  cw: number,
): number {
  const a = big64(aHi, aLo);
  const odd = (aExp & 1) !== 0;
  const n = odd ? a << 128n : a << 127n;
  const s = isqrt(n);
  return roundBig96(0, odd ? (aExp - 1) / 2 : aExp / 2, s, s * s === n ? 0 : 1, prec, rc, cw);
}

/**
 * Rounds |x| = sig * 2^(exp - 63) (sig 64-bit, normalised) to an integer per `rc` into a BigInt
 * magnitude; `intFlags` receives R_PE and R_C1 (rounded away from zero).
 */
export function roundToInteger(sign: number, exp: number, hi: number, lo: number, rc: number): bigint {
  const m = big64(hi, lo);
  if (exp >= 63) {
    intFlags = 0;
    return m << BigInt(exp - 63);
  }
  const drop = 63 - exp; // >= 1
  let q: bigint, r: bigint, half: bigint;
  if (drop > 65) {
    q = 0n;
    r = m;
    half = -1n; // below a half, non-zero
  } else {
    const d = BigInt(drop);
    q = m >> d;
    r = m - (q << d);
    half = 1n << (d - 1n);
  }
  let inc: boolean;
  if (r === 0n) {
    intFlags = 0;
    return q;
  }
  switch (rc) {
    case 0:
      inc = half > 0n && (r > half || (r === half && (q & 1n) === 1n));
      break;
    case 1:
      inc = sign !== 0;
      break;
    case 2:
      inc = sign === 0;
      break;
    default:
      inc = false;
  }
  intFlags = R_PE | (inc ? R_C1 : 0);
  return inc ? q + 1n : q;
}

/** `roundToInteger` for |x| < 2^31 (exp < 31), in plain numbers: the rounded magnitude. */
export function roundToSmallInteger(sign: number, exp: number, hi: number, lo: number, rc: number): number {
  let q: number, round: number, rest: number;
  if (exp < 0) {
    q = 0;
    round = exp === -1 ? 1 : 0;
    rest = exp === -1 ? (hi & 0x7FFFFFFF) | lo : 1;
  } else {
    const d = 31 - exp; // 1..31 low bits of the high word, and the low word, are the fraction
    q = hi >>> d;
    round = (hi >>> (d - 1)) & 1;
    rest = (hi & ((1 << (d - 1)) - 1)) | lo;
  }
  if ((round | rest) === 0) {
    intFlags = 0;
    return q;
  }
  let inc: boolean;
  switch (rc) {
    case 0:
      inc = round !== 0 && (rest !== 0 || (q & 1) !== 0);
      break;
    case 1:
      inc = sign !== 0;
      break;
    case 2:
      inc = sign === 0;
      break;
    default:
      inc = false;
  }
  intFlags = R_PE | (inc ? R_C1 : 0);
  return inc ? q + 1 : q;
}

/** Flags of the last `roundToInteger`. */
export let intFlags = 0;

/** Packs a positive BigInt magnitude below 2^64 exactly as a register value into `extOut`. */
export function packInteger(sign: number, m: bigint): void {
  const bits = m.toString(2).length;
  const sig = m << BigInt(64 - bits);
  extOut[0] = Number(sig & M32);
  extOut[1] = Number(sig >> 32n);
  extOut[2] = (sign << 15) | (bits - 1 + 16383);
}
