/**
 * Port I/O and MMIO buses. Devices register address ranges; the CPU routes IN/OUT and non-RAM
 * physical accesses here. Overlapping registrations are refused (a launcher bug); unmapped
 * accesses behave as on a PC: reads return all ones, writes are ignored (logged under --verbose).
 */
import { assert } from "../support/errors.ts";
import { debug, isVerbose } from "../support/log.ts";

/** A device's view of an access: `offset` is relative to the start of its registered range. */
export interface IoHandler {
  /** Reads `size` (1, 2 or 4) bytes; returns the value zero-extended. */
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}

interface Range {
  start: number;
  end: number; // exclusive
  name: string;
  handler: IoHandler;
}

class RangeBus {
  #ranges: Range[] = [];
  #last: Range | null = null;
  constructor(readonly kind: string) {}

  register(start: number, length: number, name: string, handler: IoHandler): void {
    const end = start + length;
    for (const r of this.#ranges) {
      assert(end <= r.start || start >= r.end, `${this.kind} range ${name} overlaps ${r.name}`);
    }
    this.#ranges.push({ start, end, name, handler });
    this.#ranges.sort((a, b) => a.start - b.start);
  }

  unregister(name: string): void {
    this.#ranges = this.#ranges.filter((r) => r.name !== name);
    this.#last = null;
  }

  find(addr: number): Range | null {
    const last = this.#last;
    if (last !== null && addr >= last.start && addr < last.end) return last;
    for (const r of this.#ranges) {
      if (addr >= r.start && addr < r.end) return (this.#last = r);
    }
    return null;
  }

  read(addr: number, size: number): number {
    const r = this.find(addr);
    if (r === null) {
      if (isVerbose()) debug(`unclaimed ${this.kind} read 0x${addr.toString(16)}/${size}`);
      return size === 4 ? 0xFFFF_FFFF : (1 << (size * 8)) - 1;
    }
    return r.handler.read(addr - r.start, size);
  }

  write(addr: number, size: number, value: number): void {
    const r = this.find(addr);
    if (r === null) {
      if (isVerbose()) {
        debug(
          `unclaimed ${this.kind} write 0x${addr.toString(16)}/${size} = 0x${(value >>> 0).toString(16)}`,
        );
      }
      return;
    }
    r.handler.write(addr - r.start, size, value);
  }
}

/** The 64 KiB x86 I/O port space. */
export class PortBus extends RangeBus {
  constructor() {
    super("port");
  }
}

/** Physical addresses that are not RAM (device BARs, ROM). */
export class MmioBus extends RangeBus {
  constructor() {
    super("mmio");
  }
}
