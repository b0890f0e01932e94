/**
 * The x87's 80-bit packed BCD integer (SDM Vol 1 §4.7, FBLD/FBSTP): 18 decimal digits, two per byte,
 * least significant byte first, and a sign in bit 7 of byte 9. Digits are combined in two base-10^9
 * limbs so every step is exact in binary64 and nothing allocates.
 */

/** Output of `toPackedBcd`: [bytes 0-3, bytes 4-7, bytes 8-9] as uint32 words. */
export const packedBcdOut = new Uint32Array(3);

function digitAt(lo: number, mid: number, hi: number, i: number): number {
  if (i < 8) return (lo >>> (4 * i)) & 15;
  if (i < 16) return (mid >>> (4 * (i - 8))) & 15;
  return (hi >>> (4 * (i - 16))) & 15;
}

/**
 * The value of a packed BCD integer (bytes 0-3, 4-7, 8-9), rounded to the nearest binary64 (18
 * digits can exceed 2^53). Nibbles above 9 are taken at face value, as the result is undefined.
 */
export function fromPackedBcd(lo: number, mid: number, hi: number): number {
  let low = 0, high = 0;
  for (let i = 8; i >= 0; i--) low = low * 10 + digitAt(lo, mid, hi, i);
  for (let i = 17; i >= 9; i--) high = high * 10 + digitAt(lo, mid, hi, i);
  // high * 1e9 + low with one rounding: split high so both partial products are exact.
  const h1 = Math.floor(high / 32768), h0 = high - h1 * 32768;
  const v = h1 * 1e9 * 32768 + (h0 * 1e9 + low);
  return hi & 0x8000 ? -v : v;
}

/** Encodes integral `x` with |x| < 10^18 as packed BCD into `packedBcdOut` (sign from `negative`). */
export function toPackedBcd(x: number, negative: boolean): void {
  let m = Math.abs(x), k = 0;
  while (m >= 9007199254740992) { // >= 2^53: an even integer; halve exactly, double back below
    m /= 2;
    k++;
  }
  let high = Math.floor(m / 1e9);
  let low = m - high * 1e9;
  if (low < 0) {
    high--;
    low += 1e9;
  } else if (low >= 1e9) {
    high++;
    low -= 1e9;
  }
  for (; k > 0; k--) {
    low *= 2;
    high *= 2;
    if (low >= 1e9) {
      low -= 1e9;
      high++;
    }
  }
  let w0 = 0, w1 = 0, w2 = negative ? 0x8000 : 0;
  for (let i = 0; i < 18; i++) {
    const limb = i < 9 ? low : high;
    const digit = limb % 10;
    if (i < 9) low = (low - digit) / 10;
    else high = (high - digit) / 10;
    if (i < 8) w0 |= digit << (4 * i);
    else if (i < 16) w1 |= digit << (4 * (i - 8));
    else w2 |= digit << (4 * (i - 16));
  }
  packedBcdOut[0] = w0;
  packedBcdOut[1] = w1;
  packedBcdOut[2] = w2;
}
