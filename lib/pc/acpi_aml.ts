/**
 * Just enough of an AML encoder (ACPI 6.5 ch. 20, "ACPI Machine Language Specification") for a
 * DSDT of named data: Scope, Device, Name, Package, Buffer and integer constants, with PkgLength
 * and NameString encoded as §20.2 says. What ASL would compile `Name (_S5, Package () {5, 5, 0, 0})`
 * into, without the compiler. Left out: methods, operation regions, fields and every other opcode.
 */

/** An encoded AML term: a list of bytes. */
export type Aml = number[];

// Opcodes (ACPI 6.5 §20.2.5 and §20.3).
const ZERO_OP = 0x00;
const ONE_OP = 0x01;
const NAME_OP = 0x08;
const BYTE_PREFIX = 0x0A;
const WORD_PREFIX = 0x0B;
const DWORD_PREFIX = 0x0C;
const QWORD_PREFIX = 0x0E;
const SCOPE_OP = 0x10;
const BUFFER_OP = 0x11;
const PACKAGE_OP = 0x12;
const EXT_OP_PREFIX = 0x5B;
const DEVICE_OP = 0x82; // after EXT_OP_PREFIX
const ROOT_CHAR = 0x5C; // '\'
const DUAL_NAME_PREFIX = 0x2E;
const MULTI_NAME_PREFIX = 0x2F;

/**
 * PkgLength (§20.2.4): the length of what follows the opcode, counting the PkgLength bytes
 * themselves. One byte up to 63; otherwise bits 7-6 of the lead byte say how many bytes follow,
 * its bits 3-0 are the low nibble and each following byte the next eight bits.
 */
export function amlPkgLength(contentLength: number): Aml {
  if (contentLength + 1 <= 0x3F) return [contentLength + 1];
  for (let follow = 1; follow <= 3; follow++) {
    const total = contentLength + 1 + follow;
    if (total >= 2 ** (4 + 8 * follow)) continue;
    const bytes = [(follow << 6) | (total & 0xF)];
    for (let i = 0; i < follow; i++) bytes.push((total >>> (4 + 8 * i)) & 0xFF);
    return bytes;
  }
  throw new RangeError(`AML package of ${contentLength} bytes is too long for a PkgLength`);
}

/** One NameSeg: four characters, a lead of A-Z or '_' then A-Z, 0-9 or '_'; short ones pad with '_'. */
function nameSeg(seg: string): Aml {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) throw new RangeError(`"${seg}" is not an AML NameSeg`);
  return [...seg.padEnd(4, "_")].map((c) => c.charCodeAt(0));
}

/** A NameString (§20.2.2): an optional `\` root prefix, then one or more dot-separated NameSegs. */
export function amlNameString(path: string): Aml {
  const rooted = path.startsWith("\\");
  const segs = (rooted ? path.slice(1) : path).split(".").map(nameSeg);
  const prefix = rooted ? [ROOT_CHAR] : [];
  if (segs.length === 1) return [...prefix, ...segs[0]];
  if (segs.length === 2) return [...prefix, DUAL_NAME_PREFIX, ...segs[0], ...segs[1]];
  return [...prefix, MULTI_NAME_PREFIX, segs.length, ...segs.flat()];
}

/** An integer constant in its shortest encoding (§20.2.3 ComputationalData). */
export function amlInteger(value: number | bigint): Aml {
  const v = BigInt(value);
  if (v < 0n || v > 0xFFFF_FFFF_FFFF_FFFFn) throw new RangeError(`${value} is not an AML integer`);
  if (v === 0n) return [ZERO_OP];
  if (v === 1n) return [ONE_OP];
  const [prefix, size] = v <= 0xFFn
    ? [BYTE_PREFIX, 1]
    : v <= 0xFFFFn
    ? [WORD_PREFIX, 2]
    : v <= 0xFFFF_FFFFn
    ? [DWORD_PREFIX, 4]
    : [QWORD_PREFIX, 8];
  const bytes = [prefix];
  for (let i = 0; i < size; i++) bytes.push(Number((v >> BigInt(8 * i)) & 0xFFn));
  return bytes;
}

/** `Name (name, object)`. */
export function amlName(name: string, object: Aml): Aml {
  return [NAME_OP, ...amlNameString(name), ...object];
}

/** `Scope (name) { terms }`. */
export function amlScope(name: string, terms: Aml[]): Aml {
  const body = [...amlNameString(name), ...terms.flat()];
  return [SCOPE_OP, ...amlPkgLength(body.length), ...body];
}

/** `Device (name) { terms }`. */
export function amlDevice(name: string, terms: Aml[]): Aml {
  const body = [...amlNameString(name), ...terms.flat()];
  return [EXT_OP_PREFIX, DEVICE_OP, ...amlPkgLength(body.length), ...body];
}

/** `Package () { elements }`: NumElements is one byte, so at most 255 elements. */
export function amlPackage(elements: Aml[]): Aml {
  if (elements.length > 0xFF) throw new RangeError(`AML package of ${elements.length} elements`);
  const body = [elements.length, ...elements.flat()];
  return [PACKAGE_OP, ...amlPkgLength(body.length), ...body];
}

/** `Buffer () { bytes }`, its size given as an integer term. */
export function amlBuffer(bytes: Aml): Aml {
  const body = [...amlInteger(bytes.length), ...bytes];
  return [BUFFER_OP, ...amlPkgLength(body.length), ...body];
}

/**
 * `EisaId ("PNP0A03")` (§19.6.35): three letters packed five bits each into a big-endian word,
 * then four hex digits as two bytes; the result is the integer those four bytes make little-endian.
 */
export function amlEisaId(id: string): Aml {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`"${id}" is not an EISA id`);
  const letter = (i: number) => id.charCodeAt(i) - 0x40;
  const word = (letter(0) << 10) | (letter(1) << 5) | letter(2);
  const product = parseInt(id.slice(3), 16);
  const bytes = [word >> 8, word & 0xFF, product >> 8, product & 0xFF];
  return amlInteger((bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0);
}
