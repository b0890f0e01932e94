/**
 * The x87's 80-bit packed BCD integer (SDM Vol 1 §4.7, FBLD/FBSTP): 18 decimal digits, two per byte,
 * least significant byte first, and a sign in bit 7 of byte 9. Values travel as BigInt magnitudes
 * (18 digits exceed 2^53); FBLD and FBSTP are rare enough for that.
 */

/** Output of `toPackedBcd`: [bytes 0-3, bytes 4-7, bytes 8-9] as uint32 words. */
export const packedBcdOut = new Uint32Array(3);

function digitAt(lo: number, mid: number, hi: number, i: number): number {
  if (i < 8) return (lo >>> (4 * i)) & 15;
  if (i < 16) return (mid >>> (4 * (i - 8))) & 15;
  return (hi >>> (4 * (i - 16))) & 15;
}

/**
 * The magnitude of a packed BCD integer (bytes 0-3, 4-7, 8-9; the sign is bit 15 of `hi`).
 * Nibbles above 9 are taken at face value, as the result is undefined.
 */
export function fromPackedBcd(lo: number, mid: number, hi: number): bigint {
  let low = 0, high = 0;
  for (let i = 8; i >= 0; i--) low = low * 10 + digitAt(lo, mid, hi, i);
  for (let i = 17; i >= 9; i--) high = high * 10 + digitAt(lo, mid, hi, i);
  return BigInt(high) * 1000000000n + BigInt(low);
}

/** Encodes magnitude m < 10^18 as packed BCD into `packedBcdOut` (sign from `negative`); returns it. */
export function toPackedBcd(m: bigint, negative: boolean): Uint32Array {
  let high = Number(m / 1000000000n);
  let low = Number(m % 1000000000n);
  let w0 = 0, w1 = 0, w2 = negative ? 0x8000 : 0;
  for (let i = 0; i < 18; i++) {
    let digit: number;
    if (i < 9) {
      digit = low % 10;
      low = (low - digit) / 10;
    } else {
      digit = high % 10;
      high = (high - digit) / 10;
    }
    if (i < 8) w0 |= digit << (4 * i);
    else if (i < 16) w1 |= digit << (4 * (i - 8));
    else w2 |= digit << (4 * (i - 16));
  }
  packedBcdOut[0] = w0 >>> 0;
  packedBcdOut[1] = w1 >>> 0;
  packedBcdOut[2] = w2;
  return packedBcdOut;
}
