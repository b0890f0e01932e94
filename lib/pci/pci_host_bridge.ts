/**
 * The PCI host bridge: configuration mechanism #1 (PCI Local Bus Spec 3.0 §3.2.2.3.2), an address
 * latch at port 0xCF8 and a data window at 0xCFC-0xCFF, bus 0 only, one function per slot, with the
 * bridge itself at 00:00.0. It also plays firmware: `attach` places BARs above RAM and turns memory
 * decoding on, as a PC BIOS would. Leaves out mechanism #2, other buses and PCI-to-PCI bridges.
 */
import type { MmioBus, PortBus } from "../machine/bus.ts";
import { assert } from "../support/errors.ts";
import { debug } from "../support/log.ts";
import { PciFunction } from "./pci_function.ts";

export const PCI_CONFIG_ADDRESS_PORT = 0xCF8;
export const PCI_CONFIG_DATA_PORT = 0xCFC;
/** Where `attach` starts placing BARs: above any RAM GuestMemory allows (< 3 GiB), below the APICs. */
export const DEFAULT_BAR_BASE = 0xE000_0000;
/** The BAR window ends here (the IO-APIC and local APIC live above on a PC). */
const BAR_LIMIT = 0xFEC0_0000;

/** The enable bit and the bus/device/function/register fields; bits 30:24 and 1:0 read as zero. */
const ADDRESS_MASK = 0x80FF_FFFC;

export interface PciHostBridgeOptions {
  /** First address for BARs placed by `attach` (default 0xE0000000). */
  barBase?: number;
  /**
   * A byte write to 0xCF9 with bit 2 set (the PIIX reset control register, Linux's `reboot=pci`):
   * called to reset the machine. Ignored when absent.
   */
  onResetRequest?: () => void;
}

/** Bus 0 of a PC: the 0xCF8/0xCFC ports and up to 32 single-function slots. */
export class PciHostBridge {
  /** The bridge's own function at 00:00.0 (i440FX identity: Linux's conf1 sanity check looks for it). */
  readonly hostFunction: PciFunction;
  readonly #slots: (PciFunction | null)[] = new Array(32).fill(null);
  #address = 0;
  #nextBar: number;
  readonly #onResetRequest: (() => void) | null;

  constructor(ports: PortBus, mmio: MmioBus, options: PciHostBridgeOptions = {}) {
    this.#nextBar = options.barBase ?? DEFAULT_BAR_BASE;
    this.#onResetRequest = options.onResetRequest ?? null;
    this.hostFunction = new PciFunction("pci-host", mmio, {
      vendorId: 0x8086,
      deviceId: 0x1237,
      revisionId: 2,
      classCode: 0x060000,
    });
    this.#slots[0] = this.hostFunction;
    ports.register(PCI_CONFIG_ADDRESS_PORT, 4, "pci-config-address", {
      read: (offset, size) => this.#readAddress(offset, size),
      write: (offset, size, value) => this.#writeAddress(offset, size, value),
    });
    ports.register(PCI_CONFIG_DATA_PORT, 4, "pci-config-data", {
      read: (offset, size) => this.#readData(offset, size),
      write: (offset, size, value) => this.#writeData(offset, size, value),
    });
  }

  /**
   * Plugs `fn` into the first free slot (or `slot`), places its BARs at the next free addresses
   * aligned to their size, enables memory decoding and returns the slot number.
   */
  attach(fn: PciFunction, slot?: number): number {
    const s = slot ?? this.#slots.indexOf(null);
    assert(s > 0 && s < 32 && this.#slots[s] === null, `PCI slot ${s} is not free for ${fn.name}`);
    // The name keys the function's MMIO ranges: two functions sharing one would unmap each other.
    assert(!this.#slots.some((f) => f?.name === fn.name), `two PCI functions named ${fn.name}`);
    this.#slots[s] = fn;
    for (const bar of fn.bars()) {
      const at = Math.ceil(this.#nextBar / bar.sizeBytes) * bar.sizeBytes;
      assert(at + bar.sizeBytes <= BAR_LIMIT, `no room for ${fn.name} BAR${bar.index}`);
      fn.setBarAddress(bar.index, at);
      this.#nextBar = at + bar.sizeBytes;
    }
    if (fn.bars().length > 0) fn.enableMemoryDecoding();
    debug(`pci 00:${s.toString(16).padStart(2, "0")}.0 ${fn.name} irq ${fn.irqLine ?? "none"}`);
    return s;
  }

  /** The function in `slot`, or null. */
  slot(slot: number): PciFunction | null {
    return this.#slots[slot] ?? null;
  }

  #readAddress(offset: number, size: number): number {
    if (offset === 0 && size === 4) return this.#address >>> 0;
    // Narrower accesses to 0xCF8-0xCFB are not configuration cycles (Linux's type-2 probe writes
    // 0xCFB); 0xCF9 is the PIIX reset control register, which reads as 0.
    if (offset === 1 && size === 1) return 0;
    return size === 4 ? 0xFFFF_FFFF : (1 << (size * 8)) - 1;
  }

  #writeAddress(offset: number, size: number, value: number): void {
    if (offset === 0 && size === 4) {
      this.#address = (value & ADDRESS_MASK) >>> 0;
    } else if (offset === 1 && size === 1 && (value & 0x04) !== 0 && this.#onResetRequest !== null) {
      this.#onResetRequest();
    }
  }

  /** The function addressed by the latch, or null (disabled, other bus, absent slot or function). */
  #target(): PciFunction | null {
    const a = this.#address;
    if ((a & 0x8000_0000) === 0) return null;
    const bus = (a >>> 16) & 0xFF;
    const device = (a >>> 11) & 0x1F;
    const fn = (a >>> 8) & 0x7;
    if (bus !== 0 || fn !== 0) return null;
    return this.#slots[device];
  }

  #readData(offset: number, size: number): number {
    const fn = this.#target();
    const ones = size === 4 ? 0xFFFF_FFFF : (1 << (size * 8)) - 1;
    if (fn === null) return ones;
    // An access running past 0xCFF is cut at the window's end; the missing bytes float high.
    const n = Math.min(size, 4 - offset);
    const v = fn.configRead((this.#address & 0xFC) + offset, n);
    if (n === size) return v;
    return (v | (ones & ~((1 << (n * 8)) - 1))) >>> 0;
  }

  #writeData(offset: number, size: number, value: number): void {
    const fn = this.#target();
    if (fn === null) return;
    const n = Math.min(size, 4 - offset);
    fn.configWrite((this.#address & 0xFC) + offset, n, n === 4 ? value : value & ((1 << (n * 8)) - 1));
  }
}
