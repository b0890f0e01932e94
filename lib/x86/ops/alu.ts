/**
 * Integer arithmetic semantics shared by many opcodes (SDM Vol. 2): the eight ALU operations,
 * INC/DEC/NEG, shifts and rotates, double shifts, bit tests and scans. HOT: each helper records
 * its flags lazily in `cc` (see lazy_flags.ts). Values are passed in and returned as int32; 8- and
 * 16-bit results come back sign-extended, and the caller's typed-array store truncates them.
 */
import {
  CC_DST,
  CC_EFLAGS,
  CC_FLAGS,
  CC_OP,
  CC_SRC1,
  CC_SRC2,
  getCF,
  getOF,
  K_ADC,
  K_ADD,
  K_DEC,
  K_INC,
  K_LOGIC,
  K_SAR,
  K_SBB,
  K_SHL,
  K_SHR,
  K_SUB,
  materialize,
} from "../lazy_flags.ts";

/** ALU operation numbers, as in opcode bits 5:3 and group 1's ModRM.reg. */
export const ALU_ADD = 0;
export const ALU_OR = 1;
export const ALU_ADC = 2;
export const ALU_SBB = 3;
export const ALU_AND = 4;
export const ALU_SUB = 5;
export const ALU_XOR = 6;
export const ALU_CMP = 7;

/** Sign-extends the low `size` bits (size 0 = 8, 1 = 16, 2 = 32). */
export function sx(v: number, size: number): number {
  return size === 2 ? v | 0 : size === 1 ? (v << 16) >> 16 : (v << 24) >> 24;
}

/** One of the eight ALU operations at operand size `size`; returns the (sign-extended) result. */
export function alu(cc: Int32Array, op: number, a: number, b: number, size: number): number {
  let r: number;
  if (size !== 2) {
    a = size === 1 ? (a << 16) >> 16 : (a << 24) >> 24;
    b = size === 1 ? (b << 16) >> 16 : (b << 24) >> 24;
  }
  switch (op) {
    case ALU_ADD:
      r = a + b;
      cc[CC_OP] = K_ADD * 4 + size;
      break;
    case ALU_OR:
      r = a | b;
      cc[CC_OP] = K_LOGIC * 4 + size;
      break;
    case ALU_ADC:
      r = a + b + getCF(cc);
      cc[CC_OP] = K_ADC * 4 + size;
      break;
    case ALU_SBB:
      r = a - b - getCF(cc);
      cc[CC_OP] = K_SBB * 4 + size;
      break;
    case ALU_AND:
      r = a & b;
      cc[CC_OP] = K_LOGIC * 4 + size;
      break;
    case ALU_XOR:
      r = a ^ b;
      cc[CC_OP] = K_LOGIC * 4 + size;
      break;
    default: // SUB, CMP
      r = a - b;
      cc[CC_OP] = K_SUB * 4 + size;
      break;
  }
  r = size === 2 ? r | 0 : size === 1 ? (r << 16) >> 16 : (r << 24) >> 24;
  cc[CC_DST] = r;
  cc[CC_SRC1] = a;
  cc[CC_SRC2] = b;
  return r;
}

/** 32-bit ADD, the commonest case, without the size dispatch. */
export function add32(cc: Int32Array, a: number, b: number): number {
  const r = (a + b) | 0;
  cc[CC_OP] = K_ADD * 4 + 2;
  cc[CC_DST] = r;
  cc[CC_SRC1] = a;
  cc[CC_SRC2] = b;
  return r;
}

/** 32-bit SUB/CMP. */
export function sub32(cc: Int32Array, a: number, b: number): number {
  const r = (a - b) | 0;
  cc[CC_OP] = K_SUB * 4 + 2;
  cc[CC_DST] = r;
  cc[CC_SRC1] = a;
  cc[CC_SRC2] = b;
  return r;
}

/** Logic result flags (AND/OR/XOR/TEST): records `r` (sign-extended to `size`). */
export function logic(cc: Int32Array, r: number, size: number): number {
  r = sx(r, size);
  cc[CC_OP] = K_LOGIC * 4 + size;
  cc[CC_DST] = r;
  return r;
}

export function inc(cc: Int32Array, a: number, size: number): number {
  const cf = getCF(cc);
  const r = sx(a + 1, size);
  cc[CC_OP] = K_INC * 4 + size;
  cc[CC_DST] = r;
  cc[CC_SRC2] = cf;
  return r;
}

export function dec(cc: Int32Array, a: number, size: number): number {
  const cf = getCF(cc);
  const r = sx(a - 1, size);
  cc[CC_OP] = K_DEC * 4 + size;
  cc[CC_DST] = r;
  cc[CC_SRC2] = cf;
  return r;
}

export function neg(cc: Int32Array, a: number, size: number): number {
  return alu(cc, ALU_SUB, 0, a, size);
}

const BITS = [8, 16, 32];
const MASK = [0xFF, 0xFFFF, -1];

function setCfOf(cc: Int32Array, cf: number, of: number): void {
  const f = materialize(cc);
  cc[CC_FLAGS] = (f & ~0x801) | (cf & 1) | ((of & 1) << 11);
  cc[CC_OP] = CC_EFLAGS;
}

/**
 * Group-2 shifts and rotates: op = ModRM.reg (ROL ROR RCL RCR SHL SHR SAL SAR), count as given
 * (masked to 5 bits here, as on every CPU since the 286). Returns the result; a zero count leaves
 * value and flags alone.
 */
export function shift(cc: Int32Array, op: number, v: number, count: number, size: number): number {
  count &= 31;
  if (count === 0) return v;
  const bits = BITS[size], m = MASK[size];
  const u = v & m;
  switch (op) {
    case 0: { // ROL
      const c = count & (bits - 1);
      const r = c === 0 ? u : ((u << c) | (u >>> (bits - c))) & m;
      const rs = sx(r, size);
      setCfOf(cc, r & 1, (r & 1) ^ ((rs >>> 31) & 1));
      return rs;
    }
    case 1: { // ROR
      const c = count & (bits - 1);
      const r = c === 0 ? u : ((u >>> c) | (u << (bits - c))) & m;
      const rs = sx(r, size);
      const msb = (rs >>> 31) & 1;
      const msb2 = (r >>> (bits - 2)) & 1;
      setCfOf(cc, msb, msb ^ msb2);
      return rs;
    }
    case 2: { // RCL
      const c = size === 2 ? count : count % (bits + 1);
      if (c === 0) return v;
      const cf = getCF(cc);
      // Rotate the (bits+1)-bit quantity CF:value left by c.
      let r: number, newCf: number;
      if (c === 1) {
        r = ((u << 1) | cf) & m;
        newCf = (u >>> (bits - 1)) & 1;
      } else {
        const hi = bits - c + 1; // bits of u that wrap to the low side (after CF)
        r = ((u << c) | (cf << (c - 1)) | (hi >= 32 ? 0 : u >>> hi)) & m;
        newCf = (u >>> (bits - c)) & 1;
      }
      // OF is defined for c = 1 (MSB(result) XOR CF = the two top bits of the value); for larger
      // counts Intel keeps that first-step value (AMD computes it from the last step).
      setCfOf(cc, newCf, ((u >>> (bits - 1)) ^ (u >>> (bits - 2))) & 1);
      return sx(r, size);
    }
    case 3: { // RCR
      const c = size === 2 ? count : count % (bits + 1);
      if (c === 0) return v;
      const cf = getCF(cc);
      let r: number, newCf: number;
      // Defined for c = 1: MSB before XOR CF; Intel gives the same for larger counts (AMD gives
      // MSB(result) XOR the next bit).
      const of = ((u >>> (bits - 1)) ^ cf) & 1;
      if (c === 1) {
        r = ((u >>> 1) | (cf << (bits - 1))) & m;
        newCf = u & 1;
      } else {
        r = ((u >>> c) | (cf << (bits - c)) | (u << (bits - c + 1))) & m;
        newCf = (u >>> (c - 1)) & 1;
      }
      setCfOf(cc, newCf, of);
      return sx(r, size);
    }
    case 4:
    case 6: { // SHL/SAL
      const r = sx(u << count, size);
      cc[CC_OP] = K_SHL * 4 + size;
      cc[CC_DST] = r;
      cc[CC_SRC1] = sx(u, size);
      cc[CC_SRC2] = count;
      return r;
    }
    case 5: { // SHR
      const r = count >= bits ? 0 : sx(u >>> count, size);
      cc[CC_OP] = K_SHR * 4 + size;
      cc[CC_DST] = r;
      cc[CC_SRC1] = sx(u, size);
      cc[CC_SRC2] = count;
      return r;
    }
    default: { // SAR
      const s = sx(u, size);
      const r = s >> count;
      cc[CC_OP] = K_SAR * 4 + size;
      cc[CC_DST] = r;
      cc[CC_SRC1] = s;
      cc[CC_SRC2] = count;
      return r;
    }
  }
}

/** SHLD (left = true) / SHRD: shifts `dst`, filling from `src`. size 1 or 2. */
export function shiftDouble(
  cc: Int32Array,
  left: boolean,
  dst: number,
  src: number,
  count: number,
  size: number,
): number {
  count &= 31;
  if (count === 0) return dst;
  const m = MASK[size];
  let r: number, cf: number;
  const d = dst & m, s = src & m;
  if (size === 2) {
    if (left) {
      r = (d << count) | (s >>> (32 - count));
      cf = (d >>> (32 - count)) & 1;
    } else {
      r = (d >>> count) | (s << (32 - count));
      cf = (d >>> (count - 1)) & 1;
    }
  } else {
    // 16-bit counts above 16 are undefined; Intel P6 and later (our CPUID vendor) shift the
    // 48-bit dst:src:dst (SHLD) or dst:src:dst right (SHRD), measured on Intel hardware.
    if (left) {
      r = count <= 16
        ? ((d << count) | (s >>> (16 - count))) & 0xFFFF
        : ((s << (count - 16)) | (d >>> (32 - count))) & 0xFFFF;
      cf = count <= 16 ? (d >>> (16 - count)) & 1 : (s >>> (32 - count)) & 1;
    } else {
      const cat = (s << 16) | d; // src:dst
      r = (count < 32 ? (cat >>> count) | (count > 16 ? d << (32 - count) : 0) : 0) & 0xFFFF;
      cf = (cat >>> (count - 1)) & 1;
    }
  }
  const rs = sx(r, size);
  const f = materialize(cc);
  const of = ((rs ^ sx(d, size)) >>> 31) & 1; // sign change (defined for count 1)
  // SF ZF PF from the result; AF undefined (clear); CF last bit out; OF as above.
  cc[CC_OP] = K_LOGIC * 4 + size;
  cc[CC_DST] = rs;
  const status = (rs === 0 ? 0x40 : 0) | (rs < 0 ? 0x80 : 0) | parity(rs) | cf | (of << 11);
  cc[CC_FLAGS] = (f & ~0x8D5) | status;
  cc[CC_OP] = CC_EFLAGS;
  return rs;
}

function parity(v: number): number {
  let x = v & 0xFF;
  x ^= x >> 4;
  x ^= x >> 2;
  x ^= x >> 1;
  return x & 1 ? 0 : 4;
}

/** Sets CF to `bit` keeping the other flags (BT family, and others that write CF only). */
export function setCF(cc: Int32Array, bit: number): void {
  const f = materialize(cc);
  cc[CC_FLAGS] = (f & ~1) | (bit & 1);
}

/** BSF/BSR: returns the index, or -1 for a zero source (ZF set, destination unchanged). */
export function bitScan(cc: Int32Array, v: number, reverse: boolean, size: number): number {
  const u = v & MASK[size];
  const f = materialize(cc);
  if (u === 0) {
    cc[CC_FLAGS] = f | 0x40;
    return -1;
  }
  const idx = reverse ? 31 - Math.clz32(u) : 31 - Math.clz32(u & -u);
  cc[CC_FLAGS] = f & ~0x40;
  return idx;
}

/** The high 32 bits of the unsigned 64-bit product a * b. */
export function mulHighU32(a: number, b: number): number {
  const aL = a & 0xFFFF, aH = a >>> 16, bL = b & 0xFFFF, bH = b >>> 16;
  const ll = aL * bL, lh = aL * bH, hl = aH * bL, hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xFFFF) + (hl & 0xFFFF);
  return (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) | 0;
}

/** The high 32 bits of the signed 64-bit product a * b. */
export function mulHighS32(a: number, b: number): number {
  let h = mulHighU32(a, b);
  if (a < 0) h = (h - b) | 0;
  if (b < 0) h = (h - a) | 0;
  return h;
}

/** Records MUL/IMUL flags: CF = OF = `overflow`; SF ZF PF from `low` (undefined by the SDM). */
export function mulFlags(cc: Int32Array, low: number, overflow: boolean, size: number): void {
  cc[CC_OP] = 10 * 4 + size;
  cc[CC_DST] = sx(low, size);
  cc[CC_SRC2] = overflow ? 1 : 0;
}

/** Scratch results of divide64: quotient and remainder. */
export const DIV_RESULT = new Int32Array(2);

/**
 * Unsigned 64/32 divide of hi:lo by d (d != 0): returns false when the quotient does not fit in
 * 32 bits (#DE). Exact, using 16-bit long division steps that stay below 2^53.
 */
export function divideU64(hi: number, lo: number, d: number): boolean {
  const uh = hi >>> 0, ul = lo >>> 0, ud = d >>> 0;
  if (uh >= ud) return false;
  let t = uh * 65536 + (ul >>> 16);
  let q1 = Math.floor(t / ud);
  let r1 = t - q1 * ud;
  if (r1 < 0) (q1--, r1 += ud);
  else if (r1 >= ud) (q1++, r1 -= ud);
  t = r1 * 65536 + (ul & 0xFFFF);
  let q2 = Math.floor(t / ud);
  let r2 = t - q2 * ud;
  if (r2 < 0) (q2--, r2 += ud);
  else if (r2 >= ud) (q2++, r2 -= ud);
  DIV_RESULT[0] = q1 * 65536 + q2;
  DIV_RESULT[1] = r2;
  return true;
}

/** Signed 64/32 divide of hi:lo by d: false on #DE (zero or quotient overflow). */
export function divideS64(hi: number, lo: number, d: number): boolean {
  if (d === 0) return false;
  const neg = hi < 0;
  let ah = hi, al = lo;
  if (neg) {
    al = (~lo + 1) | 0;
    ah = (~hi + (al === 0 ? 1 : 0)) | 0;
  }
  const dneg = d < 0;
  const ad = dneg ? -d : d; // -(-2^31) = 2^31 as a double: fine for divideU64's >>> 0
  if (!divideU64(ah, al, ad | 0)) return false;
  const q = DIV_RESULT[0] >>> 0, r = DIV_RESULT[1] >>> 0;
  const qneg = neg !== dneg;
  if (qneg ? q > 0x80000000 : q > 0x7FFFFFFF) return false;
  DIV_RESULT[0] = qneg ? -q | 0 : q | 0;
  DIV_RESULT[1] = neg ? -r | 0 : r | 0;
  return true;
}

/** Whether OF is set (for INTO). */
export function overflowSet(cc: Int32Array): boolean {
  return getOF(cc);
}
