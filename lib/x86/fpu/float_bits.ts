/**
 * Bit-level views of the formats the x87 moves between memory and its registers: binary32, binary64
 * and 80-bit double extended (SDM Vol 1 §4.2.2, §4.8.3): the FPU widens m64fp operands with
 * `toFloat80` and shows registers as numbers (`Fpu.st`) with `fromFloat80`. One shared scratch
 * buffer does all reinterpretation; nothing allocates. NaN payloads travel only as integer words:
 * V8 canonicalises NaNs stored in object fields and plain arrays, and Maglev-compiled code quiets
 * signaling NaNs stored into a Float64Array, so a NaN held as a JS number has lost its identity.
 */

const scratch = new ArrayBuffer(8);
const f64 = new Float64Array(scratch);
/** [low word, high word] of `f64[0]` (little-endian host, checked below). */
const u32 = new Uint32Array(scratch);
const f32 = new Float32Array(scratch);

u32[0] = 1;
if (new Uint8Array(scratch)[0] !== 1) {
  throw new Error("assertion failed: the x87 FPU needs a little-endian host");
}

/** The smallest positive normal binary64 value, 2^-1022. */
export const MIN_NORMAL = 2.2250738585072014e-308;

/** Output of the conversions that can produce NaNs: [low word, high word] of a binary64. */
export const doubleBitsOut = new Uint32Array(2);

/** High 32 bits (sign, exponent, top 20 fraction bits) of `x`, as uint32. Not for NaNs (see above). */
export function doubleHi(x: number): number {
  f64[0] = x;
  return u32[1];
}

/** Low 32 fraction bits of `x`, as uint32. Not for NaNs. */
export function doubleLo(x: number): number {
  f64[0] = x;
  return u32[0];
}

/** The binary64 value with the given high and low words; a NaN's payload may not survive later stores. */
export function doubleFromBits(hi: number, lo: number): number {
  u32[0] = lo;
  u32[1] = hi;
  return f64[0];
}

/** High word of the x87 "real indefinite", the default QNaN: sign 1, fraction 1000...0 (low word 0). */
export const INDEFINITE_HI = 0xFFF80000;

/** True when binary64 words encode a signaling NaN (quiet bit, fraction bit 51, clear). */
export function isSignalingBits(hi: number, lo: number): boolean {
  return (hi & 0x7FF80000) === 0x7FF00000 && ((hi & 0x0007FFFF) | lo) !== 0;
}

/** True when NaN `a` (binary64 words) wins over NaN `b` by the x87 rule: larger significand, then positive. */
export function largerNaNIsFirst(aHi: number, aLo: number, bHi: number, bLo: number): boolean {
  const am = aHi & 0x0007FFFF, bm = bHi & 0x0007FFFF;
  if (am !== bm) return am > bm;
  if ((aLo >>> 0) !== (bLo >>> 0)) return (aLo >>> 0) > (bLo >>> 0);
  return (aHi & 0x80000000) === 0 || (bHi & 0x80000000) !== 0;
}

/** True when the sign bit of `x` is set (also for -0 and negative NaNs). */
export function signBit(x: number): boolean {
  f64[0] = x;
  return (u32[1] & 0x80000000) !== 0;
}

/** 2^n as a binary64, for -1074 <= n <= 1023. */
export function pow2(n: number): number {
  if (n >= -1022) return doubleFromBits((n + 1023) << 20, 0);
  return n >= -1042 ? doubleFromBits(0x00080000 >>> (-1023 - n), 0) : doubleFromBits(0, 1 << (n + 1074));
}

/**
 * The exponent of `x` (finite, non-zero) as if normalised, so subnormals report their true
 * exponent (-1074 for the smallest): this is the exponent the value has in an 80-bit register.
 */
export function exponentOf(x: number): number {
  f64[0] = x;
  const e = (u32[1] >>> 20) & 0x7FF;
  if (e !== 0) return e - 1023;
  f64[0] = x * 18446744073709551616; // 2^64 makes a subnormal normal, exactly
  return ((u32[1] >>> 20) & 0x7FF) - 1023 - 64;
}

/** x * 2^n, exact whenever the result is a normal number (scales in steps that cannot round). */
export function scaled(x: number, n: number): number {
  while (n > 1023) {
    x *= 8.98846567431158e307; // 2^1023
    n -= 1023;
  }
  while (n < -1022) {
    x *= MIN_NORMAL;
    n += 1022;
  }
  return x * pow2(n);
}

/** The next binary64 above `x` (toward +inf); +inf stays. */
export function nextUp(x: number): number {
  if (x === 0) return 5e-324;
  f64[0] = x;
  if (x === Infinity) return x;
  bumpMagnitude(x > 0);
  return f64[0];
}

/** The next binary64 below `x` (toward -inf); -inf stays. */
export function nextDown(x: number): number {
  if (x === 0) return -5e-324;
  f64[0] = x;
  if (x === -Infinity) return x;
  bumpMagnitude(x < 0);
  return f64[0];
}

function bumpMagnitude(up: boolean): void {
  if (up) {
    u32[0] = (u32[0] + 1) >>> 0;
    if (u32[0] === 0) u32[1]++;
  } else {
    if (u32[0] === 0) u32[1]--;
    u32[0] = (u32[0] - 1) >>> 0;
  }
}

// ---- binary32 -------------------------------------------------------------------------------

/** The binary64 value of binary32 `bits`, exactly. Not for NaNs: use `float32NaNToDoubleBits`. */
export function float32ToDouble(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

/** True when binary32 `bits` encode a NaN. */
export function isFloat32NaN(bits: number): boolean {
  return (bits & 0x7F800000) === 0x7F800000 && (bits & 0x007FFFFF) !== 0;
}

/** Widens a binary32 NaN into `doubleBitsOut`, keeping sign, payload and quietness. */
export function float32NaNToDoubleBits(bits: number): void {
  doubleBitsOut[1] = (bits & 0x80000000) | 0x7FF00000 | ((bits & 0x007FFFFF) >>> 3);
  doubleBitsOut[0] = bits << 29;
}

/** True when binary32 `bits` encode a denormal (the x87 reports #D when loading one). */
export function isFloat32Denormal(bits: number): boolean {
  return (bits & 0x7F800000) === 0 && (bits & 0x007FFFFF) !== 0;
}

/** The binary32 encoding of `x`, which must already be a binary32 value (not a NaN). */
export function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** The binary32 encoding of a binary64 NaN given by its words (payload truncated, quietness kept). */
export function float32NaNBits(hi: number, lo: number): number {
  return ((hi & 0x80000000) | 0x7F800000 | ((hi & 0x000FFFFF) << 3) | (lo >>> 29)) >>> 0;
}

/** The binary32 neighbour of binary32 value `x` one step away from zero (`away`) or toward it. */
export function float32Step(x: number, away: boolean): number {
  if (x === 0) return away ? 1.401298464324817e-45 : x;
  f32[0] = x;
  u32[0] = away ? u32[0] + 1 : u32[0] - 1;
  return f32[0];
}

/** True when binary64 `lo`/`hi` words encode a denormal (the x87 reports #D when loading one). */
export function isDoubleDenormalBits(hi: number, lo: number): boolean {
  return (hi & 0x7FF00000) === 0 && ((hi & 0x000FFFFF) | lo) !== 0;
}

// ---- 80-bit double extended ------------------------------------------------------------------

/**
 * Output of `toFloat80`: [significand low 32, significand high 32 (bit 31 = integer bit),
 * sign << 15 | biased exponent].
 */
export const float80Out = new Uint32Array(3);

/** Encodes the binary64 with words `hi`/`lo` as double extended into `float80Out`; exact (subnormals normalise). */
export function toFloat80(hi: number, lo: number): void {
  hi >>>= 0;
  lo >>>= 0;
  const sign = (hi >>> 16) & 0x8000;
  const e = (hi >>> 20) & 0x7FF;
  const frac = hi & 0x000FFFFF;
  if (e === 0x7FF) {
    // Infinity or NaN: explicit integer bit set, fraction shifted into place.
    float80Out[1] = (0x80000000 | (frac << 11) | (lo >>> 21)) >>> 0;
    float80Out[0] = (lo << 11) >>> 0;
    float80Out[2] = sign | 0x7FFF;
    return;
  }
  if (e === 0 && (frac | lo) === 0) {
    float80Out[0] = 0;
    float80Out[1] = 0;
    float80Out[2] = sign;
    return;
  }
  let exp: number, mhi: number, mlo: number;
  if (e !== 0) {
    exp = e - 1023;
    mhi = (0x80000000 | (frac << 11) | (lo >>> 21)) >>> 0;
    mlo = (lo << 11) >>> 0;
  } else {
    // Subnormal: shift the fraction up until the integer bit is set.
    exp = -1022;
    mhi = ((frac << 11) | (lo >>> 21)) >>> 0;
    mlo = (lo << 11) >>> 0;
    while ((mhi & 0x80000000) === 0) {
      mhi = ((mhi << 1) | (mlo >>> 31)) >>> 0;
      mlo = (mlo << 1) >>> 0;
      exp--;
    }
  }
  float80Out[0] = mlo;
  float80Out[1] = mhi;
  float80Out[2] = sign | (exp + 16383);
}

/**
 * Converts a double-extended value to the nearest binary64 (ties to even), as words in
 * `doubleBitsOut`. Values beyond the binary64 range become infinities or zeros; NaN payloads keep
 * their top 52 bits. Unsupported encodings (pseudo-NaN, pseudo-infinity, unnormal: integer bit
 * clear, exponent non-zero), which the x87 loads silently but rejects as operands, become the real
 * indefinite.
 */
export function fromFloat80(mlo: number, mhi: number, se: number): void {
  mlo >>>= 0;
  mhi >>>= 0;
  const sign = se & 0x8000 ? 0x80000000 : 0;
  const e = se & 0x7FFF;
  if (e !== 0 && (mhi & 0x80000000) === 0) {
    doubleBitsOut[1] = INDEFINITE_HI;
    doubleBitsOut[0] = 0;
    return;
  }
  if (e === 0x7FFF) {
    const fhi = mhi & 0x7FFFFFFF;
    let hi = sign | 0x7FF00000 | (fhi >>> 11);
    const lo = ((fhi << 21) | (mlo >>> 11)) >>> 0;
    if ((fhi | mlo) !== 0 && ((hi & 0x000FFFFF) | lo) === 0) hi |= 1 << 18; // payload lost: keep a NaN
    doubleBitsOut[1] = hi;
    doubleBitsOut[0] = lo;
    return;
  }
  f64[0] = float80Value(mlo, mhi, e, sign !== 0);
  doubleBitsOut[0] = u32[0];
  doubleBitsOut[1] = u32[1];
}

/** The binary64 nearest to a finite double-extended value (exponent field `e` below 0x7FFF). */
function float80Value(mlo: number, mhi: number, e: number, negative: boolean): number {
  const sign = negative;
  if ((mhi | mlo) === 0) return sign ? -0 : 0;
  // Normalise (pseudo-denormals and denormals have a clear integer bit).
  let exp = e === 0 ? -16382 : e - 16383;
  while ((mhi & 0x80000000) === 0) {
    mhi = ((mhi << 1) | (mlo >>> 31)) >>> 0;
    mlo = (mlo << 1) >>> 0;
    exp--;
  }
  if (exp > 1023) return sign ? -Infinity : Infinity;
  if (exp < -1076) return sign ? -0 : 0;
  // Keep `bits` significant bits (53, fewer for a binary64 subnormal), rounding ties to even.
  const bits = exp >= -1022 ? 53 : 53 - (-1022 - exp);
  const drop = 64 - bits; // 11..66
  let keepHi: number, keepLo: number, roundUp: boolean;
  if (drop < 32) {
    const half = 1 << (drop - 1);
    const low = (mlo & ((1 << drop) - 1)) >>> 0;
    keepLo = ((mlo >>> drop) | (mhi << (32 - drop))) >>> 0;
    keepHi = mhi >>> drop;
    roundUp = low > half || (low === half && (keepLo & 1) === 1);
  } else if (drop === 32) {
    keepLo = mhi;
    keepHi = 0;
    roundUp = mlo > 0x80000000 || (mlo === 0x80000000 && (keepLo & 1) === 1);
  } else if (drop < 64) {
    const d = drop - 32;
    const half = 1 << (d - 1);
    const low = (mhi & ((1 << d) - 1)) >>> 0;
    keepLo = mhi >>> d;
    keepHi = 0;
    roundUp = low > half || (low === half && (mlo !== 0 || (keepLo & 1) === 1));
  } else {
    // At most one kept bit of a value just under 2^-1074: it rounds to 0 or to the smallest subnormal.
    keepLo = 0;
    keepHi = 0;
    roundUp = drop === 64 && (mhi > 0x80000000 || (mhi === 0x80000000 && mlo !== 0));
  }
  // value = keep * 2^(exp - bits + 1); keep < 2^53 fits a double exactly.
  let m = keepHi * 4294967296 + keepLo;
  if (roundUp) m += 1;
  const v = scaled(m, exp - bits + 1);
  return sign ? -v : v;
}
