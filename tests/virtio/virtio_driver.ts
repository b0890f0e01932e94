/**
 * A test double of the guest's virtio-pci driver (Firecracker-style): it finds a device through
 * the 0xCF8/0xCFC ports, walks its capabilities, negotiates features, lays split rings out in a
 * real GuestMemory and talks to BAR0 through the MmioBus, exactly as Linux's virtio_pci_modern does.
 * Raw ring writers let tests build malformed rings on purpose.
 */
import { MmioBus, PortBus } from "../../lib/machine/bus.ts";
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import type { IrqSink } from "../../lib/machine/irq.ts";
import { setLogSink } from "../../lib/support/log.ts";
import { PciHostBridge } from "../../lib/pci/pci_host_bridge.ts";
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  type VirtioDevice,
} from "../../lib/virtio/virtio_device.ts";
import {
  BAR0_ISR_OFFSET,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
  VirtioPci,
} from "../../lib/virtio/virtio_pci.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from "../../lib/virtio/virtqueue.ts";

/** An IrqSink that remembers line levels and counts rising edges. */
export class TestIrq implements IrqSink {
  readonly levels = new Map<number, boolean>();
  readonly rises = new Map<number, number>();
  setIrq(line: number, level: boolean): void {
    if (level && !this.levels.get(line)) this.rises.set(line, (this.rises.get(line) ?? 0) + 1);
    this.levels.set(line, level);
  }
  level(line: number): boolean {
    return this.levels.get(line) ?? false;
  }
}

/** The pieces of a machine a device needs: RAM, buses, an IRQ sink and the PCI host bridge. */
export class TestMachine {
  readonly mem: GuestMemory;
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  readonly irq = new TestIrq();
  readonly bridge: PciHostBridge;
  /** Bump allocator for driver-side structures, from 64 KiB up. */
  #next = 0x10000;

  /** `mem` replaces the plain RAM of `ramBytes` (the fuzzer passes RAM with a guard zone). */
  constructor(ramBytes = 4 << 20, mem?: GuestMemory) {
    this.mem = mem ?? new GuestMemory(ramBytes);
    this.bridge = new PciHostBridge(this.ports, this.mmio);
  }

  /** The allocator's position, to give everything allocated since back with `release`. */
  allocMark(): number {
    return this.#next;
  }

  release(mark: number): void {
    this.#next = mark;
  }

  alloc(len: number, align = 16): number {
    const at = Math.ceil(this.#next / align) * align;
    this.#next = at + Math.max(len, 1);
    if (!this.mem.contains(at, Math.max(len, 1))) throw new Error("test machine out of RAM");
    return at;
  }

  /** Plugs a device in on `irqLine`; returns the transport and the slot. */
  plug(
    device: VirtioDevice,
    irqLine = 10,
    extra: { name?: string; wake?: () => void } = {},
  ): { transport: VirtioPci; slot: number } {
    const transport = new VirtioPci({
      device,
      mem: this.mem,
      mmio: this.mmio,
      irq: this.irq,
      irqLine,
      ...extra,
    });
    return { transport, slot: this.bridge.attach(transport.pci) };
  }

  cfgRead(slot: number, offset: number, size: 1 | 2 | 4 = 4): number {
    this.ports.write(0xCF8, 4, 0x8000_0000 | (slot << 11) | (offset & 0xFC));
    return this.ports.read(0xCFC + (offset & 3), size);
  }

  cfgWrite(slot: number, offset: number, size: 1 | 2 | 4, value: number): void {
    this.ports.write(0xCF8, 4, 0x8000_0000 | (slot << 11) | (offset & 0xFC));
    this.ports.write(0xCFC + (offset & 3), size, value);
  }
}

interface Cap {
  at: number;
  bar: number;
  offset: number;
  length: number;
}

/** A driver-side view of one split ring. */
export class DriverQueue {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  /** Next free descriptor (descriptors are handed out round-robin; tests keep few in flight). */
  nextDesc = 0;
  availIdx = 0;
  lastUsed = 0;
  constructor(readonly index: number, readonly size: number, readonly notifyAddr: number, m: TestMachine) {
    this.desc = m.alloc(16 * size, 16);
    this.avail = m.alloc(6 + 2 * size, 2);
    this.used = m.alloc(6 + 8 * size, 4);
  }
}

/** A buffer for `submit`: device-readable bytes, or `writable` bytes for the device to fill. */
export type Buf = { data: Uint8Array } | { writable: number };

/** A submitted chain: its head and where each buffer landed in guest RAM. */
export interface Submitted {
  head: number;
  addrs: number[];
}

export class VirtioDriver {
  readonly m: TestMachine;
  readonly slot: number;
  readonly bar0: number;
  readonly caps = new Map<number, Cap>();
  readonly notifyMultiplier: number;
  readonly queues: DriverQueue[] = [];

  /** Finds the function in `slot` the way Linux's probe does (vp_modern_probe). */
  constructor(m: TestMachine, slot: number) {
    this.m = m;
    this.slot = slot;
    const bar = m.cfgRead(slot, 0x10);
    this.bar0 = (bar & 0xFFFF_FFF0) >>> 0;
    for (let at = m.cfgRead(slot, 0x34, 1); at !== 0; at = m.cfgRead(slot, at + 1, 1)) {
      if (m.cfgRead(slot, at, 1) !== 0x09) continue;
      const type = m.cfgRead(slot, at + 3, 1);
      if (!this.caps.has(type)) {
        this.caps.set(type, {
          at,
          bar: m.cfgRead(slot, at + 4, 1),
          offset: m.cfgRead(slot, at + 8),
          length: m.cfgRead(slot, at + 12),
        });
      }
    }
    this.notifyMultiplier = m.cfgRead(slot, this.cap(VIRTIO_PCI_CAP_NOTIFY_CFG).at + 16);
  }

  cap(type: number): Cap {
    const c = this.caps.get(type);
    if (c === undefined) throw new Error(`no virtio capability ${type}`);
    return c;
  }

  // ---- BAR0 structures ----

  commonRead(offset: number, size: 1 | 2 | 4): number {
    return this.m.mmio.read(this.bar0 + this.cap(VIRTIO_PCI_CAP_COMMON_CFG).offset + offset, size);
  }
  commonWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.m.mmio.write(this.bar0 + this.cap(VIRTIO_PCI_CAP_COMMON_CFG).offset + offset, size, value);
  }
  configRead(offset: number, size: 1 | 2 | 4): number {
    return this.m.mmio.read(this.bar0 + this.cap(VIRTIO_PCI_CAP_DEVICE_CFG).offset + offset, size);
  }
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    this.m.mmio.write(this.bar0 + this.cap(VIRTIO_PCI_CAP_DEVICE_CFG).offset + offset, size, value);
  }
  readIsr(): number {
    return this.m.mmio.read(this.bar0 + this.cap(VIRTIO_PCI_CAP_ISR_CFG).offset, 1);
  }
  get isrAddr(): number {
    return this.bar0 + BAR0_ISR_OFFSET;
  }

  status(): number {
    return this.commonRead(VIRTIO_PCI_COMMON_STATUS, 1);
  }
  setStatus(v: number): void {
    this.commonWrite(VIRTIO_PCI_COMMON_STATUS, 1, v);
  }

  /** Writes 0 to device_status and waits for it to read back 0 (§4.1.4.3.2). */
  reset(): void {
    this.setStatus(0);
    if (this.status() !== 0) throw new Error("reset did not complete");
    this.queues.length = 0;
  }

  deviceFeatures(): bigint {
    this.commonWrite(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    const lo = this.commonRead(VIRTIO_PCI_COMMON_DF, 4);
    this.commonWrite(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    const hi = this.commonRead(VIRTIO_PCI_COMMON_DF, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the device accepted them. */
  negotiate(features: bigint): boolean {
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    this.commonWrite(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    this.commonWrite(VIRTIO_PCI_COMMON_GF, 4, Number(features & 0xFFFF_FFFFn));
    this.commonWrite(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    this.commonWrite(VIRTIO_PCI_COMMON_GF, 4, Number(features >> 32n));
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    return (this.status() & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
  }

  /** Lays out queue `index` in guest RAM (size defaults to the device maximum) and enables it. */
  setupQueue(index: number, size?: number, enable = true): DriverQueue {
    this.commonWrite(VIRTIO_PCI_COMMON_Q_SELECT, 2, index);
    const max = this.commonRead(VIRTIO_PCI_COMMON_Q_SIZE, 2);
    const n = size ?? max;
    const noff = this.commonRead(VIRTIO_PCI_COMMON_Q_NOFF, 2);
    const notifyAddr = this.bar0 + this.cap(VIRTIO_PCI_CAP_NOTIFY_CFG).offset + noff * this.notifyMultiplier;
    // Ring sizes that are not powers of two still get room for a power-of-two ring.
    const q = new DriverQueue(index, n, notifyAddr, this.m);
    this.commonWrite(VIRTIO_PCI_COMMON_Q_SIZE, 2, n);
    this.commonWrite(VIRTIO_PCI_COMMON_Q_DESCLO, 4, q.desc);
    this.commonWrite(VIRTIO_PCI_COMMON_Q_DESCHI, 4, 0);
    this.commonWrite(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, q.avail);
    this.commonWrite(VIRTIO_PCI_COMMON_Q_AVAILHI, 4, 0);
    this.commonWrite(VIRTIO_PCI_COMMON_Q_USEDLO, 4, q.used);
    this.commonWrite(VIRTIO_PCI_COMMON_Q_USEDHI, 4, 0);
    if (enable) this.commonWrite(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    this.queues[index] = q;
    return q;
  }

  driverOk(): void {
    this.setStatus(this.status() | VIRTIO_CONFIG_S_DRIVER_OK);
  }

  /** The usual bring-up: negotiate everything offered, set up every queue, DRIVER_OK. */
  start(numQueues: number, features?: bigint): void {
    if (!this.negotiate(features ?? this.deviceFeatures())) throw new Error("FEATURES_OK refused");
    for (let i = 0; i < numQueues; i++) this.setupQueue(i);
    this.driverOk();
  }

  // ---- raw ring access (for well-formed and malformed rings alike) ----

  writeDesc(table: number, i: number, addr: number | bigint, len: number, flags: number, next: number): void {
    const v = this.m.mem.view;
    const d = table + 16 * i;
    v.setBigUint64(d, BigInt(addr), true);
    v.setUint32(d + 8, len >>> 0, true);
    v.setUint16(d + 12, flags, true);
    v.setUint16(d + 14, next, true);
  }

  /** Puts `head` in the next avail slot and publishes it (avail.idx += 1). */
  publish(q: DriverQueue, head: number): void {
    const v = this.m.mem.view;
    v.setUint16(q.avail + 4 + 2 * (q.availIdx % q.size), head, true);
    q.availIdx = (q.availIdx + 1) & 0xFFFF;
    v.setUint16(q.avail + 2, q.availIdx, true);
  }

  setAvailIdx(q: DriverQueue, idx: number): void {
    q.availIdx = idx & 0xFFFF;
    this.m.mem.view.setUint16(q.avail + 2, q.availIdx, true);
  }

  notify(q: DriverQueue): void {
    this.m.mmio.write(q.notifyAddr, 2, q.index);
  }

  /** Builds a chain from `bufs` (direct, or through one indirect table), publishes and notifies it. */
  submit(q: DriverQueue, bufs: Buf[], opts: { indirect?: boolean; notify?: boolean } = {}): Submitted {
    const addrs = bufs.map((b) => {
      const len = "data" in b ? b.data.length : b.writable;
      const at = this.m.alloc(len, 8);
      if ("data" in b) this.m.mem.u8.set(b.data, at);
      else this.m.mem.u8.fill(0xEE, at, at + len);
      return at;
    });
    const flagsOf = (i: number) =>
      ("writable" in bufs[i] ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < bufs.length ? VIRTQ_DESC_F_NEXT : 0);
    const lenOf = (b: Buf) => "data" in b ? b.data.length : b.writable;
    let head: number;
    if (opts.indirect) {
      const table = this.m.alloc(16 * bufs.length, 16);
      bufs.forEach((b, i) => this.writeDesc(table, i, addrs[i], lenOf(b), flagsOf(i), i + 1));
      head = this.#takeDesc(q);
      this.writeDesc(q.desc, head, table, 16 * bufs.length, VIRTQ_DESC_F_INDIRECT, 0);
    } else {
      const ids = bufs.map(() => this.#takeDesc(q));
      bufs.forEach((b, i) => this.writeDesc(q.desc, ids[i], addrs[i], lenOf(b), flagsOf(i), ids[i + 1] ?? 0));
      head = ids[0];
    }
    this.publish(q, head);
    if (opts.notify ?? true) this.notify(q);
    return { head, addrs };
  }

  #takeDesc(q: DriverQueue): number {
    const i = q.nextDesc;
    q.nextDesc = (q.nextDesc + 1) % q.size;
    return i;
  }

  /** The next used element, or null if the device has not returned one. */
  pollUsed(q: DriverQueue): { id: number; len: number } | null {
    const v = this.m.mem.view;
    if (v.getUint16(q.used + 2, true) === q.lastUsed) return null;
    const e = q.used + 4 + 8 * (q.lastUsed % q.size);
    q.lastUsed = (q.lastUsed + 1) & 0xFFFF;
    return { id: v.getUint32(e, true), len: v.getUint32(e + 4, true) };
  }

  /** Waits (yielding to the event loop, where asynchronous backends complete) for the next used element. */
  async waitUsed(q: DriverQueue, timeoutMs = 5000): Promise<{ id: number; len: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const u = this.pollUsed(q);
      if (u !== null) return u;
      if (Date.now() > deadline) throw new Error(`no used buffer on queue ${q.index} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  usedIdx(q: DriverQueue): number {
    return this.m.mem.view.getUint16(q.used + 2, true);
  }
}

/** Collects log lines while `fn` runs (warnings a guest causes must be one line, not a crash). */
export async function captureLog<T>(fn: () => T | Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const old = setLogSink((l) => lines.push(l));
  try {
    return { result: await fn(), lines };
  } finally {
    setLogSink(old);
  }
}

/** Lets pending promise callbacks and I/O completions run. */
export function settle(ms = 10): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
