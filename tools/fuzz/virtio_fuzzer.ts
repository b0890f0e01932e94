/**
 * A seeded fuzzer for the virtio devices and the virtio-pci transport (issue #8 §5). It plays a
 * hostile guest driver (tests/virtio/virtio_driver.ts) against one device: random descriptor
 * chains and indirect tables (aliasing all of RAM, crossing its end, pointing past it), random
 * ring indices, random BAR0 and PCI config accesses, random feature sets and queue sizes, resets,
 * and host-side events (typed input, received frames), mixed with well-formed requests so the
 * device keeps doing real work. It counts what must never happen: exceptions out of an access,
 * device errors caught by the transport's barrier (bugs), operations slower than 100 ms, writes
 * outside guest RAM (a guard zone after RAM that `contains` refuses) and heap growth.
 */
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import { setLogSink } from "../../lib/support/log.ts";
import { cpuMs } from "./cpu_time.ts";
import { BAR0_SIZE } from "../../lib/virtio/virtio_pci.ts";
import { VIRTIO_CONFIG_S_NEEDS_RESET, type VirtioDevice } from "../../lib/virtio/virtio_device.ts";
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from "../../lib/virtio/virtqueue.ts";
import { type Buf, DriverQueue, TestMachine, VirtioDriver } from "../../tests/virtio/virtio_driver.ts";

/** Operations slower than this are counted (a guest must not be able to stall the host). */
export const SLOW_OP_MS = 100;

/** A small fast PRNG (xorshift32): the same seed gives the same guest. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = (seed >>> 0) || 0x9E3779B9;
  }
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.#s = x >>> 0);
  }
  /** 0 <= n < bound */
  below(bound: number): number {
    return bound <= 1 ? 0 : Math.floor((this.u32() / 0x1_0000_0000) * bound);
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)];
  }
  fill(buf: Uint8Array): Uint8Array {
    for (let i = 0; i < buf.length; i++) buf[i] = this.u32() & 0xFF;
    return buf;
  }
}

/** RAM followed by a guard zone the devices must never touch: `contains` ends at `ramBytes`. */
export class GuardedMemory extends GuestMemory {
  readonly ramBytes: number;
  readonly guardBytes: number;
  /** Device writes the page hook saw beyond RAM. */
  outsideWrites = 0;
  constructor(ramBytes: number, guardBytes = 64 << 10) {
    super(ramBytes + guardBytes);
    this.ramBytes = ramBytes;
    this.guardBytes = guardBytes;
    this.u8.fill(0xA5, ramBytes);
    this.onDeviceWrite = (page) => {
      if (page * 4096 >= ramBytes) this.outsideWrites++;
    };
  }
  override contains(physAddr: number, len: number): boolean {
    return super.contains(physAddr, len) && physAddr + len <= this.ramBytes;
  }
  /** True while no byte of the guard zone changed. */
  guardIntact(): boolean {
    const u8 = this.u8;
    for (let i = this.ramBytes; i < u8.length; i++) if (u8[i] !== 0xA5) return false;
    return true;
  }
}

/** One device under fuzz: how to make it, its queues, good requests and host-side events. */
export interface FuzzTarget {
  name: string;
  make(rng: Rng): Promise<{
    device: VirtioDevice;
    hostEvent(rng: Rng): void;
    /** Host-side damage found after the run (files outside a share touched); 0 is right. */
    violations?(): Promise<number>;
    close(): Promise<void>;
  }>;
  queues: number;
  /** Let timers and I/O run every this many operations (a device with real host I/O wants often). */
  settleEvery?: number;
  /** A well-formed request for one queue (or null when the queue takes none from the driver). */
  good(rng: Rng, queue: number): Buf[] | null;
}

export interface FuzzReport {
  device: string;
  seed: number;
  ops: number;
  /** Exceptions that left an MMIO/port access or a backend callback, plus unhandled rejections. */
  exceptions: number;
  /** Device errors the transport's barrier caught that were not guest ring errors (bugs). */
  deviceErrors: number;
  /** Guest-caused resets (expected: the fuzzer breaks rings on purpose). */
  needsReset: number;
  /** Used buffers the device returned. */
  completions: number;
  /** Operations that used more than SLOW_OP_MS of CPU (a guest stalling the host). */
  slowOps: number;
  /** Operations that took more than SLOW_OP_MS of wall time (includes the host preempting us). */
  slowWallOps: number;
  slowestMs: number;
  slowestCpuMs: number;
  outsideRam: number;
  /** Host-side violations the target found (e.g. a file outside a shared folder touched). */
  hostViolations: number;
  heapGrowthBytes: number;
  firstFailure?: string;
  seconds: number;
}

const NEXT = VIRTQ_DESC_F_NEXT;
const W = VIRTQ_DESC_F_WRITE;
const IND = VIRTQ_DESC_F_INDIRECT;
const RAM_BYTES = 2 << 20;

/** A report with nothing counted yet, for `ops` operations on `device` from `seed`. */
export function emptyReport(device: string, seed: number, ops: number): FuzzReport {
  return {
    device,
    seed,
    ops,
    exceptions: 0,
    deviceErrors: 0,
    needsReset: 0,
    completions: 0,
    slowOps: 0,
    slowWallOps: 0,
    slowestMs: 0,
    slowestCpuMs: 0,
    outsideRam: 0,
    hostViolations: 0,
    heapGrowthBytes: 0,
    seconds: 0,
  };
}

/** Runs `ops` guest operations against `target` from `seed`; never throws for what it finds. */
export async function fuzzDevice(target: FuzzTarget, seed: number, ops: number): Promise<FuzzReport> {
  const rng = new Rng(seed);
  const report = emptyReport(target.name, seed, ops);
  const fail = (what: string, i: number) => {
    report.firstFailure ??= `op ${i} (seed ${seed}): ${what}`;
  };
  const oldSink = setLogSink((line) => {
    if (line.includes("device error (")) {
      report.deviceErrors++;
      fail(line, -1);
    } else if (line.includes("needs reset")) report.needsReset++;
  });
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    report.exceptions++;
    fail(`unhandled rejection: ${String(e.reason)}`, -1);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  const mem = new GuardedMemory(RAM_BYTES);
  const m = new TestMachine(RAM_BYTES, mem);
  const { device, hostEvent, violations, close } = await target.make(rng);
  const settleMask = (target.settleEvery ?? 4096) - 1;
  const { slot } = m.plug(device, 10);
  const drv = new VirtioDriver(m, slot);
  const base = m.allocMark();
  const dataArea = { start: 0, end: 0 };
  const restart = () => {
    try {
      drv.reset();
    } catch { /* a reset the device could not complete shows in the status checks */ }
    m.release(base);
    const offered = drv.deviceFeatures();
    // Mostly everything offered; sometimes a random subset or extra bits (refused by FEATURES_OK).
    const features = rng.chance(0.7)
      ? offered
      : rng.chance(0.8)
      ? offered & ((BigInt(rng.u32()) << 32n) | BigInt(rng.u32()))
      : (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
    drv.negotiate(features);
    for (let q = 0; q < target.queues; q++) {
      const max = drv.commonRead(0x18, 2) || 256;
      const size = rng.chance(0.8)
        ? max
        : rng.chance(0.8)
        ? 1 << rng.below(Math.log2(max) + 1)
        : rng.below(max * 2);
      drv.setupQueue(q, size, rng.chance(0.97));
    }
    dataArea.start = m.alloc(64 << 10, 4096);
    dataArea.end = mem.ramBytes;
    drv.driverOk();
  };
  const heap0 = heapBytes();
  const t0 = performance.now();
  restart();
  let cpu = cpuMs();
  for (let i = 0; i < ops; i++) {
    const start = performance.now();
    const cpuStart = cpu;
    try {
      step(rng, drv, m, mem, target, dataArea, hostEvent, restart, report);
    } catch (e) {
      report.exceptions++;
      fail(e instanceof Error ? `${e.name}: ${e.message}` : String(e), i);
    }
    // Asynchronous devices (block) finish their work in microtasks (and, every 4096 ops, timers).
    await null;
    const dt = performance.now() - start;
    cpu = cpuMs();
    const dcpu = cpu - cpuStart;
    if ((i & settleMask) === settleMask) {
      await new Promise((r) => setTimeout(r, 0));
      cpu = cpuMs();
    }
    if (dt > SLOW_OP_MS) report.slowWallOps++;
    if (dcpu > SLOW_OP_MS) {
      report.slowOps++;
      fail(`slow op: ${dcpu.toFixed(0)} ms of CPU`, i);
    }
    if (dt > report.slowestMs) report.slowestMs = dt;
    if (dcpu > report.slowestCpuMs) report.slowestCpuMs = dcpu;
    if ((i & 1023) === 1023 && !mem.guardIntact()) {
      report.outsideRam++;
      fail("guard zone after RAM was written", i);
      mem.u8.fill(0xA5, mem.ramBytes);
    }
  }
  await new Promise((r) => setTimeout(r, 20));
  if (!mem.guardIntact()) report.outsideRam++;
  report.outsideRam += mem.outsideWrites;
  report.seconds = (performance.now() - t0) / 1000;
  if (violations) report.hostViolations = await violations();
  try {
    drv.reset();
  } catch { /* reported above */ }
  await close();
  globalThis.removeEventListener("unhandledrejection", onRejection);
  setLogSink(oldSink);
  report.heapGrowthBytes = heapBytes() - heap0;
  return report;
}

/** VirtioDriver.writeDesc without its BigInt (the fuzzer writes millions of descriptors). */
function writeDesc(
  v: DataView,
  table: number,
  i: number,
  addr: number,
  len: number,
  flags: number,
  next: number,
) {
  const d = table + 16 * i;
  if (d < 0 || d + 16 > v.byteLength) return;
  v.setUint32(d, addr % 0x1_0000_0000, true);
  v.setUint32(d + 4, Math.floor(addr / 0x1_0000_0000) >>> 0, true);
  v.setUint32(d + 8, len >>> 0, true);
  v.setUint16(d + 12, flags, true);
  v.setUint16(d + 14, next, true);
}

function heapBytes(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
  const u = Deno.memoryUsage();
  return u.heapUsed + u.external;
}

/** An address a hostile driver might write: in RAM, at its end, in the guard zone, far past it. */
function anyAddr(rng: Rng, mem: GuardedMemory, area: { start: number; end: number }): number {
  switch (rng.below(8)) {
    case 0:
      return 0;
    case 1:
      return mem.ramBytes - rng.below(64);
    case 2:
      return mem.ramBytes + rng.below(mem.guardBytes);
    case 3:
      return rng.u32();
    case 4:
      return rng.u32() * 0x1_0000_0000 + rng.u32();
    default:
      return area.start + rng.below(area.end - area.start);
  }
}

function anyLen(rng: Rng, mem: GuardedMemory): number {
  switch (rng.below(8)) {
    case 0:
      return 0;
    case 1:
      return mem.ramBytes;
    case 2:
      return 0xFFFF_FFFF;
    case 3:
      return rng.below(1 << 17);
    default:
      return rng.below(4096);
  }
}

function step(
  rng: Rng,
  drv: VirtioDriver,
  m: TestMachine,
  mem: GuardedMemory,
  target: FuzzTarget,
  area: { start: number; end: number },
  hostEvent: (rng: Rng) => void,
  restart: () => void,
  report: FuzzReport,
): void {
  const queues = drv.queues;
  if ((drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0 && rng.chance(0.3)) return restart();
  const q = queues.length > 0 ? (rng.pick(queues) ?? null) : null;
  const r = rng.below(100);
  if (r < 30 && q !== null) {
    // A random chain from a random head: mostly linked like a real one (readable buffers, then
    // writable ones), with random breakage; it may end in an indirect table.
    const size = Math.max(q.size, 1);
    const head = rng.below(size);
    const n = 1 + rng.below(8);
    const writableFrom = rng.below(n + 1);
    let i = head;
    for (let k = 0; k < n; k++) {
      const next = rng.chance(0.9) ? (i + 1) % size : rng.below(size + 2);
      let flags = (k < n - 1 ? NEXT : 0) | (k >= writableFrom ? W : 0);
      if (rng.chance(0.05)) flags = rng.below(8);
      const at = rng.chance(0.05) ? anyAddr(rng, mem, area) : area.start + rng.below(area.end - area.start);
      const len = rng.chance(0.1) ? anyLen(rng, mem) : rng.below(2048);
      writeDesc(mem.view, q.desc, i, at, len, flags, next);
      if (k === n - 1 && rng.chance(0.2)) {
        const entries = rng.chance(0.95) ? 1 + rng.below(16) : 1024;
        const table = area.start + 16 * rng.below(((area.end - area.start) >> 4) - entries - 1);
        writeDesc(mem.view, q.desc, i, table, rng.chance(0.95) ? 16 * entries : rng.u32() & 0x1FFFF, IND, 0);
        // Sometimes every entry covers all of RAM (issue #8's chain: 1024 x RAM bytes claimed).
        const aliasAll = rng.chance(0.3);
        const tableWritableFrom = rng.below(entries + 1);
        for (let e = 0; e < entries; e++) {
          let f = (e + 1 < entries ? NEXT : 0) | (e >= tableWritableFrom ? W : 0);
          if (rng.chance(0.01)) f = rng.below(8);
          writeDesc(
            mem.view,
            table,
            e,
            aliasAll ? 0 : rng.chance(0.05) ? anyAddr(rng, mem, area) : area.start + rng.below(4096),
            aliasAll ? mem.ramBytes : rng.chance(0.1) ? anyLen(rng, mem) : rng.below(2048),
            f,
            rng.chance(0.99) ? e + 1 : rng.below(entries + 4),
          );
        }
      }
      i = next;
    }
    drv.publish(q, rng.chance(0.95) ? head : rng.below(0x10000));
    drv.notify(q);
  } else if (r < 55 && q !== null) {
    const bufs = target.good(rng, q.index);
    if (bufs !== null) {
      const mark = m.allocMark();
      try {
        drv.submit(q, bufs, { indirect: rng.chance(0.3) });
      } catch {
        // Out of room in the data area: start over at the next restart.
      }
      m.release(mark);
    }
  } else if (r < 62 && q !== null) {
    // Ring indices and suppression flags.
    const v = m.mem.view;
    switch (rng.below(4)) {
      case 0:
        drv.setAvailIdx(q, rng.chance(0.5) ? q.availIdx + rng.below(4) : rng.below(0x10000));
        break;
      case 1:
        v.setUint16(q.avail, rng.below(4), true);
        break;
      case 2:
        v.setUint16(q.avail + 4 + 2 * q.size, rng.below(0x10000), true); // used_event
        break;
      default:
        v.setUint16(q.used + 2, rng.below(0x10000), true);
    }
    drv.notify(q);
  } else if (r < 77) {
    // BAR0: common config, ISR, device config and doorbells, any width.
    const size = rng.pick([1, 2, 4] as const);
    const region = rng.pick([0x0000, 0x1000, 0x2000, 0x3000]);
    const off = region + (rng.chance(0.9) ? rng.below(0x40) : rng.below(0x1000));
    if (off + size <= BAR0_SIZE) {
      if (rng.chance(0.5)) m.mmio.read(drv.bar0 + off, size);
      else {
        // Status writes are kept rare: most of them would simply reset the device.
        if (region === 0 && off === 0x14 && rng.chance(0.8)) return;
        m.mmio.write(drv.bar0 + off, size, rng.u32());
      }
    }
  } else if (r < 82) {
    // PCI configuration space (not the BARs or command register, which would unmap BAR0).
    const off = 0x28 + rng.below(0x100 - 0x28);
    const size = rng.pick([1, 2, 4] as const);
    if (rng.chance(0.5)) m.cfgRead(drv.slot, off, size);
    else m.cfgWrite(drv.slot, off, size, rng.u32());
  } else if (r < 85) {
    restart();
  } else if (r < 95) {
    hostEvent(rng);
  } else {
    // Reap used buffers like a driver's interrupt handler.
    for (const dq of queues) {
      if (dq === undefined) continue;
      for (let k = 0; k < dq.size && drv.pollUsed(dq) !== null; k++) report.completions++;
    }
    drv.readIsr();
  }
}

export { DriverQueue };
