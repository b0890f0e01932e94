/**
 * Predecoded instructions, cached per physical code page (STYLE "hot loop"). Each decoded
 * instruction is a slot in struct-of-arrays typed arrays; each physical page that held code has a
 * map (page offset -> slot) per code size (16/32-bit). A write to the page zeroes its maps, so
 * the next fetch decodes afresh; when the slot pool is full every map is zeroed and the pool
 * restarts. Slot 0 means "not decoded"; slot 1 is scratch for instructions that cross a page.
 */

/** Packed effective-address fields in `ea`. */
export const EA_BASE_SHIFT = 0; // 0-7 register, 8 none
export const EA_INDEX_SHIFT = 4; // 0-7 register, 8 none
export const EA_SCALE_SHIFT = 8;
export const EA_SEG_SHIFT = 12; // segment register 0-5 (ES CS SS DS FS GS)
export const EA_ADDR16 = 1 << 15; // 16-bit address size
export const EA_NONE = 8;

/** Prefix bits in `pfx`. */
export const PFX_REP = 1; // F3
export const PFX_REPNE = 2; // F2
export const PFX_LOCK = 4;
export const PFX_SEG = 8; // a segment override was given

export const SLOT_SCRATCH = 1;

export class DecodeCache {
  readonly capacity: number;
  /** Dispatch id: opcode (0x100 + byte for 0F xx), + 0x200 for a 16-bit operand size; 0x400 = #UD. */
  readonly op: Uint16Array;
  readonly len: Uint8Array;
  readonly modrm: Uint8Array;
  readonly pfx: Uint8Array;
  readonly ea: Int32Array;
  readonly disp: Int32Array;
  readonly imm: Int32Array;
  readonly imm2: Int32Array;
  /** The memory operand's size in bytes (0: none) | MACC_WRITE, for segment checks (segments.ts). */
  readonly macc: Uint8Array;
  next = 2;
  /** Per physical page: decode maps for 32-bit and 16-bit code. */
  readonly maps32: (Int32Array | null)[];
  readonly maps16: (Int32Array | null)[];
  #pagesWithMaps: number[] = [];

  constructor(ramPages: number, capacity = 1 << 17) {
    this.capacity = capacity;
    this.op = new Uint16Array(capacity);
    this.len = new Uint8Array(capacity);
    this.modrm = new Uint8Array(capacity);
    this.pfx = new Uint8Array(capacity);
    this.ea = new Int32Array(capacity);
    this.disp = new Int32Array(capacity);
    this.imm = new Int32Array(capacity);
    this.imm2 = new Int32Array(capacity);
    this.macc = new Uint8Array(capacity);
    this.maps32 = new Array(ramPages).fill(null);
    this.maps16 = new Array(ramPages).fill(null);
  }

  /** The decode map of a physical page for the given code size, created on first use. */
  mapFor(physPage: number, code32: boolean): Int32Array {
    const maps = code32 ? this.maps32 : this.maps16;
    let m = maps[physPage];
    if (m === null) {
      m = new Int32Array(4096);
      maps[physPage] = m;
      this.#pagesWithMaps.push(physPage);
    }
    return m;
  }

  /** Allocates a slot; when the pool is exhausted, forgets every decoded instruction first. */
  allocSlot(): number {
    if (this.next >= this.capacity) this.clear();
    return this.next++;
  }

  /** Forgets the instructions decoded from one physical page (it was written). */
  invalidatePage(physPage: number): void {
    this.maps32[physPage]?.fill(0);
    this.maps16[physPage]?.fill(0);
  }

  /** Forgets everything. */
  clear(): void {
    for (const p of this.#pagesWithMaps) {
      this.maps32[p]?.fill(0);
      this.maps16[p]?.fill(0);
    }
    this.next = 2;
  }
}
