/** Packed BCD conversions against BigInt decimal strings. */

import { assertEquals } from "../../assert.ts";
import { fromPackedBcd, packedBcdOut, toPackedBcd } from "../../../lib/x86/fpu/packed_bcd.ts";

function digits(lo: number, mid: number, hi: number): string {
  const nib = (w: number, n: number) => ((w >>> (4 * n)) & 15).toString();
  let s = "";
  for (let i = 3; i >= 0; i--) s += nib(hi, i);
  for (let i = 7; i >= 0; i--) s += nib(mid, i);
  for (let i = 7; i >= 0; i--) s += nib(lo, i);
  return s.slice(2); // 18 digits below the sign byte
}

Deno.test("toPackedBcd writes 18 digits and the sign; fromPackedBcd reads them back", () => {
  const values = [0n, 1n, 9n, 10n, 999999999n, 1000000000n, 2n ** 53n + 1n, 2n ** 59n + 2n ** 10n + 3n];
  values.push(999999999999999999n, 123456789012345678n);
  let seed = 7;
  for (let k = 0; k < 2000; k++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const a = BigInt(Math.floor((seed / 2 ** 32) * 1e9));
    seed = (seed * 1103515245 + 12345) >>> 0;
    const b = BigInt(Math.floor((seed / 2 ** 32) * 1e9));
    values.push((a * 1000000000n + b) % 10n ** BigInt(1 + (k % 18)));
  }
  for (const v of values) {
    for (const negative of [false, true]) {
      toPackedBcd(v, negative);
      const [lo, mid, hi] = packedBcdOut;
      assertEquals(digits(lo, mid, hi), v.toString().padStart(18, "0"), `${v}`);
      assertEquals(hi >>> 15, negative ? 1 : 0);
      assertEquals(fromPackedBcd(lo, mid, hi), v);
    }
  }
});
