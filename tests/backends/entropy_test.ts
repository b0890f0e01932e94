/**
 * Tests for the host entropy backend: Web Crypto refuses more than 65536 bytes per call, so big
 * buffers must be filled in chunks, all the way to the end.
 */
import { assert } from "../assert.ts";
import { HostEntropy } from "../../lib/backends/entropy.ts";

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
