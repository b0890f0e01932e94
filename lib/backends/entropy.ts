/**
 * The host's entropy for virtio-rng: Web Crypto's getRandomValues, which refuses more than 65536
 * bytes per call, so larger buffers are filled in chunks. No blocking, no seeding: the host CSPRNG
 * is already seeded when Deno starts.
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
