/**
 * The rounding-direction helpers against exact BigInt arithmetic (exact_reference.ts): the sign of
 * (exact - rounded) must be right for every operand pair, subnormal results included, since RC,
 * #P, #U and C1 all follow from it.
 */

import { assert, assertEquals } from "../../assert.ts";
import {
  addError,
  divErrorSign,
  mulErrorSign,
  roundTo24Bits,
  roundToIntegral,
  sqrtErrorSign,
} from "../../../lib/x86/fpu/exact_rounding.ts";
import { add, compare, type Exact, exactOf, mul, roundToDouble } from "./exact_reference.ts";

let seed = 12345;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
/** A random finite non-zero double with exponent in [lo, hi]. */
function randomDouble(lo: number, hi: number): number {
  const v = (1 + rand()) * 2 ** (lo + Math.floor(rand() * (hi - lo + 1)));
  return rand() < 0.5 ? -v : v;
}
/** Operand pairs whose products and quotients land in every range, subnormal and huge ones included. */
function pairs(n: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    const a = randomDouble(-600, 600);
    out.push([a, randomDouble(-600, 600)]);
    const b = randomDouble(-1100 - Math.floor(Math.log2(Math.abs(a))) + 40, -900);
    if (b !== 0) out.push([a, b]); // (2^e underflows to 0 below -1074)
    out.push([randomDouble(-1074, -1000), randomDouble(-30, 30)]);
    out.push([(Math.floor(rand() * 2 ** 26) + 1) * 2 ** -1074, Math.floor(rand() * 2 ** 26) + 1]);
  }
  return out;
}

Deno.test("addError gives the exact rounding error of a + b", () => {
  for (const [a, b] of pairs(500)) {
    const s = a + b;
    if (!Number.isFinite(s)) continue;
    const exact = add(exactOf(a), exactOf(b));
    assertEquals(compare(add(exactOf(s), exactOf(addError(a, b, s))), exact), 0, `${a} + ${b}`);
  }
});

Deno.test("mulErrorSign is the sign of exact(a * b) - a * b, subnormal results included", () => {
  let subnormal = 0;
  for (const [a, b] of pairs(2000)) {
    const p = a * b;
    if (!Number.isFinite(p)) continue;
    const exact = mul(exactOf(a), exactOf(b));
    assertEquals(roundToDouble(exact), p, "reference rounding agrees with JS");
    assertEquals(mulErrorSign(a, b, p), compare(exact, exactOf(p)), `${a} * ${b}`);
    if (Math.abs(p) < 2.2250738585072014e-308) subnormal++;
  }
  assert(subnormal > 1000, `only ${subnormal} subnormal products`);
});

Deno.test("divErrorSign is the sign of exact(a / b) - a / b, subnormal results included", () => {
  for (const [a, b0] of pairs(2000)) {
    const b = 1 / b0; // quotients in the same ranges as the products above
    if (!Number.isFinite(b) || b === 0) continue;
    const q = a / b;
    if (!Number.isFinite(q)) continue;
    // sign(a/b - q) = sign(a - q*b) * sign(b)
    const residual = compare(exactOf(a), mul(exactOf(q), exactOf(b)));
    assertEquals(divErrorSign(a, b, q), residual * Math.sign(b), `${a} / ${b}`);
  }
});

Deno.test("sqrtErrorSign is the sign of exact(sqrt(a)) - sqrt(a)", () => {
  for (let k = 0; k < 5000; k++) {
    const a = Math.abs(randomDouble(-1074, 1023));
    const s = Math.sqrt(a);
    const sq: Exact = mul(exactOf(s), exactOf(s));
    // sign(sqrt(a) - s) = sign(a - s^2)
    assertEquals(sqrtErrorSign(a, s), compare(exactOf(a), sq), `sqrt(${a})`);
  }
  assertEquals(sqrtErrorSign(4, 2), 0);
});

Deno.test("roundToIntegral rounds in each x87 rounding-control mode", () => {
  const table: [number, number[]][] = [
    [0.5, [0, 0, 1, 0]],
    [1.5, [2, 1, 2, 1]],
    [-1.5, [-2, -2, -1, -1]],
    [-0.5, [-0, -1, -0, -0]],
    [2.4999999999999996, [2, 2, 3, 2]],
    [4503599627370497, [4503599627370497, 4503599627370497, 4503599627370497, 4503599627370497]],
    [Infinity, [Infinity, Infinity, Infinity, Infinity]],
  ];
  for (const [x, byRc] of table) {
    for (let rc = 0; rc < 4; rc++) assert(Object.is(roundToIntegral(x, rc), byRc[rc]), `${x} rc=${rc}`);
  }
});

Deno.test("roundTo24Bits matches Math.fround to nearest and brackets x in the directed modes", () => {
  for (let k = 0; k < 5000; k++) {
    const x = randomDouble(-120, 120);
    assertEquals(roundTo24Bits(x, 0), Math.fround(x));
    const down = roundTo24Bits(x, 1), up = roundTo24Bits(x, 2), chop = roundTo24Bits(x, 3);
    assert(down <= x && up >= x && Math.fround(down) === down && Math.fround(up) === up, `${x}`);
    assert(up === down || Math.fround(down + (up - down) / 2) !== down + (up - down) / 2 || up - down > 0);
    assertEquals(chop, x < 0 ? up : down);
  }
});
