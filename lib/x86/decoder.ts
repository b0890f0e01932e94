/**
 * The instruction decoder: prefixes, opcode, ModRM/SIB, displacement and immediates into one slot
 * of the decode cache (SDM Vol. 2, ch. 2). Which opcodes take a ModRM byte and which immediates
 * comes from the opcode table (opcode_table.ts). Runs once per instruction per code page, so
 * clarity wins over speed here.
 */
import type { Cpu } from "./cpu.ts";
import {
  type DecodeCache,
  EA_ADDR16,
  EA_INDEX_SHIFT,
  EA_NONE,
  EA_SCALE_SHIFT,
  EA_SEG_SHIFT,
  PFX_LOCK,
  PFX_REP,
  PFX_REPNE,
  PFX_SEG,
  SLOT_SCRATCH,
} from "./decode_cache.ts";
import { fault, faultCode, GP, UD } from "./fault.ts";
import { fetch8, markCodePage, translateExec } from "./mmu.ts";
import {
  DECODE_ATTRS,
  FARPTR,
  HAS_MODRM,
  IMM16,
  IMM16_8,
  IMM8,
  IMM_GROUP3,
  IMMZ,
  LOCKABLE,
  MACC_P,
  MACC_V,
  MACC_WRITE,
  MEM_ACCESS,
  MOFFS,
  VALID,
} from "./opcode_table.ts";

/** Dispatch id for an invalid opcode (#UD when executed). */
export const OP_INVALID = 0x400;

const DS = 3, SS = 2;

/** Opcodes whose imm8 is sign-extended (Ibs, Jb). */
const SIGNED_IMM8 = new Uint8Array(0x200);
for (const op of [0x6A, 0x6B, 0x83, 0xE0, 0xE1, 0xE2, 0xE3, 0xEB]) SIGNED_IMM8[op] = 1;
for (let op = 0x70; op <= 0x7F; op++) SIGNED_IMM8[op] = 1;

// 16-bit addressing: base and index registers for ModRM.rm 0-7 (SDM Table 2-1).
const RM16_BASE = [3, 3, 5, 5, 6, 7, 5, 3]; // BX BX BP BP SI DI BP BX
const RM16_INDEX = [6, 7, 6, 7, EA_NONE, EA_NONE, EA_NONE, EA_NONE];

/**
 * Decodes the instruction at linear address `lin` (physical `phys`, in RAM, or -1) and returns its
 * slot. Caches it in `map` unless it crosses a page.
 */
export function decode(cpu: Cpu, lin: number, map: Int32Array | null, code32: boolean): number {
  const dc: DecodeCache = cpu.decoded;
  let p = lin;
  const next = () => {
    const b = fetch8(cpu, p);
    p = (p + 1) | 0;
    if (((p - lin) | 0) > 15) faultCode(GP, 0);
    return b;
  };
  const next16 = () => next() | (next() << 8);
  const next32 = () => (next() | (next() << 8) | (next() << 16) | (next() << 24)) | 0;

  let op16 = !code32, addr16 = !code32;
  let seg = -1, pfx = 0;
  let b: number;
  for (;;) {
    b = next();
    switch (b) {
      case 0x26:
      case 0x2E:
      case 0x36:
      case 0x3E:
        seg = (b >> 3) & 3;
        continue;
      case 0x64:
      case 0x65:
        seg = b - 0x60;
        continue;
      case 0x66:
        op16 = code32;
        continue;
      case 0x67:
        addr16 = code32;
        continue;
      case 0xF0:
        pfx |= PFX_LOCK;
        continue;
      case 0xF2:
        pfx = (pfx & ~PFX_REP) | PFX_REPNE;
        continue;
      case 0xF3:
        pfx = (pfx & ~PFX_REPNE) | PFX_REP;
        continue;
    }
    break;
  }
  let op = b;
  if (op === 0x0F) op = 0x100 | next();
  const attrs = DECODE_ATTRS[op];
  let modrm = 0, disp = 0, imm = 0, imm2 = 0;
  let base = EA_NONE, index = EA_NONE, scale = 0, defSeg = DS;
  if ((attrs & HAS_MODRM) !== 0) {
    modrm = next();
    const mod = modrm >> 6, rm = modrm & 7;
    if (mod !== 3) {
      if (addr16) {
        if (mod === 0 && rm === 6) disp = next16();
        else {
          base = RM16_BASE[rm];
          index = RM16_INDEX[rm];
          if (base === 5) defSeg = SS;
          if (mod === 1) disp = (next() << 24) >> 24;
          else if (mod === 2) disp = next16();
        }
      } else {
        if (rm === 4) {
          const sib = next();
          scale = sib >> 6;
          const idx = (sib >> 3) & 7;
          index = idx === 4 ? EA_NONE : idx;
          const bs = sib & 7;
          if (bs === 5 && mod === 0) disp = next32();
          else {
            base = bs;
            if (bs === 4 || bs === 5) defSeg = SS;
          }
        } else if (rm === 5 && mod === 0) {
          disp = next32();
        } else {
          base = rm;
          if (rm === 5) defSeg = SS;
        }
        if (mod === 1) disp = (next() << 24) >> 24;
        else if (mod === 2) disp = next32();
      }
    }
  }
  if ((attrs & IMM8) !== 0) imm = SIGNED_IMM8[op] ? (next() << 24) >> 24 : next();
  if ((attrs & IMMZ) !== 0) {
    imm = op16
      ? (op >= 0x180 && op <= 0x18F) || op === 0xE8 || op === 0xE9 ? (next16() << 16) >> 16 : next16()
      : next32();
  }
  if ((attrs & IMM16) !== 0) imm = next16();
  if ((attrs & MOFFS) !== 0) disp = addr16 ? next16() : next32();
  if ((attrs & FARPTR) !== 0) {
    imm = op16 ? next16() : next32();
    imm2 = next16();
  }
  if ((attrs & IMM16_8) !== 0) {
    imm = next16();
    imm2 = next();
  }
  if ((attrs & IMM_GROUP3) !== 0 && ((modrm >> 3) & 7) < 2) {
    imm = op === 0xF6 ? next() : op16 ? next16() : next32();
  }
  // Opcodes the decoder knows but that have no valid form for this ModRM.reg raise #UD when run.
  let id = (attrs & VALID) !== 0 ? op | (op16 ? 0x200 : 0) : OP_INVALID;
  // LOCK is #UD unless the instruction is a lockable read-modify-write of memory.
  if (
    (pfx & PFX_LOCK) !== 0 &&
    (modrm >= 0xC0 || (attrs & HAS_MODRM) === 0 || (LOCKABLE[op] & (1 << ((modrm >> 3) & 7))) === 0)
  ) {
    id = OP_INVALID;
  }

  if (seg >= 0) pfx |= PFX_SEG;
  const ea = base | (index << EA_INDEX_SHIFT) | (scale << EA_SCALE_SHIFT) |
    ((seg >= 0 ? seg : defSeg) << EA_SEG_SHIFT) |
    (addr16 ? EA_ADDR16 : 0);
  const len = (p - lin) | 0;
  const crosses = ((lin & 0xFFF) + len) > 0x1000;
  const slot = crosses || map === null ? SLOT_SCRATCH : dc.allocSlot();
  dc.op[slot] = id;
  dc.len[slot] = len;
  dc.modrm[slot] = modrm;
  dc.pfx[slot] = pfx;
  dc.ea[slot] = ea;
  dc.disp[slot] = disp;
  dc.imm[slot] = imm;
  dc.imm2[slot] = imm2;
  let macc = (attrs & (HAS_MODRM | MOFFS)) !== 0 && modrm < 0xC0
    ? MEM_ACCESS[(op << 3) | ((modrm >> 3) & 7)]
    : 0;
  const bytes = macc & 0x7F, w = op16 ? 2 : 4;
  if (bytes >= MACC_V) macc = (macc & MACC_WRITE) | (bytes === MACC_V ? w : bytes === MACC_P ? w + 2 : 2 * w);
  dc.macc[slot] = macc;
  if (!crosses && map !== null) {
    map[lin & 0xFFF] = slot;
    // A store to this page since the interpreter fetched its map cleared the page's code mark
    // (invalidateCodePage) while the interpreter keeps decoding into the same map; mark it again
    // so that later stores (no longer through a write-TLB entry) invalidate these slots too.
    markCodePage(cpu, translateExec(cpu, lin) >>> 12);
  }
  return slot;
}

/** Marks the physical page as code and returns its decode map (null when not RAM). */
export function codeMap(cpu: Cpu, phys: number, code32: boolean): Int32Array | null {
  if (phys < 0 || phys >= cpu.ramSize) return null;
  const page = phys >>> 12;
  markCodePage(cpu, page);
  return cpu.decoded.mapFor(page, code32);
}

/** Raises #UD (for the interpreter's invalid-opcode case). */
export function invalidOpcode(): never {
  return fault(UD);
}
