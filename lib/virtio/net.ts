/**
 * virtio-net (virtio 1.x §5.1): receiveq 0 and transmitq 1 carrying Ethernet frames behind the
 * 12-byte virtio_net_hdr, a MAC address and an always-up link. Frames from the backend wait in a
 * bounded host-side queue until the driver posts receive buffers (the oldest frames win; new ones
 * are dropped when it is full). Mergeable receive buffers are supported.
 *
 * Offloads spare the guest's interpreted TCP stack its per-byte work: the driver may leave partial
 * checksums to us (CSUM) and hand over TCP frames of up to 64 KiB to cut into segments (HOST_TSO4,
 * HOST_TSO6); the host does both in TypeScript (net_offload.ts), so frames reach the backend whole
 * and fully checksummed, as QEMU's `-netdev socket` peers expect. Received frames whose checksums
 * we verified are marked DATA_VALID (GUEST_CSUM), so the guest does not sum them again. Leaves out
 * receive segmentation (GUEST_TSO*), UFO, ECN, the control queue, multiqueue and link-state changes.
 */
import {
  bit,
  configBytesRead,
  VIRTIO_DEVICE_TYPES,
  type VirtioContext,
  type VirtioDevice,
} from "./virtio_device.ts";
import { DescChain } from "./virtqueue.ts";
import { debug } from "../support/log.ts";
import {
  completePartialChecksum,
  segmentTcp,
  validateChecksums,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
} from "./net_offload.ts";

// ---- Spec constants (§5.1) ----

export const VIRTIO_NET_F_CSUM = 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1;
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_HOST_TSO4 = 11;
export const VIRTIO_NET_F_HOST_TSO6 = 12;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_S_LINK_UP = 1;

/** struct virtio_net_hdr with num_buffers: its size whenever VIRTIO_F_VERSION_1 is negotiated (§5.1.6). */
export const VIRTIO_NET_HDR_BYTES = 12;
// Its fields, little-endian: flags u8, gso_type u8, hdr_len, gso_size, csum_start, csum_offset, num_buffers.
const HDR_FLAGS = 0;
const HDR_GSO_TYPE = 1;
const HDR_HDR_LEN = 2;
const HDR_GSO_SIZE = 4;
const HDR_CSUM_START = 6;
const HDR_CSUM_OFFSET = 8;
const HDR_NUM_BUFFERS = 10;

// struct virtio_net_config: mac[6], status.
const CFG_MAC = 0;
const CFG_STATUS = 6;
const CONFIG_SIZE = 8;

const RECEIVEQ = 0;
const TRANSMITQ = 1;
const QUEUE_SIZE = 256;
/** Largest frame we carry: a 64 KiB IP packet plus its Ethernet header with one 802.1Q tag. */
export const MAX_FRAME_BYTES = 65535 + 18;
/** Frames held host-side while the guest has no receive buffers. */
export const RX_QUEUE_FRAMES = 256;

// ---- Backend ----

/** The network behind the device (lib/backends/socket_net.ts; tests may link two devices directly). */
export interface NetBackend {
  /** Sends one Ethernet frame (without virtio header); `frame` is a fresh copy the backend may keep. */
  send(frame: Uint8Array): void;
  /** Registers the one receiver of incoming frames; the backend calls it from the event loop. */
  onFrame(cb: (frame: Uint8Array) => void): void;
}

export interface NetOptions {
  name?: string;
  /** 6 bytes; default 52:54:00:12:34:56 (give each device of a network its own). */
  mac?: Uint8Array;
}

// ---- Device ----

/** A virtio network card over a NetBackend. */
export class NetDevice implements VirtioDevice {
  readonly deviceType = VIRTIO_DEVICE_TYPES.net.id;
  readonly name: string;
  readonly queueSizes = [QUEUE_SIZE, QUEUE_SIZE];
  readonly features = bit(VIRTIO_NET_F_CSUM) | bit(VIRTIO_NET_F_GUEST_CSUM) | bit(VIRTIO_NET_F_MAC) |
    bit(VIRTIO_NET_F_HOST_TSO4) | bit(VIRTIO_NET_F_HOST_TSO6) | bit(VIRTIO_NET_F_STATUS) |
    bit(VIRTIO_NET_F_MRG_RXBUF);
  readonly configSizeBytes = CONFIG_SIZE;
  readonly #backend: NetBackend;
  readonly #config = new Uint8Array(CONFIG_SIZE);
  /** The header written before each received frame. */
  readonly #header = new Uint8Array(VIRTIO_NET_HDR_BYTES);
  /** The header read before each transmitted frame. */
  readonly #txHeader = new DataView(new ArrayBuffer(VIRTIO_NET_HDR_BYTES));
  readonly #txHeaderBytes = new Uint8Array(this.#txHeader.buffer);
  /** Hands a finished frame (or segment) to the backend; made once, not per frame. */
  readonly #send = (frame: Uint8Array): void => this.#backend.send(frame);
  /** Frames waiting for receive buffers, oldest first (a ring of RX_QUEUE_FRAMES slots). */
  readonly #rx: (Uint8Array | null)[] = new Array(RX_QUEUE_FRAMES).fill(null);
  #rxHead = 0;
  #rxCount = 0;
  /**
   * Frames dropped: the host-side queue was full, the frame too big, or a transmitted frame asked
   * for an offload that was not negotiated or does not fit the frame.
   */
  droppedFrames = 0;
  /** Chains of the frame being received; more than one only with mergeable buffers. */
  #rxChains: DescChain[] = [];
  #txChain: DescChain | null = null;
  #mergeable = false;
  // The offloads negotiated (VIRTIO_NET_F_CSUM, GUEST_CSUM, HOST_TSO4, HOST_TSO6).
  #checksumOffload = false;
  #guestChecksum = false;
  #tcp4Segmentation = false;
  #tcp6Segmentation = false;
  #ctx: VirtioContext | null = null;
  #transmitDropsLogged = false;

  constructor(backend: NetBackend, options: NetOptions = {}) {
    this.#backend = backend;
    this.name = options.name ?? "virtio-net";
    this.#config.set(options.mac ?? [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], CFG_MAC);
    new DataView(this.#config.buffer).setUint16(CFG_STATUS, VIRTIO_NET_S_LINK_UP, true);
    backend.onFrame((frame) => this.#receive(frame));
  }

  // ---- Configuration space ----

  configRead(offset: number, size: number): number {
    return configBytesRead(this.#config, offset, size);
  }

  configWrite(): void {
    // The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR, which we do not offer.
  }

  // ---- Lifecycle ----

  activate(ctx: VirtioContext): void {
    this.#ctx = ctx;
    this.#mergeable = (ctx.features & bit(VIRTIO_NET_F_MRG_RXBUF)) !== 0n;
    this.#checksumOffload = (ctx.features & bit(VIRTIO_NET_F_CSUM)) !== 0n;
    this.#guestChecksum = (ctx.features & bit(VIRTIO_NET_F_GUEST_CSUM)) !== 0n;
    this.#tcp4Segmentation = (ctx.features & bit(VIRTIO_NET_F_HOST_TSO4)) !== 0n;
    this.#tcp6Segmentation = (ctx.features & bit(VIRTIO_NET_F_HOST_TSO6)) !== 0n;
    this.#rxChains = [new DescChain(ctx.mem, 4)];
    this.#txChain = new DescChain(ctx.mem, 4);
  }

  reset(): void {
    this.#ctx = null;
    this.#rx.fill(null);
    this.#rxHead = this.#rxCount = 0;
  }

  // ---- Queues ----

  onQueueNotify(queueIndex: number): void {
    if (queueIndex === TRANSMITQ) this.#transmit();
    else if (queueIndex === RECEIVEQ) this.#deliver();
  }

  #transmit(): void {
    const ctx = this.#ctx;
    const chain = this.#txChain;
    if (ctx === null || chain === null || !ctx.live) return;
    const queue = ctx.queues[TRANSMITQ];
    while (queue.pop(chain)) {
      const len = chain.readableBytes - VIRTIO_NET_HDR_BYTES;
      // A short or oversized chain is dropped, and so is a frame whose offloads cannot be done.
      if (len > 0 && len <= MAX_FRAME_BYTES) {
        chain.readBytes(0, this.#txHeaderBytes);
        const frame = new Uint8Array(len);
        chain.readBytes(VIRTIO_NET_HDR_BYTES, frame);
        if (!this.#sendWithOffloads(frame)) {
          this.#dropTransmitted(
            "its virtio_net_hdr asks for an offload not negotiated or not fitting the frame",
          );
        }
      } else {
        this.#dropTransmitted(`${len} bytes after the header is not a frame we carry`);
      }
      queue.pushUsed(chain.head, 0);
    }
    ctx.usedBuffers(TRANSMITQ);
  }

  /** Counts a transmitted frame the guest got wrong; `--verbose` logs the first one of each device. */
  #dropTransmitted(why: string): void {
    if (this.#transmitDropsLogged === false) {
      this.#transmitDropsLogged = true;
      debug(`${this.name}: dropped a transmitted frame (${why}); further drops are only counted`);
    }
    this.droppedFrames++;
  }

  /**
   * Sends a transmitted frame after the work its header (in #txHeader) asks for (§5.1.6.2): with a
   * gso_type, cuts it into TCP segments that each carry a full checksum; else with NEEDS_CSUM,
   * completes its partial checksum. Returns false, sending nothing, when the header asks for an
   * offload the driver did not negotiate, or when the frame does not fit what the header says.
   * Flags other than NEEDS_CSUM are ignored (§5.1.6.2.1: the driver must not set them).
   */
  #sendWithOffloads(frame: Uint8Array): boolean {
    const header = this.#txHeader;
    const needsChecksum = (header.getUint8(HDR_FLAGS) & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0;
    if (needsChecksum && !this.#checksumOffload) return false;
    const checksumStart = header.getUint16(HDR_CSUM_START, true);
    const checksumOffset = header.getUint16(HDR_CSUM_OFFSET, true);
    const gsoType = header.getUint8(HDR_GSO_TYPE);
    if (gsoType === VIRTIO_NET_HDR_GSO_NONE) {
      if (needsChecksum && !completePartialChecksum(frame, checksumStart, checksumOffset)) return false;
      this.#backend.send(frame);
      return true;
    }
    // Anything else, the ECN bit included, is a type we do not offer.
    const negotiated = (gsoType === VIRTIO_NET_HDR_GSO_TCPV4 && this.#tcp4Segmentation) ||
      (gsoType === VIRTIO_NET_HDR_GSO_TCPV6 && this.#tcp6Segmentation);
    // Segments get full checksums, so the partial one goes unused; its field must still be in the frame.
    if (!negotiated || (needsChecksum && checksumStart + checksumOffset + 2 > frame.length)) return false;
    const gsoSize = header.getUint16(HDR_GSO_SIZE, true);
    return segmentTcp(frame, gsoType, gsoSize, header.getUint16(HDR_HDR_LEN, true), this.#send);
  }

  /** Moves queued frames into receive buffers until either runs out. */
  #deliver(): void {
    const ctx = this.#ctx;
    if (ctx === null || !ctx.live) return;
    let delivered = false;
    while (this.#rxCount > 0) {
      const frame = this.#rx[this.#rxHead]!;
      const r = this.#place(frame);
      if (r === PLACE_NO_BUFFERS) break;
      this.#rx[this.#rxHead] = null;
      this.#rxHead = (this.#rxHead + 1) % RX_QUEUE_FRAMES;
      this.#rxCount--;
      if (r === PLACE_TOO_BIG) this.droppedFrames++;
      else delivered = true;
    }
    if (delivered) ctx.usedBuffers(RECEIVEQ);
  }

  /**
   * Writes header + frame into one receive chain, or with mergeable buffers into as many as it
   * takes (§5.1.6.3.2), setting num_buffers. Chains are given back if the frame cannot be placed.
   */
  #place(frame: Uint8Array): number {
    const queue = this.#ctx!.queues[RECEIVEQ];
    const total = VIRTIO_NET_HDR_BYTES + frame.length;
    let room = 0;
    let n = 0;
    while (room < total) {
      if (n === this.#rxChains.length) this.#rxChains.push(new DescChain(this.#ctx!.mem, 4));
      const chain = this.#rxChains[n];
      if (!queue.pop(chain)) {
        queue.rewind(n);
        return PLACE_NO_BUFFERS;
      }
      n++;
      room += chain.writableBytes;
      if (!this.#mergeable || n === queue.size) break;
    }
    if (room < total) {
      // Buffers too small for the frame even all together: keep them, drop the frame.
      queue.rewind(n);
      return PLACE_TOO_BIG;
    }
    this.#header.fill(0);
    // Without GUEST_CSUM, or when we cannot vouch for the checksums, flags stay 0: the guest checks.
    if (this.#guestChecksum && validateChecksums(frame)) {
      this.#header[HDR_FLAGS] = VIRTIO_NET_HDR_F_DATA_VALID;
    }
    this.#header[HDR_NUM_BUFFERS] = n & 0xFF;
    this.#header[HDR_NUM_BUFFERS + 1] = n >>> 8;
    let done = 0;
    for (let i = 0; i < n; i++) {
      const chain = this.#rxChains[i];
      let written = 0;
      if (i === 0) written = chain.writeBytes(0, this.#header);
      const w = chain.writeBytes(written, frame.subarray(done));
      done += w;
      queue.pushUsed(chain.head, written + w);
    }
    return PLACE_OK;
  }

  // ---- Backend events ----

  #receive(frame: Uint8Array): void {
    if (frame.length > MAX_FRAME_BYTES || this.#rxCount === RX_QUEUE_FRAMES) {
      this.droppedFrames++;
      return;
    }
    this.#rx[(this.#rxHead + this.#rxCount) % RX_QUEUE_FRAMES] = frame;
    this.#rxCount++;
    const ctx = this.#ctx;
    if (ctx === null) return;
    try {
      this.#deliver();
    } catch (e) {
      ctx.fail(e);
    }
  }
}

const PLACE_OK = 0;
const PLACE_NO_BUFFERS = 1;
const PLACE_TOO_BIG = 2;
