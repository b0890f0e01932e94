/**
 * virtio-9p, the 9P transport (device ID 9 in virtio 1.x §5; the layout of include/uapi/linux/virtio_9p.h,
 * what Linux's 9pnet_virtio drives):
 * one request queue; each chain holds one T-message in its device-readable buffers and room for
 * the R-message in its device-writable ones. The mount tag (VIRTIO_9P_MOUNT_TAG) names the share
 * for `mount -t 9p -o trans=virtio TAG /mnt`. Requests are served one at a time, in ring order,
 * by a P9Backend (lib/backends/p9_server.ts). A message that lies about its size gets Rlerror; a
 * chain too small to hold a header or an error reply resets the device.
 */
import {
  bit,
  configBytesRead,
  VIRTIO_DEVICE_TYPES,
  type VirtioContext,
  type VirtioDevice,
} from "./virtio_device.ts";
import { DescChain, VirtqueueError } from "./virtqueue.ts";

// ---- Spec constants (include/uapi/linux/virtio_9p.h) ----

export const VIRTIO_9P_MOUNT_TAG = 0;

const REQUESTQ = 0;
const QUEUE_SIZE = 128;
/** size[4] type[1] tag[2]: the part of every 9P message we read before trusting its size. */
const P9_HEADER_BYTES = 7;
/** An Rlerror: size[4] type[1] tag[2] ecode[4]. */
const P9_RLERROR_BYTES = 11;
const P9_RLERROR = 7;
const EPROTO = 71;
const EMSGSIZE = 90;
/** Longest mount tag we offer (Linux compares it with the mount's device name). */
export const P9_MAX_TAG_BYTES = 64;

// ---- Backend ----

/** The 9P file server behind the device. */
export interface P9Backend {
  /** The largest message accepted (the negotiated msize; the maximum before Tversion). */
  readonly msize: number;
  /** Answers one complete T-message with an R-message of at most `replyCapacity` bytes; never rejects. */
  handle(msg: Uint8Array, replyCapacity: number): Promise<Uint8Array>;
  /** Forgets the session (device reset): closes every fid. */
  reset(): void;
}

export interface P9Options {
  name?: string;
}

// ---- Device ----

/** A virtio 9P transport for one shared folder, named by its mount tag. */
export class P9Device implements VirtioDevice {
  readonly deviceType = VIRTIO_DEVICE_TYPES.p9.id;
  readonly name: string;
  readonly queueSizes = [QUEUE_SIZE];
  readonly features = bit(VIRTIO_9P_MOUNT_TAG);
  readonly configSizeBytes: number;
  readonly #backend: P9Backend;
  readonly #config: Uint8Array;
  readonly #header = new Uint8Array(P9_HEADER_BYTES);
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #error = new Uint8Array(P9_RLERROR_BYTES);
  #bounce = new Uint8Array(0);
  #chain: DescChain | null = null;
  #ctx: VirtioContext | null = null;
  #drainToken: object | null = null;
  #kicked = false;

  constructor(backend: P9Backend, tag: string, options: P9Options = {}) {
    this.#backend = backend;
    this.name = options.name ?? "virtio-9p";
    const tagBytes = new TextEncoder().encode(tag);
    if (tagBytes.length === 0 || tagBytes.length > P9_MAX_TAG_BYTES) {
      throw new RangeError(`mount tag of ${tagBytes.length} bytes`);
    }
    // struct virtio_9p_config: tag_len[2] tag[tag_len].
    this.#config = new Uint8Array(2 + tagBytes.length);
    new DataView(this.#config.buffer).setUint16(0, tagBytes.length, true);
    this.#config.set(tagBytes, 2);
    this.configSizeBytes = this.#config.length;
  }

  // ---- Configuration space ----

  configRead(offset: number, size: number): number {
    return configBytesRead(this.#config, offset, size);
  }

  configWrite(): void {
    // The mount tag is read-only.
  }

  // ---- Lifecycle ----

  activate(ctx: VirtioContext): void {
    this.#ctx = ctx;
    this.#chain = new DescChain(ctx.mem, 8);
  }

  reset(): void {
    this.#ctx = null;
    this.#drainToken = null;
    this.#kicked = false;
    this.#chain = null;
    this.#bounce = new Uint8Array(0);
    this.#backend.reset();
  }

  // ---- Queues ----

  onQueueNotify(): void {
    const ctx = this.#ctx;
    if (ctx === null) return;
    if (this.#drainToken !== null) {
      this.#kicked = true;
      return;
    }
    void this.#drain(ctx);
  }

  async #drain(ctx: VirtioContext): Promise<void> {
    const token = {};
    this.#drainToken = token;
    const queue = ctx.queues[REQUESTQ];
    const chain = this.#chain!;
    try {
      do {
        this.#kicked = false;
        while (ctx.live && queue.pop(chain)) {
          const used = await this.#serve(ctx, chain);
          if (!ctx.live) return;
          queue.pushUsed(chain.head, used);
          ctx.usedBuffers(REQUESTQ);
        }
      } while (this.#kicked && ctx.live);
    } catch (e) {
      ctx.fail(e);
    } finally {
      if (this.#drainToken === token) this.#drainToken = null;
    }
  }

  /** Serves one request; returns the bytes of the reply written into the chain. */
  async #serve(ctx: VirtioContext, chain: DescChain): Promise<number> {
    if (chain.readBytes(0, this.#header) < P9_HEADER_BYTES || chain.writableBytes < P9_RLERROR_BYTES) {
      throw new VirtqueueError(`${this.name}: request without a 9P header or room for a reply`);
    }
    const size = this.#headerView.getUint32(0, true);
    const tag = this.#headerView.getUint16(5, true);
    if (size < P9_HEADER_BYTES || size > chain.readableBytes) return this.#fail(chain, tag, EPROTO);
    if (size > this.#backend.msize) return this.#fail(chain, tag, EMSGSIZE);
    const msg = this.#bounceOf(size);
    chain.readBytes(0, msg);
    const reply = await this.#backend.handle(msg, Math.min(chain.writableBytes, this.#backend.msize));
    // After a reset the buffers may belong to a new driver: leave guest RAM alone.
    if (!ctx.live) return 0;
    return chain.writeBytes(0, reply);
  }

  #fail(chain: DescChain, tag: number, errno: number): number {
    const v = new DataView(this.#error.buffer);
    v.setUint32(0, P9_RLERROR_BYTES, true);
    v.setUint8(4, P9_RLERROR);
    v.setUint16(5, tag, true);
    v.setUint32(7, errno, true);
    return chain.writeBytes(0, this.#error);
  }

  #bounceOf(len: number): Uint8Array {
    if (this.#bounce.length < len) this.#bounce = new Uint8Array(Math.max(len, 64 << 10));
    return this.#bounce.subarray(0, len);
  }

  // ---- Backend events ----
  // None: every reply answers a request.
}
