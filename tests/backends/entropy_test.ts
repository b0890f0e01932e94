/**
 * Tests for the host entropy backend: Web Crypto refuses more than 65536 bytes per call, so big
 * buffers must be filled in chunks, all the way to the end.
 */
import { assert, assertEquals } from "../assert.ts";
import { HostEntropy, SeededEntropy } from "../../lib/backends/entropy.ts";

Deno.test("HostEntropy fills buffers larger than getRandomValues allows", () => {
  const buf = new Uint8Array(200_000);
  new HostEntropy().fill(buf);
  assert(buf.subarray(0, 1000).some((b) => b !== 0), "the head was filled");
  assert(buf.subarray(199_000).some((b) => b !== 0), "the tail was filled");
});

Deno.test("HostEntropy fills views into a larger buffer without touching the rest", () => {
  const buf = new Uint8Array(1000);
  new HostEntropy().fill(buf.subarray(100, 200));
  assert(buf.subarray(0, 100).every((b) => b === 0) && buf.subarray(200).every((b) => b === 0));
  assert(buf.subarray(100, 200).some((b) => b !== 0));
});

Deno.test("SeededEntropy gives the same stream for a seed, different streams for different seeds", () => {
  const a = new Uint8Array(1003), b = new Uint8Array(1003), c = new Uint8Array(1003);
  new SeededEntropy().fill(a);
  new SeededEntropy().fill(b);
  new SeededEntropy(7).fill(c);
  assertEquals(a, b);
  assert(a.some((v, i) => v !== c[i]));
  // Not degenerate: every byte value shows up in 64 KiB.
  const big = new Uint8Array(65536);
  new SeededEntropy().fill(big);
  assertEquals(new Set(big).size, 256);
});
