/**
 * The virtio-over-PCI transport, modern interface only (virtio 1.x §4.1): one PCI function per
 * device with BAR0 holding the common configuration, ISR, device configuration and notification
 * areas, found through five vendor capabilities (the PCI_CFG access window works too). Interrupts
 * are INTx only: there is no MSI-X, so every vector register reads VIRTIO_MSI_NO_VECTOR. Leaves
 * out legacy/transitional devices, the packed ring, queue reset and the admin virtqueue.
 */
import type { IoHandler, MmioBus } from "../machine/bus.ts";
import type { GuestMemory } from "../machine/guest_memory.ts";
import type { IrqSink } from "../machine/irq.ts";
import { debug, isVerbose, warn } from "../support/log.ts";
import { PCI_CAP_ID_VNDR, PciFunction } from "../pci/pci_function.ts";
import {
  bit,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_DEVICE_TYPES,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type VirtioContext,
  type VirtioDevice,
} from "./virtio_device.ts";
import { isGuestRingError, Virtqueue } from "./virtqueue.ts";

// PCI identity (§4.1.2).
export const VIRTIO_PCI_VENDOR_ID = 0x1AF4;
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
export const VIRTIO_PCI_SUBSYSTEM_ID = 0x40;

// Capability cfg_type values (§4.1.4).
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;

/** MSI-X "no vector": what every vector register reads, since we have no MSI-X capability. */
export const VIRTIO_MSI_NO_VECTOR = 0xFFFF;

// ISR bits (§4.1.4.5).
export const VIRTIO_PCI_ISR_QUEUE = 1;
export const VIRTIO_PCI_ISR_CONFIG = 2;

// BAR0 layout: one 4 KiB page per structure, so a driver can map each one separately.
export const BAR0_COMMON_OFFSET = 0x0000;
export const BAR0_ISR_OFFSET = 0x1000;
export const BAR0_DEVICE_OFFSET = 0x2000;
export const BAR0_NOTIFY_OFFSET = 0x3000;
export const BAR0_SIZE = 0x4000;
/** queue_notify_off = queue index, each queue's doorbell 4 bytes apart. */
export const NOTIFY_OFF_MULTIPLIER = 4;

// Common configuration layout (§4.1.4.3), virtio 1.2 fields included (the admin ones read 0).
export const VIRTIO_PCI_COMMON_DFSELECT = 0x00;
export const VIRTIO_PCI_COMMON_DF = 0x04;
export const VIRTIO_PCI_COMMON_GFSELECT = 0x08;
export const VIRTIO_PCI_COMMON_GF = 0x0C;
export const VIRTIO_PCI_COMMON_MSIX = 0x10;
export const VIRTIO_PCI_COMMON_NUMQ = 0x12;
export const VIRTIO_PCI_COMMON_STATUS = 0x14;
export const VIRTIO_PCI_COMMON_CFGGENERATION = 0x15;
export const VIRTIO_PCI_COMMON_Q_SELECT = 0x16;
export const VIRTIO_PCI_COMMON_Q_SIZE = 0x18;
export const VIRTIO_PCI_COMMON_Q_MSIX = 0x1A;
export const VIRTIO_PCI_COMMON_Q_ENABLE = 0x1C;
export const VIRTIO_PCI_COMMON_Q_NOFF = 0x1E;
export const VIRTIO_PCI_COMMON_Q_DESCLO = 0x20;
export const VIRTIO_PCI_COMMON_Q_DESCHI = 0x24;
export const VIRTIO_PCI_COMMON_Q_AVAILLO = 0x28;
export const VIRTIO_PCI_COMMON_Q_AVAILHI = 0x2C;
export const VIRTIO_PCI_COMMON_Q_USEDLO = 0x30;
export const VIRTIO_PCI_COMMON_Q_USEDHI = 0x34;
export const VIRTIO_PCI_COMMON_Q_NDATA = 0x38;
export const VIRTIO_PCI_COMMON_Q_RESET = 0x3A;
const COMMON_SIZE = 0x40;

/** Field start and width for every byte of the common configuration (for odd-sized reads). */
const COMMON_FIELD_START = new Uint8Array(COMMON_SIZE);
const COMMON_FIELD_WIDTH = new Uint8Array(COMMON_SIZE);
for (
  const [start, width] of [
    [0x00, 4],
    [0x04, 4],
    [0x08, 4],
    [0x0C, 4],
    [0x10, 2],
    [0x12, 2],
    [0x14, 1],
    [0x15, 1],
    [0x16, 2],
    [0x18, 2],
    [0x1A, 2],
    [0x1C, 2],
    [0x1E, 2],
    [0x20, 4],
    [0x24, 4],
    [0x28, 4],
    [0x2C, 4],
    [0x30, 4],
    [0x34, 4],
    [0x38, 2],
    [0x3A, 2],
    [0x3C, 2],
    [0x3E, 2],
  ]
) {
  for (let i = 0; i < width; i++) {
    COMMON_FIELD_START[start + i] = start;
    COMMON_FIELD_WIDTH[start + i] = width;
  }
}

/** Ring features every device gets: our Virtqueue implements them. */
const TRANSPORT_FEATURES = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_F_RING_INDIRECT_DESC) |
  bit(VIRTIO_F_RING_EVENT_IDX);

const TWO_32 = 0x1_0000_0000;

export interface VirtioPciOptions {
  device: VirtioDevice;
  mem: GuestMemory;
  mmio: MmioBus;
  irq: IrqSink;
  /** The ISA IRQ line INTA# drives (and INTERRUPT_LINE reports). */
  irqLine: number;
  /** PCI function and bus range name; defaults to the device's name. Must be unique per machine. */
  name?: string;
  /**
   * Called whenever the transport raises its interrupt. Completions of asynchronous backends run
   * from the event loop, so a halted CPU must be woken to take them (Machine.wake).
   */
  wake?: () => void;
}

interface LiveContext extends VirtioContext {
  live: boolean;
}

/** One virtio device on PCI. Plug `pci` into the PciHostBridge with `attach`. */
export class VirtioPci {
  readonly device: VirtioDevice;
  readonly pci: PciFunction;
  readonly irqLine: number;
  readonly #mem: GuestMemory;
  readonly #queues: Virtqueue[];
  readonly #offered: bigint;
  readonly #pciCfgCap: number;
  readonly #pciCfgData = new Uint8Array(4);
  #status = 0;
  #deviceFeatureSelect = 0;
  #driverFeatureSelect = 0;
  readonly #driverFeatures = new Uint32Array(2);
  #queueSelect = 0;
  #isr = 0;
  #configGeneration = 0;
  #ctx: LiveContext | null = null;
  readonly #wake: () => void;

  constructor(options: VirtioPciOptions) {
    const device = options.device;
    this.device = device;
    this.#mem = options.mem;
    this.irqLine = options.irqLine;
    this.#wake = options.wake ?? (() => {});
    this.#offered = device.features | TRANSPORT_FEATURES;
    this.#queues = device.queueSizes.map((n, i) => new Virtqueue(options.mem, i, n));
    const type = Object.values(VIRTIO_DEVICE_TYPES).find((t) => t.id === device.deviceType);
    const pci = new PciFunction(options.name ?? device.name, options.mmio, {
      vendorId: VIRTIO_PCI_VENDOR_ID,
      deviceId: VIRTIO_PCI_DEVICE_ID_BASE + device.deviceType,
      revisionId: 1,
      classCode: type?.pciClass ?? 0xFF0000,
      subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
      subsystemId: VIRTIO_PCI_SUBSYSTEM_ID,
    }, { sink: options.irq, line: options.irqLine });
    this.pci = pci;
    // The exception barrier: whatever a device throws (a malformed ring, or a bug) ends at this
    // access as DEVICE_NEEDS_RESET with one log line, never in the CPU's MMIO store.
    const bar0: IoHandler = {
      read: (offset, size) => {
        try {
          return this.#barRead(offset, size);
        } catch (e) {
          this.#deviceFault(e);
          return 0;
        }
      },
      write: (offset, size, value) => {
        try {
          this.#barWrite(offset, size, value);
        } catch (e) {
          this.#deviceFault(e);
        }
      },
    };
    pci.addMemoryBar(0, BAR0_SIZE, bar0);
    this.#addCap(VIRTIO_PCI_CAP_COMMON_CFG, BAR0_COMMON_OFFSET, COMMON_SIZE, 16);
    const notify = this.#addCap(
      VIRTIO_PCI_CAP_NOTIFY_CFG,
      BAR0_NOTIFY_OFFSET,
      NOTIFY_OFF_MULTIPLIER * this.#queues.length,
      20,
    );
    pci.setU32(notify + 16, NOTIFY_OFF_MULTIPLIER);
    this.#addCap(VIRTIO_PCI_CAP_ISR_CFG, BAR0_ISR_OFFSET, 1, 16);
    // Linux rejects a capability of length 0, and the spec makes this one optional (entropy has none).
    if (device.configSizeBytes > 0) {
      this.#addCap(VIRTIO_PCI_CAP_DEVICE_CFG, BAR0_DEVICE_OFFSET, device.configSizeBytes, 16);
    }
    // VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): bar, offset and length are driver-writable; pci_cfg_data
    // is a window that performs a BAR access of `length` bytes at `offset`.
    const writable = new Uint8Array(20);
    writable.fill(0xFF, 4, 5);
    writable.fill(0xFF, 8, 16);
    this.#pciCfgCap = this.#addCap(VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 20, writable);
    pci.interceptConfig(this.#pciCfgCap + 16, 4, {
      read: (offset, size) => {
        try {
          return this.#pciCfgRead(offset, size);
        } catch (e) {
          this.#deviceFault(e);
          return 0;
        }
      },
      write: (offset, size, value) => {
        try {
          this.#pciCfgWrite(offset, size, value);
        } catch (e) {
          this.#deviceFault(e);
        }
      },
    });
  }

  /** device_status as the driver last saw it (for tests and `--verbose` dumps). */
  get deviceStatus(): number {
    return this.#status;
  }

  #addCap(cfgType: number, offset: number, length: number, capLen: number, writable?: Uint8Array): number {
    const at = this.pci.addCapability(PCI_CAP_ID_VNDR, capLen, writable);
    this.pci.setU8(at + 2, capLen);
    this.pci.setU8(at + 3, cfgType);
    this.pci.setU8(at + 4, 0); // BAR0
    this.pci.setU32(at + 8, offset);
    this.pci.setU32(at + 12, length);
    return at;
  }

  // ---- BAR0 ----

  #barRead(offset: number, size: number): number {
    if (offset < BAR0_COMMON_OFFSET + COMMON_SIZE) return this.#commonRead(offset, size);
    if (offset === BAR0_ISR_OFFSET) {
      // Reading the ISR acknowledges the interrupt (§4.1.4.5.1).
      const v = this.#isr;
      this.#isr = 0;
      this.pci.setIntx(false);
      return v;
    }
    if (offset >= BAR0_DEVICE_OFFSET && offset < BAR0_DEVICE_OFFSET + this.device.configSizeBytes) {
      return this.device.configRead(offset - BAR0_DEVICE_OFFSET, size);
    }
    return 0;
  }

  #barWrite(offset: number, size: number, value: number): void {
    if (offset < BAR0_COMMON_OFFSET + COMMON_SIZE) return this.#commonWrite(offset, size, value);
    if (offset >= BAR0_DEVICE_OFFSET && offset < BAR0_DEVICE_OFFSET + this.device.configSizeBytes) {
      return this.#guard(() => this.device.configWrite(offset - BAR0_DEVICE_OFFSET, size, value));
    }
    if (
      offset >= BAR0_NOTIFY_OFFSET &&
      offset < BAR0_NOTIFY_OFFSET + NOTIFY_OFF_MULTIPLIER * this.#queues.length
    ) {
      // The doorbell's address names the queue; the value written (the queue index) is redundant.
      return this.#notify((offset - BAR0_NOTIFY_OFFSET) / NOTIFY_OFF_MULTIPLIER | 0);
    }
  }

  #notify(q: number): void {
    const ctx = this.#ctx;
    if (ctx === null || !ctx.live || !this.#queues[q].enabled) {
      if (isVerbose()) {
        debug(`${this.pci.name}: notify on queue ${q} ignored (status 0x${this.#status.toString(16)})`);
      }
      return;
    }
    // The doorbell is the warm path: no closure for #guard here.
    try {
      this.device.onQueueNotify(q);
    } catch (e) {
      this.#deviceFault(e);
    }
  }

  // ---- common configuration ----

  #commonRead(offset: number, size: number): number {
    if (COMMON_FIELD_START[offset] === offset && COMMON_FIELD_WIDTH[offset] === size) {
      return this.#commonField(offset);
    }
    let v = 0;
    for (let i = size - 1; i >= 0; i--) {
      const o = offset + i;
      const start = COMMON_FIELD_START[o];
      const b = o < COMMON_SIZE ? (this.#commonField(start) >>> (8 * (o - start))) & 0xFF : 0;
      v = (v << 8) | b;
    }
    return v >>> 0;
  }

  #commonField(offset: number): number {
    const q = this.#queueSelect < this.#queues.length ? this.#queues[this.#queueSelect] : null;
    switch (offset) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        return this.#deviceFeatureSelect;
      case VIRTIO_PCI_COMMON_DF:
        if (this.#deviceFeatureSelect > 1) return 0;
        return Number((this.#offered >> BigInt(32 * this.#deviceFeatureSelect)) & 0xFFFF_FFFFn);
      case VIRTIO_PCI_COMMON_GFSELECT:
        return this.#driverFeatureSelect;
      case VIRTIO_PCI_COMMON_GF:
        return this.#driverFeatureSelect > 1 ? 0 : this.#driverFeatures[this.#driverFeatureSelect];
      case VIRTIO_PCI_COMMON_MSIX:
        return VIRTIO_MSI_NO_VECTOR;
      case VIRTIO_PCI_COMMON_NUMQ:
        return this.#queues.length;
      case VIRTIO_PCI_COMMON_STATUS:
        return this.#status;
      case VIRTIO_PCI_COMMON_CFGGENERATION:
        return this.#configGeneration;
      case VIRTIO_PCI_COMMON_Q_SELECT:
        return this.#queueSelect;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        return q === null ? 0 : q.size; // 0: no such queue (§4.1.4.3)
      case VIRTIO_PCI_COMMON_Q_MSIX:
        return VIRTIO_MSI_NO_VECTOR;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        return q !== null && q.enabled ? 1 : 0;
      case VIRTIO_PCI_COMMON_Q_NOFF:
      case VIRTIO_PCI_COMMON_Q_NDATA:
        return q === null ? 0 : q.index;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
        return q === null ? 0 : q.descAddr % TWO_32;
      case VIRTIO_PCI_COMMON_Q_DESCHI:
        return q === null ? 0 : Math.floor(q.descAddr / TWO_32);
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
        return q === null ? 0 : q.driverAddr % TWO_32;
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
        return q === null ? 0 : Math.floor(q.driverAddr / TWO_32);
      case VIRTIO_PCI_COMMON_Q_USEDLO:
        return q === null ? 0 : q.deviceAddr % TWO_32;
      case VIRTIO_PCI_COMMON_Q_USEDHI:
        return q === null ? 0 : Math.floor(q.deviceAddr / TWO_32);
      default:
        return 0; // queue_reset, admin_queue_index, admin_queue_num: features we do not offer
    }
  }

  #commonWrite(offset: number, size: number, value: number): void {
    if (COMMON_FIELD_START[offset] !== offset || COMMON_FIELD_WIDTH[offset] !== size) {
      // §4.1.3.1: the driver MUST use the field's natural width; anything else is ignored.
      if (isVerbose()) {
        debug(`${this.pci.name}: ignored ${size}-byte common config write at 0x${offset.toString(16)}`);
      }
      return;
    }
    value >>>= 0;
    const q = this.#queueSelect < this.#queues.length ? this.#queues[this.#queueSelect] : null;
    // Queue registers are frozen once the queue is enabled (§4.1.4.3.2).
    const qw = q !== null && !q.enabled ? q : null;
    switch (offset) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        this.#deviceFeatureSelect = value;
        return;
      case VIRTIO_PCI_COMMON_GFSELECT:
        this.#driverFeatureSelect = value;
        return;
      case VIRTIO_PCI_COMMON_GF:
        if (this.#driverFeatureSelect <= 1 && (this.#status & VIRTIO_CONFIG_S_FEATURES_OK) === 0) {
          this.#driverFeatures[this.#driverFeatureSelect] = value;
        }
        return;
      case VIRTIO_PCI_COMMON_STATUS:
        return this.#writeStatus(value & 0xFF);
      case VIRTIO_PCI_COMMON_Q_SELECT:
        this.#queueSelect = value;
        return;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        if (qw !== null) qw.size = value;
        return;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        if (qw !== null && value === 1) this.#guard(() => qw.enable());
        return;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
        if (qw !== null) qw.descAddr = withLow(qw.descAddr, value);
        return;
      case VIRTIO_PCI_COMMON_Q_DESCHI:
        if (qw !== null) qw.descAddr = withHigh(qw.descAddr, value);
        return;
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
        if (qw !== null) qw.driverAddr = withLow(qw.driverAddr, value);
        return;
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
        if (qw !== null) qw.driverAddr = withHigh(qw.driverAddr, value);
        return;
      case VIRTIO_PCI_COMMON_Q_USEDLO:
        if (qw !== null) qw.deviceAddr = withLow(qw.deviceAddr, value);
        return;
      case VIRTIO_PCI_COMMON_Q_USEDHI:
        if (qw !== null) qw.deviceAddr = withHigh(qw.deviceAddr, value);
        return;
      default:
        return; // read-only fields, and the MSI-X vectors we cannot honour
    }
  }

  // ---- device status (§2.1, §3.1) ----

  #writeStatus(value: number): void {
    if (value === 0) return this.#reset();
    const old = this.#status;
    // NEEDS_RESET belongs to the device: the driver can neither set nor clear it.
    let next = (value & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (old & VIRTIO_CONFIG_S_NEEDS_RESET);
    if ((next & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 && (old & VIRTIO_CONFIG_S_FEATURES_OK) === 0) {
      const accepted = this.#driverFeatureBits();
      const extra = accepted & ~this.#offered;
      if (extra !== 0n || (accepted & bit(VIRTIO_F_VERSION_1)) === 0n) {
        // §3.1.1: the driver re-reads status and sees FEATURES_OK refused.
        debug(`${this.pci.name}: FEATURES_OK refused for features 0x${accepted.toString(16)}`);
        next &= ~VIRTIO_CONFIG_S_FEATURES_OK;
      } else {
        for (const q of this.#queues) {
          q.eventIdx = (accepted & bit(VIRTIO_F_RING_EVENT_IDX)) !== 0n;
          q.indirectDesc = (accepted & bit(VIRTIO_F_RING_INDIRECT_DESC)) !== 0n;
        }
      }
    }
    if ((next & VIRTIO_CONFIG_S_FEATURES_OK) === 0) next &= ~VIRTIO_CONFIG_S_DRIVER_OK;
    this.#status = next;
    const starting = (next & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (old & VIRTIO_CONFIG_S_DRIVER_OK) === 0;
    if (starting && (next & VIRTIO_CONFIG_S_NEEDS_RESET) === 0) this.#activate();
  }

  #driverFeatureBits(): bigint {
    return (BigInt(this.#driverFeatures[1]) << 32n) | BigInt(this.#driverFeatures[0]);
  }

  #activate(): void {
    const queues = this.#queues;
    const ctx: LiveContext = {
      mem: this.#mem,
      queues,
      features: this.#driverFeatureBits(),
      live: true,
      usedBuffers: (q) => {
        if (ctx.live && queues[q].needsInterrupt()) this.#raise(VIRTIO_PCI_ISR_QUEUE);
      },
      configChanged: () => {
        if (ctx.live) this.#configChanged();
      },
      fail: (error) => {
        if (ctx.live) this.#deviceFault(error);
      },
    };
    this.#ctx = ctx;
    this.#guard(() => this.device.activate(ctx));
    // Buffers the driver made available before DRIVER_OK (§3.1.1) are served now.
    for (let i = 0; i < queues.length && ctx.live; i++) {
      if (queues[i].enabled) this.#guard(() => this.device.onQueueNotify(i));
    }
  }

  #reset(): void {
    if (this.#ctx !== null) this.#ctx.live = false;
    this.#ctx = null;
    this.device.reset();
    for (const q of this.#queues) q.reset();
    this.#status = 0;
    this.#deviceFeatureSelect = this.#driverFeatureSelect = 0;
    this.#driverFeatures.fill(0);
    this.#queueSelect = 0;
    this.#isr = 0;
    this.pci.setIntx(false);
  }

  /** Config space changed under the driver: bump config_generation and interrupt (§4.1.4.3, §4.1.5.3). */
  #configChanged(): void {
    this.#configGeneration = (this.#configGeneration + 1) & 0xFF;
    if ((this.#status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) this.#raise(VIRTIO_PCI_ISR_CONFIG);
  }

  #raise(isrBits: number): void {
    this.#isr |= isrBits;
    this.pci.setIntx(true);
    this.#wake();
  }

  /** Runs a device entry point; whatever it throws becomes DEVICE_NEEDS_RESET. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#deviceFault(e);
    }
  }

  /**
   * A device threw. A guest-caused ring error (VirtqueueError, GuestMemoryError) is the guest's
   * fault; anything else is a device bug or a host failure (an allocation, a backend), which must
   * not escape into the CPU either: both end as DEVICE_NEEDS_RESET with one line (the stack of a
   * bug under --verbose), and the driver can reset the device and carry on.
   */
  #deviceFault(e: unknown): void {
    if (isGuestRingError(e)) return this.#needsReset(e.message);
    const reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    if (isVerbose() && e instanceof Error && e.stack) debug(e.stack);
    this.#needsReset(`device error (${reason})`);
  }

  /** §2.1.2: the device hit an error it cannot recover from without a reset. One warning, then silence. */
  #needsReset(reason: string): void {
    if ((this.#status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) return;
    this.#status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    if (this.#ctx !== null) this.#ctx.live = false;
    warn(`${this.pci.name}: ${reason}; device needs reset`);
    if ((this.#status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) this.#raise(VIRTIO_PCI_ISR_CONFIG);
  }

  // ---- VIRTIO_PCI_CAP_PCI_CFG window (§4.1.4.9) ----

  /** The BAR access the window currently describes, or null when it describes none we can do. */
  #pciCfgTarget(): { offset: number; length: number } | null {
    const bar = this.pci.config[this.#pciCfgCap + 4];
    const offset = this.pci.getU32(this.#pciCfgCap + 8);
    const length = this.pci.getU32(this.#pciCfgCap + 12);
    if (bar !== 0 || (length !== 1 && length !== 2 && length !== 4)) return null;
    if (offset % length !== 0 || offset + length > BAR0_SIZE) return null;
    return { offset, length };
  }

  #pciCfgRead(offset: number, size: number): number {
    const t = this.#pciCfgTarget();
    if (t !== null) {
      const v = this.#barRead(t.offset, t.length);
      for (let i = 0; i < t.length; i++) this.#pciCfgData[i] = (v >>> (8 * i)) & 0xFF;
    }
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.#pciCfgData[offset + i];
    return v >>> 0;
  }

  #pciCfgWrite(offset: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.#pciCfgData[offset + i] = (value >>> (8 * i)) & 0xFF;
    const t = this.#pciCfgTarget();
    if (t === null) return;
    let v = 0;
    for (let i = t.length - 1; i >= 0; i--) v = (v << 8) | this.#pciCfgData[i];
    this.#barWrite(t.offset, t.length, v >>> 0);
  }
}

function withLow(addr: number, lo: number): number {
  return Math.floor(addr / TWO_32) * TWO_32 + lo;
}

function withHigh(addr: number, hi: number): number {
  return hi * TWO_32 + (addr % TWO_32);
}
