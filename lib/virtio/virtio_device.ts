/**
 * The one small interface every virtio device implements (virtio 1.x §2-3), kept apart from the
 * transport (virtio_pci.ts) and the backends (lib/backends/), Firecracker-style. Also the tables
 * shared by devices and transport: generic feature bits, status bits and device IDs with their
 * PCI class codes. Device-specific bits live in each device file.
 */
import type { GuestMemory } from "../machine/guest_memory.ts";
import type { Virtqueue } from "./virtqueue.ts";

// Device status bits (§2.1).
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

// Reserved feature bits (§6), as bit numbers.
export const VIRTIO_F_RING_INDIRECT_DESC = 28;
export const VIRTIO_F_RING_EVENT_IDX = 29;
export const VIRTIO_F_VERSION_1 = 32;

/** A feature bit number as a mask. */
export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** Device IDs (§5) with the PCI class code a virtio-pci function of that type reports. */
export const VIRTIO_DEVICE_TYPES = {
  net: { id: 1, pciClass: 0x020000 }, // network, Ethernet
  block: { id: 2, pciClass: 0x010000 }, // mass storage, SCSI (as QEMU)
  console: { id: 3, pciClass: 0x078000 }, // communication, other
  rng: { id: 4, pciClass: 0xFF0000 }, // device does not fit a defined class
  p9: { id: 9, pciClass: 0x028000 }, // network, other (as QEMU's virtio-9p-pci)
} as const;

/** What a transport gives a device when the driver sets DRIVER_OK. One per activation. */
export interface VirtioContext {
  readonly mem: GuestMemory;
  /** Indexed like `queueSizes`; only enabled queues are usable. */
  readonly queues: readonly Virtqueue[];
  /** The negotiated feature bits. */
  readonly features: bigint;
  /**
   * False once the device was reset or needs reset. Asynchronous work must check it after every
   * await and drop its result when false (the rings may already belong to a new driver).
   */
  readonly live: boolean;
  /** Used buffers were pushed on `queueIndex`: interrupt the driver unless it suppressed that. */
  usedBuffers(queueIndex: number): void;
  /** The device configuration changed (config_generation moves, config interrupt). */
  configChanged(): void;
  /**
   * The device cannot go on: a guest-caused ring error (VirtqueueError, GuestMemoryError) or any
   * other exception (a bug, a host failure). The device goes to DEVICE_NEEDS_RESET with one warning;
   * nothing is rethrown (asynchronous device loops call this from the event loop).
   */
  fail(error: unknown): void;
}

/** A virtio device as a transport sees it. Every device file implements it in the same order. */
export interface VirtioDevice {
  /** The virtio device ID (§5): 1 net, 2 block, 3 console, 4 entropy, 9 9P transport. */
  readonly deviceType: number;
  /** Used in log lines and bus range names. */
  readonly name: string;
  /** Maximum size of each virtqueue (powers of two). */
  readonly queueSizes: readonly number[];
  /** Device-specific feature bits offered; the transport adds VERSION_1 and the ring features. */
  readonly features: bigint;
  /** Size of the device-specific configuration structure (0: none, and no DEVICE_CFG capability). */
  readonly configSizeBytes: number;
  /** A driver read of the device configuration (offset + size within configSizeBytes). */
  configRead(offset: number, size: number): number;
  /** A driver write of the device configuration. */
  configWrite(offset: number, size: number, value: number): void;
  /** DRIVER_OK: the queues are set up; start serving them. */
  activate(ctx: VirtioContext): void;
  /** The driver notified `queueIndex` (or the transport pokes every queue right after activate). */
  onQueueNotify(queueIndex: number): void;
  /** Device reset (status written 0, or a new driver): forget the context and any queued work. */
  reset(): void;
}

/** Little-endian read of `size` bytes at `offset` of a config structure; bytes past its end read 0. */
export function configBytesRead(bytes: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = (v << 8) | (offset + i < bytes.length ? bytes[offset + i] : 0);
  return v >>> 0;
}
