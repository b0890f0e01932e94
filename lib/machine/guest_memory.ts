/**
 * Guest "physical" RAM: one ArrayBuffer, mapped from guest-physical 0, with typed-array views.
 * This is the one trust boundary for devices (STYLE rule 8): every guest-supplied address and
 * length a device uses goes through `check()` or the checked accessors below. The CPU uses the raw
 * views directly (it only ever indexes pages its own page walk proved to be inside RAM).
 */

/** Thrown by the checked accessors; devices turn it into a failed request or a device reset. */
export class GuestMemoryError extends Error {
  override name = "GuestMemoryError";
}

export class GuestMemory {
  /** Size of RAM in bytes, a multiple of 4 KiB. */
  readonly sizeBytes: number;
  readonly buffer: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;
  readonly view: DataView;
  /**
   * Called with the physical page number whenever a device (not the CPU) writes guest RAM, so the
   * CPU can drop instructions it decoded from that page. Set by the CPU.
   */
  onDeviceWrite: (physPage: number) => void = () => {};

  constructor(sizeBytes: number) {
    if (sizeBytes <= 0 || sizeBytes % 4096 !== 0 || sizeBytes > 0xC000_0000) {
      throw new RangeError(`guest RAM size ${sizeBytes} must be a positive multiple of 4 KiB below 3 GiB`);
    }
    this.sizeBytes = sizeBytes;
    this.buffer = new ArrayBuffer(sizeBytes);
    this.u8 = new Uint8Array(this.buffer);
    this.u16 = new Uint16Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
    this.view = new DataView(this.buffer);
  }

  /** True when [physAddr, physAddr+len) lies inside RAM (overflow-safe). */
  contains(physAddr: number, len: number): boolean {
    return Number.isInteger(physAddr) && Number.isInteger(len) && physAddr >= 0 && len >= 0 &&
      physAddr <= this.sizeBytes && len <= this.sizeBytes - physAddr;
  }

  /** Throws GuestMemoryError unless [physAddr, physAddr+len) lies inside RAM. */
  check(physAddr: number, len: number, what = "guest buffer"): void {
    if (!this.contains(physAddr, len)) {
      throw new GuestMemoryError(`${what} 0x${physAddr.toString(16)}+${len} is outside guest RAM`);
    }
  }

  /** A view of guest RAM for reading (no copy). */
  readView(physAddr: number, len: number, what?: string): Uint8Array {
    this.check(physAddr, len, what);
    return this.u8.subarray(physAddr, physAddr + len);
  }

  /** A view of guest RAM to write into; marks the pages written for the CPU's decode cache. */
  writeView(physAddr: number, len: number, what?: string): Uint8Array {
    this.check(physAddr, len, what);
    this.#touch(physAddr, len);
    return this.u8.subarray(physAddr, physAddr + len);
  }

  /** Copies `data` into guest RAM at `physAddr` (checked). */
  write(physAddr: number, data: Uint8Array, what?: string): void {
    this.writeView(physAddr, data.length, what).set(data);
  }

  readU8(physAddr: number): number {
    this.check(physAddr, 1);
    return this.u8[physAddr];
  }
  readU16(physAddr: number): number {
    this.check(physAddr, 2);
    return this.view.getUint16(physAddr, true);
  }
  readU32(physAddr: number): number {
    this.check(physAddr, 4);
    return this.view.getUint32(physAddr, true);
  }
  readU64(physAddr: number): bigint {
    this.check(physAddr, 8);
    return this.view.getBigUint64(physAddr, true);
  }
  writeU8(physAddr: number, v: number): void {
    this.check(physAddr, 1);
    this.#touch(physAddr, 1);
    this.u8[physAddr] = v;
  }
  writeU16(physAddr: number, v: number): void {
    this.check(physAddr, 2);
    this.#touch(physAddr, 2);
    this.view.setUint16(physAddr, v, true);
  }
  writeU32(physAddr: number, v: number): void {
    this.check(physAddr, 4);
    this.#touch(physAddr, 4);
    this.view.setUint32(physAddr, v >>> 0, true);
  }

  #touch(physAddr: number, len: number): void {
    if (len === 0) return;
    const last = (physAddr + len - 1) >>> 12;
    for (let p = physAddr >>> 12; p <= last; p++) this.onDeviceWrite(p);
  }
}
