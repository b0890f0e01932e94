/**
 * A small table-driven disassembler (Intel syntax, lower case): decodes one instruction with the
 * same OPCODE_FORMS and DECODE_ATTRS the CPU's decoder reads. Used by the `kill -USR2` state dump,
 * `--trace`, and the differential tests' mismatch reports (independently of their generator, so a
 * report shows what the bytes mean). x87 escapes (D8-DF, decoded by the FPU, not in the table) are
 * shown as `esc` with their ModRM operand; anything else the table lacks as `(bad)`.
 */
import { DECODE_ATTRS, HAS_MODRM, OPCODE_FORMS, type OpcodeForm } from "./opcode_table.ts";

/** One decoded instruction: the form the bytes select (null if none) and its text. */
export interface Decoded {
  readonly form: OpcodeForm | null;
  readonly length: number;
  readonly text: string;
}

const REG32 = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const REG16 = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"];
const REG8 = ["al", "cl", "dl", "bl", "ah", "ch", "dh", "bh"];
const MEM16 = ["bx+si", "bx+di", "bp+si", "bp+di", "si", "di", "bp", "bx"];
const SREGS = new Set(["ES", "CS", "SS", "DS", "FS", "GS"]);
const SEGS: Record<number, string> = {
  0x26: "es",
  0x2E: "cs",
  0x36: "ss",
  0x3E: "ds",
  0x64: "fs",
  0x65: "gs",
};

function formsByKey(): Map<number, OpcodeForm[]> {
  const m = new Map<number, OpcodeForm[]>();
  for (const f of OPCODE_FORMS) {
    const list = m.get(f.opcode) ?? [];
    list.push(f);
    m.set(f.opcode, list);
  }
  return m;
}
const FORMS = formsByKey();

function hex(v: number): string {
  return "0x" + (v >>> 0).toString(16);
}

function signedHex(v: number): string {
  return v < 0 ? "-" + hex(-v) : "+" + hex(v);
}

/**
 * Decodes the instruction at the start of `code`, which sits at offset `eip` in its code segment;
 * `code32` is the segment's default size (CS.D).
 */
export function disassemble(code: Uint8Array, eip: number, code32 = true): Decoded {
  let p = 0;
  const def = code32 ? 32 : 16;
  let opsize = def, addrsize = def, seg = "", rep = "", lock = false;
  for (; p < code.length; p++) {
    const b = code[p];
    if (b === 0x66) opsize = 48 - def;
    else if (b === 0x67) addrsize = 48 - def;
    else if (b === 0xF0) lock = true;
    else if (b === 0xF2) rep = "repne ";
    else if (b === 0xF3) rep = "rep ";
    else if (SEGS[b] !== undefined) seg = SEGS[b];
    else break;
  }
  let opcode = code[p++];
  if (opcode === 0x0F) opcode = 0x100 + code[p++];
  const candidates = FORMS.get(opcode) ?? [];
  const x87 = opcode >= 0xD8 && opcode <= 0xDF;
  const hasModrm = x87 || (DECODE_ATTRS[opcode] & HAS_MODRM) !== 0;
  const modrm = hasModrm ? code[p++] : 0;
  const mod = modrm >> 6, regField = (modrm >> 3) & 7, rm = modrm & 7;
  // An exact row wins over a Z row's expansion landing on the same opcode.
  const fits = candidates.filter((f) => f.ext < 0 || f.ext === regField);
  const form = fits.find((f) => !f.operands.some((o) => o[0] === "Z")) ?? fits[0] ?? null;
  if (form === null && !x87) return { form: null, length: p, text: `(bad) ${hex(opcode)}` };

  // Memory operand text, read before the immediates that follow it.
  let memExpr = "";
  if (hasModrm && mod !== 3) {
    const parts: string[] = [];
    let disp = 0;
    if (addrsize === 16) {
      if (mod === 0 && rm === 6) {
        disp = code[p] | (code[p + 1] << 8);
        p += 2;
      } else parts.push(MEM16[rm]);
      if (mod === 1) disp = (code[p++] << 24) >> 24;
      if (mod === 2) {
        disp = code[p] | (code[p + 1] << 8);
        p += 2;
      }
    } else {
      let base = rm;
      if (rm === 4) {
        const sib = code[p++];
        const scale = 1 << (sib >> 6), index = (sib >> 3) & 7;
        base = sib & 7;
        if (!(base === 5 && mod === 0)) parts.push(REG32[base]);
        else base = -1;
        if (index !== 4) parts.push(`${REG32[index]}*${scale}`);
      } else if (!(rm === 5 && mod === 0)) {
        parts.push(REG32[rm]);
      } else base = -1;
      if (mod === 1) disp = (code[p++] << 24) >> 24;
      else if (mod === 2 || base === -1) {
        disp = (code[p] | (code[p + 1] << 8) | (code[p + 2] << 16) | (code[p + 3] << 24)) | 0;
        p += 4;
      }
    }
    let e = parts.join("+");
    if (disp !== 0 || e === "") e = e === "" ? hex(disp) : e + signedHex(disp);
    memExpr = `${seg === "" ? "" : seg + ":"}[${e}]`;
  }
  if (form === null) {
    const operand = mod === 3 ? `st${rm}` : memExpr;
    return { form: null, length: p, text: `esc ${hex(opcode)}/${regField}, ${operand}` };
  }

  const regName = (r: number, bits: number) => bits === 8 ? REG8[r] : bits === 16 ? REG16[r] : REG32[r];
  const sizeOf = (op: string): number => {
    const s = op[op.length - 1];
    if (op === "Ibs") return 8;
    if (s === "b") return 8;
    if (s === "w") return 16;
    if (s === "d") return 32;
    return opsize;
  };
  const ptr = (bits: number) => bits === 8 ? "byte " : bits === 16 ? "word " : bits === 32 ? "dword " : "";
  const imm = (bytes: number, signed: boolean): number => {
    let v = 0;
    for (let i = 0; i < bytes; i++) v |= code[p + i] << (8 * i);
    p += bytes;
    if (signed && bytes === 1) v = (v << 24) >> 24;
    if (bytes === 2 && signed) v = (v << 16) >> 16;
    return v;
  };
  const out: string[] = [];
  for (const op of form.operands) {
    const k = SREGS.has(op) ? "" : op[0];
    if (k === "E" || k === "M") {
      if (mod === 3) out.push(regName(rm, sizeOf(op)));
      else out.push((op === "M" ? "" : op === "Mq" ? "qword " : ptr(sizeOf(op))) + memExpr);
    } else if (k === "G") out.push(regName(regField, sizeOf(op)));
    else if (k === "Z") out.push(regName(opcode & 7, sizeOf(op)));
    else if (op === "Ib") out.push(hex(imm(1, false)));
    else if (op === "Ibs") out.push(hex(imm(1, true) & (opsize === 16 ? 0xFFFF : -1)));
    else if (op === "Iw") out.push(hex(imm(2, false)));
    else if (op === "Iz" || op === "Iv") out.push(hex(imm(opsize / 8, false)));
    else if (op === "Jb" || op === "Jz") {
      const rel = op === "Jb" ? imm(1, true) : imm(opsize / 8, true);
      out.push(hex((eip + p + rel) & (opsize === 16 ? 0xFFFF : -1)));
    } else if (k === "O") {
      const a = imm(addrsize / 8, false);
      out.push(`${ptr(sizeOf(op))}${seg === "" ? "" : seg + ":"}[${hex(a)}]`);
    } else if (op === "eAX") out.push(opsize === 16 ? "ax" : "eax");
    else if (op === "Ap") {
      const off = imm(opsize / 8, false);
      out.push(`${hex(imm(2, false))}:${hex(off)}`);
    } else if (op === "Sw") out.push(["es", "cs", "ss", "ds", "fs", "gs", "?", "?"][regField]);
    else if (op === "Cd") out.push(`cr${regField}`);
    else if (op === "Dd") out.push(`dr${regField}`);
    else if (op === "Rd") out.push(REG32[rm]);
    else if (op === "Xv") continue;
    else out.push(op.toLowerCase());
  }
  let mn = form.mnemonic.toLowerCase();
  if (mn === "jmpf" || mn === "callf") {
    mn = form.operands[0] === "Ap" ? mn.slice(0, -1) : mn.slice(0, -1) + " far";
  }
  if (form.operands.includes("Xv")) mn += opsize === 16 ? "w" : "d";
  if (opsize === 16 && ["pusha", "popa", "pushf", "popf"].includes(mn)) mn += "w";
  if (opsize === 16 && mn === "cbw") mn = "cbw";
  else if (mn === "cbw") mn = "cwde";
  if (opsize === 32 && mn === "cwd") mn = "cdq";
  if (mn === "jcxz" && addrsize === 32) mn = "jecxz";
  const pre = (lock ? "lock " : "") + rep;
  return { form, length: p, text: `${pre}${mn}${out.length > 0 ? " " + out.join(", ") : ""}` };
}

/** Decodes every instruction in `code` (at most 15 bytes past its end for the last one). */
export function disassembleAll(code: Uint8Array, eip: number, code32 = true): Decoded[] {
  const out: Decoded[] = [];
  for (let p = 0; p < code.length;) {
    const d = disassemble(code.subarray(p), eip + p, code32);
    out.push(d);
    if (d.form === null && d.text.startsWith("(bad)")) break;
    p += d.length;
  }
  return out;
}
