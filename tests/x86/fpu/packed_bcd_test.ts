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

Deno.test("toPackedBcd writes 18 digits and the sign of an integral double", () => {
  const values = [
    0,
    1,
    9,
    10,
    999999999,
    1000000000,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 59 + 2 ** 10,
    999999999999999900,
  ];
  let seed = 7;
  for (let k = 0; k < 2000; k++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    values.push(Math.floor((seed / 2 ** 32) * 10 ** (1 + (k % 18))));
  }
  for (const v of values) {
    if (v >= 1e18) continue;
    for (const negative of [false, true]) {
      toPackedBcd(v, negative);
      const [lo, mid, hi] = packedBcdOut;
      assertEquals(digits(lo, mid, hi), BigInt(v).toString().padStart(18, "0"), `${v}`);
      assertEquals(hi >>> 15, negative ? 1 : 0);
      assertEquals(fromPackedBcd(lo, mid, hi), negative ? -v : v);
    }
  }
});

Deno.test("fromPackedBcd rounds 18-digit values to the nearest double", () => {
  // 123456789012345678 is not a double; its neighbours are ...670 (below) and ...680 (nearest).
  const lo = 0x12345678, mid = 0x34567890, hi = 0x0012;
  assertEquals(fromPackedBcd(lo, mid, hi), Number(123456789012345678n));
  assertEquals(fromPackedBcd(0x99999999, 0x99999999, 0x8099), -Number(999999999999999999n));
});
