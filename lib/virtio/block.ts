/**
 * virtio-blk (virtio 1.x §5.2): one request queue; IN, OUT, FLUSH and GET_ID requests served in
 * order through an asynchronous BlockBackend, with 512-byte sectors. A request the device cannot
 * honour (past the end, a write to a read-only disk, a backend error) completes with IOERR; only a
 * malformed ring resets the device. Leaves out DISCARD, WRITE_ZEROES, multiqueue and geometry.
 */
import {
  bit,
  configBytesRead,
  VIRTIO_DEVICE_TYPES,
  type VirtioContext,
  type VirtioDevice,
} from "./virtio_device.ts";
import { DescChain, VirtqueueError } from "./virtqueue.ts";

// ---- Spec constants (§5.2) ----

export const VIRTIO_BLK_F_SIZE_MAX = 1;
export const VIRTIO_BLK_F_SEG_MAX = 2;
export const VIRTIO_BLK_F_RO = 5;
export const VIRTIO_BLK_F_BLK_SIZE = 6;
export const VIRTIO_BLK_F_FLUSH = 9;

export const VIRTIO_BLK_T_IN = 0;
export const VIRTIO_BLK_T_OUT = 1;
export const VIRTIO_BLK_T_FLUSH = 4;
export const VIRTIO_BLK_T_GET_ID = 8;

export const VIRTIO_BLK_S_OK = 0;
export const VIRTIO_BLK_S_IOERR = 1;
export const VIRTIO_BLK_S_UNSUPP = 2;

export const VIRTIO_BLK_SECTOR_SIZE = 512;
export const VIRTIO_BLK_ID_BYTES = 20;

// struct virtio_blk_config, the fields we offer.
const CFG_CAPACITY = 0;
const CFG_SEG_MAX = 12;
const CFG_BLK_SIZE = 20;
const CONFIG_SIZE = 24;

/** struct virtio_blk_req's device-readable header: type, reserved, sector. */
const REQ_HEADER_BYTES = 16;
const QUEUE_SIZE = 256;
/** Bounce buffer size: big requests are moved in chunks of this many bytes. */
const CHUNK_BYTES = 1 << 20;
/** Larger requests fail with IOERR (Linux sends at most a few MiB; this bounds host work per request). */
export const MAX_REQUEST_BYTES = 64 << 20;

// ---- Backend ----

/** Host storage behind a virtio-blk device (lib/backends/file_disk.ts; tests may use their own). */
export interface BlockBackend {
  /** Capacity in bytes, a multiple of 512. */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** Fills `buf` from byte `offset`; rejects on a host error. */
  read(offset: number, buf: Uint8Array): Promise<void>;
  /** Writes all of `data` at byte `offset`; rejects on a host error or a read-only backend. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes completed writes durable (fdatasync); rejects on a host error. */
  flush(): Promise<void>;
}

export interface BlockOptions {
  name?: string;
  /** Returned by GET_ID (at most 20 ASCII bytes; Linux shows it as /sys/block/vdX/serial). */
  serial?: string;
}

// ---- Device ----

/** A virtio block device over a BlockBackend. Requests are served one at a time, in ring order. */
export class BlockDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_DEVICE_TYPES.block.id;
  readonly name: string;
  readonly queueSizes = [QUEUE_SIZE];
  readonly features: bigint;
  readonly configSizeBytes = CONFIG_SIZE;
  readonly #backend: BlockBackend;
  readonly #config = new Uint8Array(CONFIG_SIZE);
  readonly #serial = new Uint8Array(VIRTIO_BLK_ID_BYTES);
  readonly #header = new Uint8Array(REQ_HEADER_BYTES);
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #status = new Uint8Array(1);
  #bounce = new Uint8Array(0);
  #chain: DescChain | null = null;
  #ctx: VirtioContext | null = null;
  /** The running drain loop's token; null when idle. Reset drops it so a stale loop cannot continue. */
  #drainToken: object | null = null;
  #kicked = false;

  constructor(backend: BlockBackend, options: BlockOptions = {}) {
    this.#backend = backend;
    this.name = options.name ?? "virtio-blk";
    this.features = bit(VIRTIO_BLK_F_SEG_MAX) | bit(VIRTIO_BLK_F_BLK_SIZE) | bit(VIRTIO_BLK_F_FLUSH) |
      (backend.readOnly ? bit(VIRTIO_BLK_F_RO) : 0n);
    const cfg = new DataView(this.#config.buffer);
    cfg.setBigUint64(CFG_CAPACITY, BigInt(Math.floor(backend.sizeBytes / VIRTIO_BLK_SECTOR_SIZE)), true);
    // Two descriptors of every request carry the header and the status byte.
    cfg.setUint32(CFG_SEG_MAX, QUEUE_SIZE - 2, true);
    cfg.setUint32(CFG_BLK_SIZE, VIRTIO_BLK_SECTOR_SIZE, true);
    new TextEncoder().encodeInto((options.serial ?? "").slice(0, VIRTIO_BLK_ID_BYTES), this.#serial);
  }

  // ---- Configuration space ----

  configRead(offset: number, size: number): number {
    return configBytesRead(this.#config, offset, size);
  }

  configWrite(): void {
    // Every field we offer is read-only (writeback needs VIRTIO_BLK_F_CONFIG_WCE).
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
    // A request still in flight keeps its own chain and bounce buffer; the next driver gets new ones.
    this.#chain = null;
    this.#bounce = new Uint8Array(0);
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

  /**
   * Serves requests until the ring is empty. The first request starts synchronously inside the
   * notify; backend I/O completes later, from the event loop, between CPU slices.
   */
  async #drain(ctx: VirtioContext): Promise<void> {
    const token = {};
    this.#drainToken = token;
    const queue = ctx.queues[0];
    const chain = this.#chain!;
    try {
      do {
        this.#kicked = false;
        while (ctx.live && queue.pop(chain)) {
          const used = await this.#serve(ctx, chain);
          if (!ctx.live) return;
          queue.pushUsed(chain.head, used);
          ctx.usedBuffers(0);
        }
      } while (this.#kicked && ctx.live);
    } catch (e) {
      ctx.fail(e);
    } finally {
      if (this.#drainToken === token) this.#drainToken = null;
    }
  }

  /** Serves one request; returns the bytes written into its device-writable buffers. */
  async #serve(ctx: VirtioContext, chain: DescChain): Promise<number> {
    if (chain.writableBytes < 1) throw new VirtqueueError(`${this.name}: request without a status byte`);
    const statusAt = chain.writableBytes - 1;
    let status = VIRTIO_BLK_S_IOERR;
    let used = 1;
    if (chain.readBytes(0, this.#header) === REQ_HEADER_BYTES) {
      const type = this.#headerView.getUint32(0, true);
      const sectorHi = this.#headerView.getUint32(12, true);
      const offset = sectorHi === 0 ? this.#headerView.getUint32(8, true) * VIRTIO_BLK_SECTOR_SIZE : Infinity;
      switch (type) {
        case VIRTIO_BLK_T_IN:
          status = await this.#read(ctx, chain, offset, statusAt);
          used = chain.writableBytes;
          break;
        case VIRTIO_BLK_T_OUT:
          status = await this.#write(ctx, chain, offset, chain.readableBytes - REQ_HEADER_BYTES);
          break;
        case VIRTIO_BLK_T_FLUSH:
          status = await this.#flush();
          break;
        case VIRTIO_BLK_T_GET_ID:
          used = chain.writeBytes(0, this.#serial.subarray(0, Math.min(VIRTIO_BLK_ID_BYTES, statusAt))) + 1;
          status = VIRTIO_BLK_S_OK;
          break;
        default:
          status = VIRTIO_BLK_S_UNSUPP;
      }
    }
    if (!ctx.live) return 0;
    this.#status[0] = status;
    chain.writeBytes(statusAt, this.#status);
    return used;
  }

  #inRange(offset: number, lenBytes: number): boolean {
    return lenBytes % VIRTIO_BLK_SECTOR_SIZE === 0 && lenBytes <= MAX_REQUEST_BYTES &&
      offset + lenBytes <= this.#backend.sizeBytes;
  }

  async #read(ctx: VirtioContext, chain: DescChain, offset: number, lenBytes: number): Promise<number> {
    if (!this.#inRange(offset, lenBytes)) return VIRTIO_BLK_S_IOERR;
    for (let done = 0; done < lenBytes;) {
      const buf = this.#bounceOf(Math.min(CHUNK_BYTES, lenBytes - done));
      try {
        await this.#backend.read(offset + done, buf);
      } catch {
        return VIRTIO_BLK_S_IOERR;
      }
      // After a reset the buffers may belong to a new driver: leave guest RAM alone.
      if (!ctx.live) return VIRTIO_BLK_S_IOERR;
      chain.writeBytes(done, buf);
      done += buf.length;
    }
    return VIRTIO_BLK_S_OK;
  }

  async #write(ctx: VirtioContext, chain: DescChain, offset: number, lenBytes: number): Promise<number> {
    if (this.#backend.readOnly || !this.#inRange(offset, lenBytes)) return VIRTIO_BLK_S_IOERR;
    for (let done = 0; done < lenBytes;) {
      if (!ctx.live) return VIRTIO_BLK_S_IOERR;
      const buf = this.#bounceOf(Math.min(CHUNK_BYTES, lenBytes - done));
      chain.readBytes(REQ_HEADER_BYTES + done, buf);
      try {
        await this.#backend.write(offset + done, buf);
      } catch {
        return VIRTIO_BLK_S_IOERR;
      }
      done += buf.length;
    }
    return VIRTIO_BLK_S_OK;
  }

  async #flush(): Promise<number> {
    try {
      await this.#backend.flush();
      return VIRTIO_BLK_S_OK;
    } catch {
      return VIRTIO_BLK_S_IOERR;
    }
  }

  /** A view of the reused bounce buffer, grown on demand up to CHUNK_BYTES. */
  #bounceOf(len: number): Uint8Array {
    if (this.#bounce.length < len) {
      this.#bounce = new Uint8Array(Math.max(len, Math.min(CHUNK_BYTES, 64 << 10)));
    }
    return this.#bounce.subarray(0, len);
  }
}
