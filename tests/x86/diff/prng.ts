/**
 * The differential test's deterministic random source: sfc32 (Chris Doty-Humphrey's Small Fast
 * Counting generator). The same seed always gives the same cases on every machine.
 */

/** sfc32: small, fast, and good enough to pick test inputs. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(seed: number) {
    this.#a = 0x9E37_79B9;
    this.#b = 0x243F_6A88;
    this.#c = 0xB7E1_5162;
    this.#d = seed | 0;
    for (let i = 0; i < 12; i++) this.u32();
  }
  /** A uniformly random int32. */
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() >>> 0) / 0x1_0000_0000 * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return (this.u32() >>> 0) < p * 0x1_0000_0000;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }
}
