/**
 * Exact arithmetic for checking the FPU's rounding helpers: binary64 values as BigInt significand
 * times a power of two, and correct rounding back to binary64 (ties to even, subnormals, overflow).
 */

/** An exact binary value: m * 2^e. */
export interface Exact {
  m: bigint;
  e: number;
}

const view = new DataView(new ArrayBuffer(8));

/** The exact value of finite binary64 `x`. */
export function exactOf(x: number): Exact {
  view.setFloat64(0, x, true);
  const bits = view.getBigUint64(0, true);
  const biased = Number((bits >> 52n) & 0x7FFn);
  let m = bits & 0xFFFFFFFFFFFFFn;
  if (biased !== 0) m |= 1n << 52n;
  if (bits >> 63n) m = -m;
  return { m, e: (biased === 0 ? 1 : biased) - 1075 };
}

export function mul(a: Exact, b: Exact): Exact {
  return { m: a.m * b.m, e: a.e + b.e };
}

export function add(a: Exact, b: Exact): Exact {
  const e = Math.min(a.e, b.e);
  return { m: (a.m << BigInt(a.e - e)) + (b.m << BigInt(b.e - e)), e };
}

export function neg(a: Exact): Exact {
  return { m: -a.m, e: a.e };
}

/** Sign of a - b. */
export function compare(a: Exact, b: Exact): number {
  const d = add(a, neg(b)).m;
  return d > 0n ? 1 : d < 0n ? -1 : 0;
}

function bitLength(m: bigint): number {
  return m === 0n ? 0 : m.toString(2).length;
}

/** The binary64 nearest to the exact value (ties to even), subnormals and overflow included. */
export function roundToDouble(x: Exact): number {
  if (x.m === 0n) return 0;
  const negative = x.m < 0n;
  const m = negative ? -x.m : x.m;
  const q = Math.max(bitLength(m) + x.e - 53, -1074); // exponent of the result's last place
  let keep: bigint;
  if (q <= x.e) keep = m << BigInt(x.e - q);
  else {
    const shift = BigInt(q - x.e);
    keep = m >> shift;
    const rest = m - (keep << shift), half = 1n << (shift - 1n);
    if (rest > half || (rest === half && (keep & 1n) === 1n)) keep += 1n;
  }
  const v = Number(keep) * 2 ** q; // exact: keep <= 2^53; 2^q overflows to Infinity when the value does
  return negative ? -v : v;
}
