/**
 * Lazy EFLAGS (the QEMU/Bochs "cc_op" technique): arithmetic records what it did in `cc` and the
 * six status flags are computed only where something consumes them (Jcc, SETcc, PUSHF...).
 * HOT: used by every ALU instruction. Layout of the `cc` Int32Array:
 *   cc[CC_OP]   kind * 4 + size (size 0 = 8, 1 = 16, 2 = 32 bits), or CC_EFLAGS
 *   cc[CC_DST]  the result, sign-extended from its size to 32 bits
 *   cc[CC_SRC1] first operand (sign-extended);  cc[CC_SRC2] second operand, shift count, saved CF...
 *   cc[CC_FLAGS] the EFLAGS word; its status bits are valid only while cc[CC_OP] === CC_EFLAGS.
 */

export const CC_OP = 0;
export const CC_DST = 1;
export const CC_SRC1 = 2;
export const CC_SRC2 = 3;
export const CC_FLAGS = 4;

// Kinds; an op is kind * 4 + size.
export const K_ADD = 0;
export const K_ADC = 1;
export const K_SUB = 2;
export const K_SBB = 3;
export const K_LOGIC = 4;
export const K_INC = 5; // SRC2 = CF before the instruction
export const K_DEC = 6; // SRC2 = CF before the instruction
export const K_SHL = 7; // SRC1 = value before, SRC2 = count (1..31)
export const K_SHR = 8;
export const K_SAR = 9;
export const K_MUL = 10; // SRC2 = CF = OF (0/1)
/** The status flags live in cc[CC_FLAGS]. */
export const CC_EFLAGS = 44;

const STATUS = 0x8D5; // CF PF AF ZF SF OF

/** PARITY[b] = PF for the low byte b (set when the number of one bits is even). */
export const PARITY: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let bits = 0;
    for (let v = i; v; v >>= 1) bits += v & 1;
    t[i] = bits & 1 ? 0 : 4;
  }
  return t;
})();

const MASKS = [0xFF, 0xFFFF, -1, 0];
const BITS = [8, 16, 32, 0];

/** Carry flag (0 or 1). */
export function getCF(cc: Int32Array): number {
  const op = cc[CC_OP];
  const size = op & 3;
  const m = MASKS[size];
  switch (op >> 2) {
    case K_ADD:
      return ((cc[CC_DST] & m) >>> 0) < ((cc[CC_SRC1] & m) >>> 0) ? 1 : 0;
    case K_ADC: {
      const d = (cc[CC_DST] & m) >>> 0, s = (cc[CC_SRC1] & m) >>> 0;
      const cin = (cc[CC_DST] - cc[CC_SRC1] - cc[CC_SRC2]) & 1;
      return (cin ? d <= s : d < s) ? 1 : 0;
    }
    case K_SUB:
      return ((cc[CC_SRC1] & m) >>> 0) < ((cc[CC_SRC2] & m) >>> 0) ? 1 : 0;
    case K_SBB: {
      const a = (cc[CC_SRC1] & m) >>> 0, b = (cc[CC_SRC2] & m) >>> 0;
      const cin = (cc[CC_SRC1] - cc[CC_SRC2] - cc[CC_DST]) & 1;
      return (cin ? a <= b : a < b) ? 1 : 0;
    }
    case K_LOGIC:
      return 0;
    case K_INC:
    case K_DEC:
    case K_MUL:
      return cc[CC_SRC2] & 1;
    case K_SHL: {
      const bits = BITS[size];
      return (((cc[CC_SRC1] & m) << (cc[CC_SRC2] - 1)) >>> (bits - 1)) & 1;
    }
    case K_SHR:
      return ((cc[CC_SRC1] & m) >>> (cc[CC_SRC2] - 1)) & 1;
    case K_SAR:
      return (cc[CC_SRC1] >> (cc[CC_SRC2] - 1)) & 1;
    default:
      return cc[CC_FLAGS] & 1;
  }
}

/** Zero flag as a boolean. */
export function getZF(cc: Int32Array): boolean {
  return cc[CC_OP] === CC_EFLAGS ? (cc[CC_FLAGS] & 0x40) !== 0 : cc[CC_DST] === 0;
}

/** Sign flag as a boolean. */
export function getSF(cc: Int32Array): boolean {
  return cc[CC_OP] === CC_EFLAGS ? (cc[CC_FLAGS] & 0x80) !== 0 : cc[CC_DST] < 0;
}

/** Overflow flag as a boolean. */
export function getOF(cc: Int32Array): boolean {
  const op = cc[CC_OP];
  const d = cc[CC_DST];
  switch (op >> 2) {
    case K_ADD:
    case K_ADC:
      return ((cc[CC_SRC1] ^ d) & (cc[CC_SRC2] ^ d)) < 0;
    case K_SUB:
    case K_SBB:
      return ((cc[CC_SRC1] ^ cc[CC_SRC2]) & (cc[CC_SRC1] ^ d)) < 0;
    case K_LOGIC:
    case K_SAR:
      return false;
    case K_INC:
      return d === MIN_SIGNED[op & 3];
    case K_DEC:
      return d === MAX_SIGNED[op & 3];
    case K_SHL:
      return ((getCF(cc) ^ (d >>> 31)) & 1) !== 0;
    case K_SHR:
      return cc[CC_SRC1] < 0; // MSB of the original operand (defined for count 1)
    case K_MUL:
      return cc[CC_SRC2] !== 0;
    default:
      return (cc[CC_FLAGS] & 0x800) !== 0;
  }
}

const MIN_SIGNED = [-128, -32768, -2147483648, 0];
const MAX_SIGNED = [127, 32767, 2147483647, 0];

/** Parity flag as a boolean. */
export function getPF(cc: Int32Array): boolean {
  return cc[CC_OP] === CC_EFLAGS ? (cc[CC_FLAGS] & 4) !== 0 : PARITY[cc[CC_DST] & 0xFF] !== 0;
}

/** Auxiliary-carry flag (0 or 0x10). */
export function getAF(cc: Int32Array): number {
  const op = cc[CC_OP];
  switch (op >> 2) {
    case K_ADD:
    case K_ADC:
    case K_SUB:
    case K_SBB:
      return (cc[CC_SRC1] ^ cc[CC_SRC2] ^ cc[CC_DST]) & 0x10;
    case K_INC:
      return (cc[CC_DST] & 0xF) === 0 ? 0x10 : 0;
    case K_DEC:
      return (cc[CC_DST] & 0xF) === 0xF ? 0x10 : 0;
    case 11:
      return cc[CC_FLAGS] & 0x10;
    default:
      return 0;
  }
}

/** The six status flags as EFLAGS bits. */
export function statusFlags(cc: Int32Array): number {
  if (cc[CC_OP] === CC_EFLAGS) return cc[CC_FLAGS] & STATUS;
  const d = cc[CC_DST];
  return getCF(cc) | PARITY[d & 0xFF] | getAF(cc) | (d === 0 ? 0x40 : 0) | (d < 0 ? 0x80 : 0) |
    (getOF(cc) ? 0x800 : 0);
}

/** Materializes the status flags into cc[CC_FLAGS] and switches to CC_EFLAGS; returns EFLAGS. */
export function materialize(cc: Int32Array): number {
  if (cc[CC_OP] !== CC_EFLAGS) {
    cc[CC_FLAGS] = (cc[CC_FLAGS] & ~STATUS) | statusFlags(cc);
    cc[CC_OP] = CC_EFLAGS;
  }
  return cc[CC_FLAGS];
}

/**
 * Evaluates condition code `cond` (the low nibble of Jcc/SETcc/CMOVcc: O NO B AE E NE BE A S NS P
 * NP L GE LE G).
 */
export function testCondition(cc: Int32Array, cond: number): boolean {
  const op = cc[CC_OP];
  // Fast paths for the common producers: CMP/SUB and logic results.
  if ((op >> 2) === K_SUB) {
    const a = cc[CC_SRC1], b = cc[CC_SRC2];
    switch (cond) {
      case 2:
        return getCF(cc) !== 0;
      case 3:
        return getCF(cc) === 0;
      case 4:
        return cc[CC_DST] === 0;
      case 5:
        return cc[CC_DST] !== 0;
      case 0xC:
        return a < b;
      case 0xD:
        return a >= b;
      case 0xE:
        return a <= b;
      case 0xF:
        return a > b;
    }
  }
  let r: boolean;
  switch (cond >> 1) {
    case 0:
      r = getOF(cc);
      break;
    case 1:
      r = getCF(cc) !== 0;
      break;
    case 2:
      r = getZF(cc);
      break;
    case 3:
      r = getCF(cc) !== 0 || getZF(cc);
      break;
    case 4:
      r = getSF(cc);
      break;
    case 5:
      r = getPF(cc);
      break;
    case 6:
      r = getSF(cc) !== getOF(cc);
      break;
    default:
      r = getZF(cc) || getSF(cc) !== getOF(cc);
      break;
  }
  return (cond & 1) !== 0 ? !r : r;
}
