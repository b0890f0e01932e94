/** Format conversions against hand-made encodings and exact BigInt rounding (exact_reference.ts). */

import { assert, assertEquals } from "../../assert.ts";
import {
  doubleBitsOut,
  doubleFromBits,
  exponentOf,
  float32NaNBits,
  float32NaNToDoubleBits,
  float80Out,
  fromFloat80,
  isSignalingBits,
  nextDown,
  nextUp,
  scaled,
  toFloat80,
} from "../../../lib/x86/fpu/float_bits.ts";
import { roundToDouble } from "./exact_reference.ts";

const view = new DataView(new ArrayBuffer(8));
function words(x: number): [number, number] {
  view.setFloat64(0, x, true);
  return [view.getUint32(4, true), view.getUint32(0, true)];
}

Deno.test("toFloat80 encodes binary64 exactly, subnormals normalised", () => {
  const table: [number, number[]][] = [
    [1, [0, 0x80000000, 0x3FFF]],
    [-2.5, [0, 0xA0000000, 0xC000]],
    [5e-324, [0, 0x80000000, 0x3BCD]],
    [Infinity, [0, 0x80000000, 0x7FFF]],
    [-0, [0, 0, 0x8000]],
    [Number.MAX_VALUE, [0xFFFFF800, 0xFFFFFFFF, 0x43FE]],
  ];
  for (const [x, expected] of table) {
    toFloat80(...words(x));
    assertEquals(Array.from(float80Out), expected, `${x}`);
  }
  toFloat80(0x7FF80000, 1); // a QNaN with payload 1
  assertEquals(Array.from(float80Out), [0x800, 0xC0000000, 0x7FFF]);
});

Deno.test("fromFloat80 rounds to the nearest binary64, ties to even, subnormals and overflow included", () => {
  let seed = 99;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  for (let k = 0; k < 20000; k++) {
    const biased = 16383 + [-1100, -1080, -1074, -1050, -1022, 0, 1000, 1023, 1024][k % 9] + (rand() % 8) - 4;
    const hi = (rand() | 0x80000000) >>> 0;
    let lo = rand();
    if (k % 5 === 0) lo = ((lo & ~0x7FF) | 0x400) >>> 0; // a tie at 53 bits
    const negative = (k & 1) === 1;
    fromFloat80(lo, hi, biased | (negative ? 0x8000 : 0));
    const got = doubleFromBits(doubleBitsOut[1], doubleBitsOut[0]);
    const m = (BigInt(hi) << 32n) | BigInt(lo);
    const expected = roundToDouble({ m: negative ? -m : m, e: biased - 16383 - 63 });
    assert(
      Object.is(got, expected),
      `${hi.toString(16)}:${lo.toString(16)} e=${biased}: ${got} vs ${expected}`,
    );
  }
});

Deno.test("fromFloat80 keeps NaN payloads and loads unsupported encodings as the indefinite", () => {
  fromFloat80(0x800, 0xC0000000, 0x7FFF);
  assertEquals([doubleBitsOut[1], doubleBitsOut[0]], [0x7FF80000, 1]);
  fromFloat80(1, 0x80000000, 0xFFFF); // SNaN whose payload binary64 cannot hold: still a NaN
  assert(isSignalingBits(doubleBitsOut[1], doubleBitsOut[0]));
  assertEquals(doubleBitsOut[1] >>> 0, 0xFFF40000);
  fromFloat80(0, 0x40000000, 0x3FFF); // unnormal
  assertEquals([doubleBitsOut[1], doubleBitsOut[0]], [0xFFF80000, 0]);
  fromFloat80(0, 0x80000000, 0x0000); // pseudo-denormal: far below binary64
  assertEquals([doubleBitsOut[1], doubleBitsOut[0]], [0, 0]);
});

Deno.test("float32NaNToDoubleBits and float32NaNBits keep sign, payload and quietness", () => {
  float32NaNToDoubleBits(0xFFA00001); // negative SNaN
  assert(isSignalingBits(doubleBitsOut[1], doubleBitsOut[0]));
  assertEquals(float32NaNBits(doubleBitsOut[1], doubleBitsOut[0]), 0xFFA00001);
  float32NaNToDoubleBits(0x7FC00000);
  assert(!isSignalingBits(doubleBitsOut[1], doubleBitsOut[0]));
});

Deno.test("nextUp, nextDown, exponentOf and scaled step through binary64 exactly", () => {
  assertEquals(nextUp(1), 1 + 2 ** -52);
  assertEquals(nextDown(1), 1 - 2 ** -53);
  assertEquals(nextUp(-0), 5e-324);
  assertEquals(nextDown(0), -5e-324);
  assertEquals(nextUp(Number.MAX_VALUE), Infinity);
  assertEquals(nextDown(-Number.MAX_VALUE), -Infinity);
  assertEquals(nextUp(-5e-324), -0);
  assertEquals(exponentOf(5e-324), -1074);
  assertEquals(exponentOf(-3), 1);
  assertEquals(scaled(1.5, -1074), 1e-323); // a tie, rounded once, to even
  assertEquals(scaled(1.5 * 2 ** 1000, -2000), 1.5 * 2 ** -1000);
  assertEquals(scaled(5e-324, 2000), 2 ** 926);
});
