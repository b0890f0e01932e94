/**
 * The split virtqueue, device side (virtio 1.x §2.7): descriptor table, available ring and used
 * ring in guest RAM. Every index, length and address the guest wrote is validated here or by
 * GuestMemory; a malformed ring throws VirtqueueError, which the transport turns into
 * DEVICE_NEEDS_RESET. Supports indirect descriptors and VIRTIO_F_RING_EVENT_IDX; leaves out the
 * packed ring, VIRTIO_F_IN_ORDER and VIRTIO_F_NOTIFICATION_DATA. Warm path: no per-chain allocation.
 */
import { type GuestMemory, GuestMemoryError } from "../machine/guest_memory.ts";

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** The largest split ring the spec allows (§2.7). */
export const VIRTQ_MAX_SIZE = 32768;
/** The most entries we accept in one indirect table (QEMU's VIRTQUEUE_MAX_SIZE; Linux stays far below). */
export const VIRTQ_MAX_INDIRECT = 1024;

/** The guest broke the ring's contract; the device must be reset. */
export class VirtqueueError extends Error {
  override name = "VirtqueueError";
}

/**
 * One popped descriptor chain: its head index and its buffers, split into the device-readable
 * ones (in order) and the device-writable ones that follow them. Reused from pop to pop.
 */
export class DescChain {
  head = 0;
  readableCount = 0;
  writableCount = 0;
  /** Total bytes of the device-readable buffers. */
  readableBytes = 0;
  /** Total bytes of the device-writable buffers. */
  writableBytes = 0;
  readonly #mem: GuestMemory;
  #rAddr: Uint32Array;
  #rLen: Uint32Array;
  #wAddr: Uint32Array;
  #wLen: Uint32Array;

  constructor(mem: GuestMemory, capacity = 16) {
    this.#mem = mem;
    this.#rAddr = new Uint32Array(capacity);
    this.#rLen = new Uint32Array(capacity);
    this.#wAddr = new Uint32Array(capacity);
    this.#wLen = new Uint32Array(capacity);
  }

  /** @internal Used by Virtqueue.pop. */
  clear(head: number): void {
    this.head = head;
    this.readableCount = this.writableCount = 0;
    this.readableBytes = this.writableBytes = 0;
  }

  /** @internal Used by Virtqueue.pop; the buffer was checked against guest RAM. */
  add(physAddr: number, len: number, writable: boolean): void {
    if (writable) {
      if (this.writableCount === this.#wAddr.length) {
        [this.#wAddr, this.#wLen] = grow(this.#wAddr, this.#wLen);
      }
      this.#wAddr[this.writableCount] = physAddr;
      this.#wLen[this.writableCount++] = len;
      this.writableBytes += len;
    } else {
      if (this.readableCount === this.#rAddr.length) {
        [this.#rAddr, this.#rLen] = grow(this.#rAddr, this.#rLen);
      }
      this.#rAddr[this.readableCount] = physAddr;
      this.#rLen[this.readableCount++] = len;
      this.readableBytes += len;
    }
  }

  writableAddr(i: number): number {
    return this.#wAddr[i];
  }
  writableLen(i: number): number {
    return this.#wLen[i];
  }

  /** Copies device-readable bytes, starting `offset` bytes into them, into `dst`; returns the count. */
  readBytes(offset: number, dst: Uint8Array): number {
    let skip = offset;
    let done = 0;
    for (let i = 0; i < this.readableCount && done < dst.length; i++) {
      const len = this.#rLen[i];
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, dst.length - done);
      dst.set(this.#mem.readView(this.#rAddr[i] + skip, n), done);
      done += n;
      skip = 0;
    }
    return done;
  }

  /** Copies `src` into the device-writable bytes, starting `offset` bytes into them; returns the count. */
  writeBytes(offset: number, src: Uint8Array): number {
    let skip = offset;
    let done = 0;
    for (let i = 0; i < this.writableCount && done < src.length; i++) {
      const len = this.#wLen[i];
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, src.length - done);
      this.#mem.writeView(this.#wAddr[i] + skip, n).set(src.subarray(done, done + n));
      done += n;
      skip = 0;
    }
    return done;
  }
}

function grow(a: Uint32Array, b: Uint32Array): [Uint32Array, Uint32Array] {
  const na = new Uint32Array(a.length * 2);
  const nb = new Uint32Array(b.length * 2);
  na.set(a);
  nb.set(b);
  return [na, nb];
}

/** One split virtqueue. The transport writes its configuration; the device pops and pushes. */
export class Virtqueue {
  readonly index: number;
  /** The largest size the device supports (what queue_size reads before the driver shrinks it). */
  readonly maxSize: number;
  /** Configuration written by the driver through the transport; frozen once enabled. */
  size: number;
  descAddr = 0;
  driverAddr = 0;
  deviceAddr = 0;
  enabled = false;
  /** Negotiated ring features (set by the transport at FEATURES_OK). */
  eventIdx = false;
  indirectDesc = false;
  readonly #mem: GuestMemory;
  #lastAvail = 0;
  #usedIdx = 0;
  /** used.idx when we last decided about an interrupt. */
  #signalledUsed = 0;

  constructor(mem: GuestMemory, index: number, maxSize: number) {
    this.#mem = mem;
    this.index = index;
    this.maxSize = maxSize;
    this.size = maxSize;
  }

  /** Back to the reset state (§2.1 device reset). */
  reset(): void {
    this.size = this.maxSize;
    this.descAddr = this.driverAddr = this.deviceAddr = 0;
    this.enabled = false;
    this.eventIdx = this.indirectDesc = false;
    this.#lastAvail = this.#usedIdx = this.#signalledUsed = 0;
  }

  /** queue_enable = 1: checks the size and the three areas (§2.7 alignment, §4.1.4.3) and goes live. */
  enable(): void {
    const n = this.size;
    if (n === 0 || n > this.maxSize || (n & (n - 1)) !== 0) {
      throw new VirtqueueError(`queue ${this.index}: size ${n} is not a power of two up to ${this.maxSize}`);
    }
    if (this.descAddr % 16 !== 0 || this.driverAddr % 2 !== 0 || this.deviceAddr % 4 !== 0) {
      throw new VirtqueueError(`queue ${this.index}: misaligned ring`);
    }
    this.#checkArea(this.descAddr, 16 * n, "descriptor table");
    this.#checkArea(this.driverAddr, 6 + 2 * n, "available ring");
    this.#checkArea(this.deviceAddr, 6 + 8 * n, "used ring");
    this.#lastAvail = this.#usedIdx = this.#signalledUsed = 0;
    this.enabled = true;
  }

  /** True when the driver has made chains available that we have not popped. */
  hasAvailable(): boolean {
    return this.enabled && this.#availIdx() !== this.#lastAvail;
  }

  /**
   * Pops the next available chain into `chain`; false when the ring is empty. Throws
   * VirtqueueError on any malformation (the chain is then unusable and the device needs reset).
   */
  pop(chain: DescChain): boolean {
    if (!this.enabled) return false;
    const availIdx = this.#availIdx();
    const pending = (availIdx - this.#lastAvail) & 0xFFFF;
    if (pending === 0) return false;
    const n = this.size;
    if (pending > n) {
      throw new VirtqueueError(
        `queue ${this.index}: avail idx ${availIdx} ran ${pending} ahead of ${this.#lastAvail}`,
      );
    }
    const view = this.#mem.view;
    const head = view.getUint16(this.driverAddr + 4 + 2 * (this.#lastAvail & (n - 1)), true);
    this.#walk(head, chain);
    this.#lastAvail = (this.#lastAvail + 1) & 0xFFFF;
    this.#publishAvailEvent();
    return true;
  }

  /** Gives back the last `count` popped chains (a frame that did not fit); they will pop again. */
  rewind(count: number): void {
    this.#lastAvail = (this.#lastAvail - count) & 0xFFFF;
    this.#publishAvailEvent();
  }

  /** Returns chain `head` to the driver with `lenBytes` written into its device-writable buffers. */
  pushUsed(head: number, lenBytes: number): void {
    const elem = this.deviceAddr + 4 + 8 * (this.#usedIdx & (this.size - 1));
    this.#mem.writeU32(elem, head);
    this.#mem.writeU32(elem + 4, lenBytes);
    this.#usedIdx = (this.#usedIdx + 1) & 0xFFFF;
    this.#mem.writeU16(this.deviceAddr + 2, this.#usedIdx);
  }

  /**
   * After pushing used buffers: should the driver be interrupted? Honours used_event
   * (VIRTIO_F_RING_EVENT_IDX, §2.7.10) or VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7). Call once per batch.
   */
  needsInterrupt(): boolean {
    const now = this.#usedIdx;
    const old = this.#signalledUsed;
    this.#signalledUsed = now;
    if (!this.enabled || now === old) return false;
    const view = this.#mem.view;
    if (this.eventIdx) {
      const usedEvent = view.getUint16(this.driverAddr + 4 + 2 * this.size, true);
      return ((now - usedEvent - 1) & 0xFFFF) < ((now - old) & 0xFFFF);
    }
    return (view.getUint16(this.driverAddr, true) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  #availIdx(): number {
    return this.#mem.view.getUint16(this.driverAddr + 2, true);
  }

  /** With EVENT_IDX, avail_event tells the driver which avail index should next notify us. */
  #publishAvailEvent(): void {
    if (this.eventIdx) this.#mem.writeU16(this.deviceAddr + 4 + 8 * this.size, this.#lastAvail);
  }

  #checkArea(physAddr: number, len: number, what: string): void {
    if (!this.#mem.contains(physAddr, len)) {
      throw new VirtqueueError(
        `queue ${this.index}: ${what} 0x${physAddr.toString(16)}+${len} is outside guest RAM`,
      );
    }
  }

  /**
   * Walks the chain from `head`: zero or more direct descriptors, optionally ending in one
   * indirect table (§2.7.5.3). A chain may visit each table entry at most once, which bounds the
   * walk and catches loops; writable buffers must follow all readable ones (§2.7.4.2).
   */
  #walk(head: number, chain: DescChain): void {
    const view = this.#mem.view;
    const q = this.index;
    let table = this.descAddr;
    let tableSize = this.size;
    let indirect = false;
    let idx = head;
    let count = 0;
    let seenWritable = false;
    chain.clear(head);
    for (;;) {
      if (idx >= tableSize) {
        throw new VirtqueueError(`queue ${q}: descriptor index ${idx} out of range (${tableSize} entries)`);
      }
      if (++count > tableSize) throw new VirtqueueError(`queue ${q}: descriptor chain from ${head} loops`);
      const d = table + 16 * idx;
      const addrLo = view.getUint32(d, true);
      const addrHi = view.getUint32(d + 4, true);
      const len = view.getUint32(d + 8, true);
      const flags = view.getUint16(d + 12, true);
      const next = view.getUint16(d + 14, true);
      const addr = addrHi * 0x1_0000_0000 + addrLo;
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (indirect) throw new VirtqueueError(`queue ${q}: nested indirect descriptor`);
        if (!this.indirectDesc) throw new VirtqueueError(`queue ${q}: indirect descriptor not negotiated`);
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0) {
          throw new VirtqueueError(`queue ${q}: indirect descriptor with NEXT`);
        }
        if (len === 0 || len % 16 !== 0 || len / 16 > VIRTQ_MAX_INDIRECT) {
          throw new VirtqueueError(
            `queue ${q}: indirect table length ${len} is not 16..${16 * VIRTQ_MAX_INDIRECT} by 16`,
          );
        }
        this.#checkArea(addr, len, "indirect table");
        table = addr;
        tableSize = len / 16;
        indirect = true;
        idx = 0;
        count = 0;
        continue;
      }
      if (!this.#mem.contains(addr, len)) {
        throw new VirtqueueError(`queue ${q}: buffer 0x${addr.toString(16)}+${len} is outside guest RAM`);
      }
      const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (writable) seenWritable = true;
      else if (seenWritable) {
        throw new VirtqueueError(`queue ${q}: device-readable buffer after a writable one`);
      }
      chain.add(addr, len, writable);
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) return;
      idx = next;
    }
  }
}

/** True for the errors a guest can cause through a ring (they reset the device, not the host). */
export function isGuestRingError(e: unknown): e is Error {
  return e instanceof VirtqueueError || e instanceof GuestMemoryError;
}
