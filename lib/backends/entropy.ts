/**
 * The host's entropy for virtio-rng: Web Crypto's getRandomValues, which refuses more than 65536
 * bytes per call, so larger buffers are filled in chunks. No blocking, no seeding: the host CSPRNG
 * is already seeded when Deno starts. For --deterministic runs, SeededEntropy: a fixed-seed
 * xoshiro128** stream (Blackman and Vigna), reproducible and explicitly not secret.
 */
import type { EntropyBackend } from "../virtio/rng.ts";

/** getRandomValues' per-call limit (Web Crypto, QuotaExceededError above it). */
const MAX_CHUNK_BYTES = 65536;

/** Random bytes from the host CSPRNG. */
export class HostEntropy implements EntropyBackend {
  fill(buf: Uint8Array): void {
    for (let at = 0; at < buf.length; at += MAX_CHUNK_BYTES) {
      crypto.getRandomValues(buf.subarray(at, Math.min(buf.length, at + MAX_CHUNK_BYTES)));
    }
  }
}

/** The seed --deterministic uses (the stream is the same on every run and every host). */
export const DETERMINISTIC_ENTROPY_SEED = 0x6C677565; // "lgue"

/** A reproducible stream of bytes: xoshiro128** seeded through splitmix32. Not for secrets. */
export class SeededEntropy implements EntropyBackend {
  #s = new Int32Array(4);

  constructor(seed = DETERMINISTIC_ENTROPY_SEED) {
    let x = seed | 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9E3779B9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85EBCA6B);
      z = Math.imul(z ^ (z >>> 13), 0xC2B2AE35);
      this.#s[i] = z ^ (z >>> 16);
    }
  }

  fill(buf: Uint8Array): void {
    const s = this.#s;
    for (let at = 0; at < buf.length; at += 4) {
      const t = s[1] << 9;
      let r = Math.imul(s[1], 5);
      r = Math.imul((r << 7) | (r >>> 25), 9);
      s[2] ^= s[0];
      s[3] ^= s[1];
      s[1] ^= s[2];
      s[0] ^= s[3];
      s[2] ^= t;
      s[3] = (s[3] << 11) | (s[3] >>> 21);
      for (let i = 0; i < 4 && at + i < buf.length; i++) buf[at + i] = r >>> (i * 8);
    }
  }
}
