/**
 * A FpuHost over a little-endian byte array, standing in for the CPU's linear-address accessors.
 * `faultFrom` makes every access at or above that address throw `FAKE_FAULT`, as a page fault would.
 */

import type { FpuHost } from "../../../lib/x86/fpu/fpu_host.ts";

/** The object thrown for a faulting access (the CPU throws one preallocated fault object too). */
export const FAKE_FAULT = { kind: "fake page fault" };

export class FakeFpuHost implements FpuHost {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  faultFrom = Infinity;
  reads = 0;
  writes = 0;

  constructor(sizeBytes = 4096) {
    this.bytes = new Uint8Array(sizeBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  #check(linearAddr: number, len: number): void {
    if (linearAddr + len > this.faultFrom) throw FAKE_FAULT;
  }

  readU8(linearAddr: number): number {
    this.#check(linearAddr, 1);
    this.reads++;
    return this.view.getUint8(linearAddr);
  }

  readU16(linearAddr: number): number {
    this.#check(linearAddr, 2);
    this.reads++;
    return this.view.getUint16(linearAddr, true);
  }

  readU32(linearAddr: number): number {
    this.#check(linearAddr, 4);
    this.reads++;
    return this.view.getInt32(linearAddr, true);
  }

  writeU8(linearAddr: number, value: number): void {
    this.#check(linearAddr, 1);
    this.writes++;
    this.view.setUint8(linearAddr, value);
  }

  writeU16(linearAddr: number, value: number): void {
    this.#check(linearAddr, 2);
    this.writes++;
    this.view.setUint16(linearAddr, value, true);
  }

  writeU32(linearAddr: number, value: number): void {
    this.#check(linearAddr, 4);
    this.writes++;
    this.view.setUint32(linearAddr, value >>> 0, true);
  }
}
