/**
 * virtio-rng, the entropy device (virtio 1.x §5.4): one request queue whose device-writable
 * buffers are filled with random bytes from an EntropyBackend. It has no feature bits and no
 * configuration space (so no DEVICE_CFG capability). Each request gets at most 64 KiB, which
 * bounds the host work one notify can cause.
 */
import { VIRTIO_DEVICE_TYPES, type VirtioContext, type VirtioDevice } from "./virtio_device.ts";
import { DescChain } from "./virtqueue.ts";

// ---- Spec constants (§5.4) ----

const REQUESTQ = 0;
const QUEUE_SIZE = 64;
/** Most bytes served per request (the driver asks for far less: 16-64 bytes per read). */
export const RNG_MAX_REQUEST_BYTES = 65536;

// ---- Backend ----

/** A source of random bytes (lib/backends/entropy.ts). */
export interface EntropyBackend {
  /** Fills all of `buf` with random bytes. */
  fill(buf: Uint8Array): void;
}

export interface RngOptions {
  name?: string;
}

// ---- Device ----

/** A virtio entropy device over an EntropyBackend. */
export class RngDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_DEVICE_TYPES.rng.id;
  readonly name: string;
  readonly queueSizes = [QUEUE_SIZE];
  readonly features = 0n;
  readonly configSizeBytes = 0;
  readonly #backend: EntropyBackend;
  #chain: DescChain | null = null;
  #ctx: VirtioContext | null = null;

  constructor(backend: EntropyBackend, options: RngOptions = {}) {
    this.#backend = backend;
    this.name = options.name ?? "virtio-rng";
  }

  // ---- Configuration space ----

  configRead(): number {
    return 0;
  }

  configWrite(): void {}

  // ---- Lifecycle ----

  activate(ctx: VirtioContext): void {
    this.#ctx = ctx;
    this.#chain = new DescChain(ctx.mem, 4);
  }

  reset(): void {
    this.#ctx = null;
  }

  // ---- Queues ----

  onQueueNotify(): void {
    const ctx = this.#ctx;
    const chain = this.#chain;
    if (ctx === null || chain === null || !ctx.live) return;
    const queue = ctx.queues[REQUESTQ];
    while (queue.pop(chain)) {
      let left = RNG_MAX_REQUEST_BYTES;
      for (let i = 0; i < chain.writableCount && left > 0; i++) {
        const n = Math.min(chain.writableLen(i), left);
        this.#backend.fill(ctx.mem.writeView(chain.writableAddr(i), n, "entropy buffer"));
        left -= n;
      }
      queue.pushUsed(chain.head, RNG_MAX_REQUEST_BYTES - left);
    }
    ctx.usedBuffers(REQUESTQ);
  }

  // ---- Backend events ----
  // None: the backend is synchronous.
}
