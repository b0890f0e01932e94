/**
 * One PCI function's type-0 configuration header (PCI Local Bus Spec 3.0, ch. 6): 256 bytes with
 * per-byte write masks, 32-bit memory BARs that map onto the MmioBus when placed and decoded, a
 * capability list, and INTx through one IRQ line. Leaves out I/O BARs, 64-bit BARs, expansion
 * ROMs, MSI/MSI-X, bus mastering checks and the RW1C error bits of STATUS (we never set them).
 */
import type { IoHandler, MmioBus } from "../machine/bus.ts";
import type { IrqSink } from "../machine/irq.ts";
import { assert } from "../support/errors.ts";
import { debug, warn } from "../support/log.ts";

// Header offsets (PCI 3.0 §6.1).
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_CACHE_LINE_SIZE = 0x0C;
export const PCI_LATENCY_TIMER = 0x0D;
export const PCI_HEADER_TYPE = 0x0E;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2C;
export const PCI_SUBSYSTEM_ID = 0x2E;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3C;
export const PCI_INTERRUPT_PIN = 0x3D;

// COMMAND and STATUS bits.
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_PARITY = 0x40;
export const PCI_COMMAND_SERR = 0x100;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS_INTERRUPT = 0x8;
export const PCI_STATUS_CAP_LIST = 0x10;

/** Capability IDs (PCI 3.0 appendix H). */
export const PCI_CAP_ID_VNDR = 0x09;

/** The bits of COMMAND a guest may change; the rest read as zero. */
const COMMAND_WRITABLE = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
  PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;

/** The first byte after the standard header: capabilities are laid out from here. */
const CAP_START = 0x40;

/** Identity registers, fixed at construction. */
export interface PciIds {
  vendorId: number;
  deviceId: number;
  revisionId: number;
  /** 24 bits: base class, subclass, programming interface (e.g. 0x060000 for a host bridge). */
  classCode: number;
  subsystemVendorId?: number;
  subsystemId?: number;
}

/** Where INTx goes: pin INTA# wired to `line` of `sink` (an 8259 input on a PC). */
export interface PciIntx {
  sink: IrqSink;
  line: number;
}

interface Bar {
  sizeBytes: number;
  handler: IoHandler;
  /** Base address currently registered on the MmioBus, or -1. */
  mappedAt: number;
  busName: string;
}

interface ConfigIntercept {
  start: number;
  end: number;
  handler: IoHandler;
}

/** A PCI function: what the host bridge routes configuration cycles to. */
export class PciFunction {
  readonly name: string;
  /** The configuration space as the guest reads it (BAR, COMMAND and STATUS values included). */
  readonly config = new Uint8Array(256);
  /** The IRQ line INTA# drives, or null for a function without interrupts. */
  readonly irqLine: number | null;
  readonly #writable = new Uint8Array(256);
  readonly #mmio: MmioBus;
  readonly #bars: (Bar | null)[] = [null, null, null, null, null, null];
  readonly #intercepts: ConfigIntercept[] = [];
  readonly #irq: IrqSink | null;
  #lastCap = 0;
  #capEnd = CAP_START;
  /** What the function asks for (ISR non-zero, say). */
  #intxRequested = false;
  /** What we last drove onto the line (requested and not masked by INTX_DISABLE). */
  #lineLevel = false;

  constructor(name: string, mmio: MmioBus, ids: PciIds, intx: PciIntx | null = null) {
    this.name = name;
    this.#mmio = mmio;
    this.#irq = intx?.sink ?? null;
    this.irqLine = intx?.line ?? null;
    this.setU16(PCI_VENDOR_ID, ids.vendorId);
    this.setU16(PCI_DEVICE_ID, ids.deviceId);
    this.setU8(PCI_REVISION_ID, ids.revisionId);
    this.setU8(PCI_CLASS_PROG, ids.classCode & 0xFF);
    this.setU16(PCI_CLASS_PROG + 1, ids.classCode >>> 8);
    this.setU16(PCI_SUBSYSTEM_VENDOR_ID, ids.subsystemVendorId ?? 0);
    this.setU16(PCI_SUBSYSTEM_ID, ids.subsystemId ?? 0);
    this.#setWritable(PCI_COMMAND, 2, COMMAND_WRITABLE);
    this.#setWritable(PCI_CACHE_LINE_SIZE, 1, 0xFF);
    this.#setWritable(PCI_LATENCY_TIMER, 1, 0xFF);
    if (intx !== null) {
      // IRQ 2 is the 8259 cascade: a PC routes it to 9, so a device there would be reported wrongly.
      assert(
        intx.line >= 0 && intx.line < 16 && intx.line !== 2,
        `${name}: IRQ line ${intx.line} is not usable`,
      );
      // INTERRUPT_LINE is a scratch register for the OS; Linux without ACPI or a $PIR table uses it
      // as the IRQ number (arch/x86/pci/irq.c, pirq_enable_irq), so firmware-style we preset it.
      this.setU8(PCI_INTERRUPT_LINE, intx.line);
      this.setU8(PCI_INTERRUPT_PIN, 1); // INTA#
      this.#setWritable(PCI_INTERRUPT_LINE, 1, 0xFF);
    }
  }

  // ---- host-side construction (bypasses the guest write masks) ----

  setU8(offset: number, v: number): void {
    this.config[offset] = v;
  }
  setU16(offset: number, v: number): void {
    this.config[offset] = v & 0xFF;
    this.config[offset + 1] = (v >>> 8) & 0xFF;
  }
  setU32(offset: number, v: number): void {
    this.setU16(offset, v & 0xFFFF);
    this.setU16(offset + 2, v >>> 16);
  }
  getU16(offset: number): number {
    return this.config[offset] | (this.config[offset + 1] << 8);
  }
  getU32(offset: number): number {
    return (this.getU16(offset) | (this.getU16(offset + 2) << 16)) >>> 0;
  }

  /** Declares a 32-bit non-prefetchable memory BAR; `sizeBytes` is a power of two ≥ 4 KiB. */
  addMemoryBar(index: number, sizeBytes: number, handler: IoHandler): void {
    assert(index >= 0 && index < 6 && this.#bars[index] === null, `${this.name}: bad BAR index ${index}`);
    assert(
      sizeBytes >= 4096 && (sizeBytes & (sizeBytes - 1)) === 0,
      `${this.name}: bad BAR size ${sizeBytes}`,
    );
    this.#bars[index] = { sizeBytes, handler, mappedAt: -1, busName: `${this.name}.bar${index}` };
    // Bits 3:0 are the read-only type (memory, 32-bit, not prefetchable = 0); the address bits
    // below the size read back as zero, which is how sizing by writing all ones works (§6.2.5.1).
    this.#setWritable(PCI_BASE_ADDRESS_0 + 4 * index, 4, ~(sizeBytes - 1) >>> 0);
  }

  /** The BARs declared so far, for the firmware-like placement done by the host bridge. */
  bars(): { index: number; sizeBytes: number }[] {
    const out: { index: number; sizeBytes: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const b = this.#bars[i];
      if (b !== null) out.push({ index: i, sizeBytes: b.sizeBytes });
    }
    return out;
  }

  /** The base address programmed in BAR `index` (0 if unassigned). */
  barAddress(index: number): number {
    return (this.getU32(PCI_BASE_ADDRESS_0 + 4 * index) & 0xFFFF_FFF0) >>> 0;
  }

  /** Firmware placement: programs BAR `index` and re-evaluates the mapping. */
  setBarAddress(index: number, physAddr: number): void {
    const b = this.#bars[index];
    assert(
      b !== null && physAddr % b.sizeBytes === 0,
      `${this.name}: misaligned BAR${index} 0x${physAddr.toString(16)}`,
    );
    this.setU32(PCI_BASE_ADDRESS_0 + 4 * index, physAddr);
    this.#updateMappings();
  }

  /** Firmware: turns memory decoding on (as a PC BIOS leaves it for devices with BARs). */
  enableMemoryDecoding(): void {
    this.setU16(PCI_COMMAND, this.getU16(PCI_COMMAND) | PCI_COMMAND_MEMORY);
    this.#updateMappings();
  }

  /**
   * Appends a capability of `lengthBytes` (ID and next pointer included) to the list and returns
   * its offset; the caller fills the body with set*(). `writable` optionally gives per-byte write
   * masks for the body, relative to the capability start.
   */
  addCapability(id: number, lengthBytes: number, writable?: Uint8Array): number {
    const at = this.#capEnd;
    assert(lengthBytes >= 2 && at + lengthBytes <= 256, `${this.name}: capability list full`);
    this.setU8(at, id);
    this.setU8(at + 1, 0);
    if (this.#lastCap === 0) this.setU8(PCI_CAPABILITY_LIST, at);
    else this.setU8(this.#lastCap + 1, at);
    this.setU16(PCI_STATUS, this.getU16(PCI_STATUS) | PCI_STATUS_CAP_LIST);
    if (writable !== undefined) {
      for (let i = 0; i < writable.length; i++) this.#writable[at + i] = writable[i];
    }
    this.#lastCap = at;
    this.#capEnd = (at + lengthBytes + 3) & ~3;
    return at;
  }

  /** Routes configuration accesses lying wholly inside [offset, offset+length) to `handler`. */
  interceptConfig(offset: number, length: number, handler: IoHandler): void {
    this.#intercepts.push({ start: offset, end: offset + length, handler });
  }

  // ---- configuration cycles from the host bridge ----

  /** A configuration read of `size` (1, 2 or 4) bytes at `offset` (inside the 256 bytes). */
  configRead(offset: number, size: number): number {
    for (const ic of this.#intercepts) {
      if (offset >= ic.start && offset + size <= ic.end) return ic.handler.read(offset - ic.start, size);
    }
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | this.config[offset + i];
    return v >>> 0;
  }

  /** A configuration write: only the bits in the write masks change. */
  configWrite(offset: number, size: number, value: number): void {
    for (const ic of this.#intercepts) {
      if (offset >= ic.start && offset + size <= ic.end) {
        return ic.handler.write(offset - ic.start, size, value);
      }
    }
    let touchesDecode = false;
    for (let i = 0; i < size; i++) {
      const o = offset + i;
      const mask = this.#writable[o];
      if (mask === 0) continue;
      const b = (value >>> (8 * i)) & 0xFF;
      this.config[o] = (this.config[o] & ~mask) | (b & mask);
      if (
        o === PCI_COMMAND || o === PCI_COMMAND + 1 || (o >= PCI_BASE_ADDRESS_0 && o < PCI_BASE_ADDRESS_0 + 24)
      ) {
        touchesDecode = true;
      }
    }
    if (touchesDecode) {
      this.#updateMappings();
      this.#driveLine();
    }
  }

  // ---- INTx ----

  /** The function raises or lowers INTA#; STATUS.INTERRUPT follows, COMMAND.INTX_DISABLE masks the line. */
  setIntx(level: boolean): void {
    this.#intxRequested = level;
    const status = this.getU16(PCI_STATUS);
    this.setU16(PCI_STATUS, level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
    this.#driveLine();
  }

  #driveLine(): void {
    if (this.#irq === null || this.irqLine === null) return;
    const level = this.#intxRequested && (this.getU16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) === 0;
    if (level === this.#lineLevel) return;
    this.#lineLevel = level;
    this.#irq.setIrq(this.irqLine, level);
  }

  #setWritable(offset: number, len: number, mask: number): void {
    for (let i = 0; i < len; i++) this.#writable[offset + i] = (mask >>> (8 * i)) & 0xFF;
  }

  /**
   * Brings the MmioBus in line with COMMAND.MEMORY and the BAR registers. Like QEMU, a BAR at 0 or
   * one whose range reaches the 4 GiB boundary (the all-ones sizing probe) decodes nothing. A guest
   * that places a BAR over another device's range gets a warning and an unmapped BAR, not a crash.
   */
  #updateMappings(): void {
    const decode = (this.getU16(PCI_COMMAND) & PCI_COMMAND_MEMORY) !== 0;
    for (let i = 0; i < 6; i++) {
      const b = this.#bars[i];
      if (b === null) continue;
      const base = this.barAddress(i);
      const want = decode && base !== 0 && base + b.sizeBytes < 0x1_0000_0000 ? base : -1;
      if (want === b.mappedAt) continue;
      if (b.mappedAt !== -1) {
        this.#mmio.unregister(b.busName);
        debug(`${b.busName} unmapped from 0x${b.mappedAt.toString(16)}`);
        b.mappedAt = -1;
      }
      if (want === -1) continue;
      try {
        this.#mmio.register(want, b.sizeBytes, b.busName, b.handler);
        b.mappedAt = want;
        debug(`${b.busName} mapped at 0x${want.toString(16)}`);
      } catch (e) {
        // MmioBus refuses overlaps with an assertion; here the overlap is the guest's doing.
        warn(`${b.busName}: cannot map at 0x${want.toString(16)}: ${e instanceof Error ? e.message : e}`);
      }
    }
  }
}
