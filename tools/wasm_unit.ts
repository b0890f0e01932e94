/**
 * A minimal WebAssembly back end for one translated unit, for tools/bench_wasm_vs_js.ts (issue #10:
 * JavaScript or WebAssembly, measured). It compiles the decode-cache slots of one unit (the same
 * instructions, in the same order, as lib/x86/jit/translator.ts's JavaScript) into a module with
 * one exported function `unit(n, stopAt) -> n` of the same contract: -1 when the unit does not fit
 * in the budget, else the new retired count, EIP stored at exit; a conditional branch back to the
 * unit's start loops inside while the budget allows, as the JavaScript does.
 *
 * State lives in one imported WebAssembly.Memory (layout below): guest registers are loaded into
 * wasm locals at entry and stored back at exit (v86's way); the lazy-flags record cc[0..4] is the
 * one of lib/x86/lazy_flags.ts, written to memory by every flag producer as the JavaScript does;
 * the soft-TLB fast path (entries hold physical ^ linear, -1 = miss) is inline, and a miss calls
 * an imported JS function (the slow path). Flags are computed in wasm for the ADD/SUB/logic
 * records (what these units produce) and by an imported JS helper (the real materialize /
 * testCondition on a view of the same memory) for any other record.
 * Supported: MOV r/m32 (89 8B), MOVZX r32, r/m8 (0F B6), LEA, the 32-bit ADD OR AND SUB XOR CMP
 * forms 01 03 09 0B 21 23 29 2B 31 33 39 3B (and 05 0D 25 2D 35 3D), 81/83 with register or memory,
 * ROL ROR SHL SHR SAR r32 by an immediate (C1), NOT r32 (F7 /2), Jcc rel8/rel32, NOP. Anything
 * else is refused with the instruction named (`WasmUnsupported`). Faults are not modelled: a slow
 * path that faults throws through the module and the registers in locals are lost (the benchmark
 * never faults; a real back end would write them back first, as v86 does).
 * Not production code: a measuring instrument.
 */

/** Memory layout (byte offsets). */
export const M_REGS = 0; // 8 x i32
export const M_CC = 32; // 5 x i32 (lazy_flags.ts)
export const M_EIP = 64;
export const M_EPOCH = 68;
export const M_SEGBASE = 96; // 8 x i32
export const M_SEGCHECK = 128; // 8 x i32
export const M_PARITY = 256; // 256 bytes (lazy_flags.ts PARITY)
export const M_TLBR = 4096; // 1 << 20 x i32
export const M_TLBW = M_TLBR + (4 << 20);
export const M_RAM = 16 << 20;

export class WasmUnsupported extends Error {}

/** The decoded fields of the unit's instructions, in order (copied from the decode cache). */
export interface UnitSlots {
  op: number[];
  len: number[];
  modrm: number[];
  ea: number[];
  disp: number[];
  imm: number[];
  macc: number[];
  /** EIP of each instruction, plus the EIP after the last. */
  eips: number[];
}

/** What both emitters (this one and js_unit.ts) read of instruction `i` of a unit. */
export function slotFields(u: UnitSlots, i: number) {
  const id = u.op[i], m = u.modrm[i];
  return {
    id,
    imm: u.imm[i],
    next: (u.eips[i] + u.len[i]) | 0,
    g: (m >> 3) & 7,
    rm: m & 7,
    mem: m < 0xC0,
    what: `instruction ${i} at ${(u.eips[i] >>> 0).toString(16)} (dispatch id 0x${id.toString(16)})`,
  };
}

// ---- Byte emission ----

function uleb(out: number[], v: number): void {
  v >>>= 0;
  do {
    let b = v & 0x7F;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
}

function sleb(out: number[], v: number): void {
  v |= 0;
  for (;;) {
    const b = v & 0x7F;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

function section(out: number[], id: number, body: number[]): void {
  out.push(id);
  uleb(out, body.length);
  for (const b of body) out.push(b);
}

function vec(items: number[][]): number[] {
  const out: number[] = [];
  uleb(out, items.length);
  for (const i of items) out.push(...i);
  return out;
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  const out: number[] = [];
  uleb(out, b.length);
  return out.concat(b);
}

const I32 = 0x7F, VOID = 0x40;

/** A function body under construction. */
class Body {
  b: number[] = [];
  op(...x: number[]): this {
    for (const v of x) this.b.push(v);
    return this;
  }
  const(v: number): this {
    this.b.push(0x41);
    sleb(this.b, v);
    return this;
  }
  get(l: number): this {
    return this.#coded([0x20], l);
  }
  set(l: number): this {
    return this.#coded([0x21], l);
  }
  tee(l: number): this {
    return this.#coded([0x22], l);
  }
  load(offset: number, align = 2): this {
    return this.#coded([0x28, align], offset);
  }
  load8u(offset: number): this {
    return this.#coded([0x2D, 0], offset);
  }
  store(offset: number, align = 2): this {
    return this.#coded([0x36, align], offset);
  }
  store8(offset: number): this {
    return this.#coded([0x3A, 0], offset);
  }
  /** Opcode bytes, then an unsigned LEB128 immediate (a local, function, depth or offset). */
  #coded(bytes: number[], v: number): this {
    for (const x of bytes) this.b.push(x);
    uleb(this.b, v);
    return this;
  }
  call(f: number): this {
    return this.#coded([0x10], f);
  }
  br(depth: number): this {
    return this.#coded([0x0C], depth);
  }
  /** Stores the value computed by `value` at the constant address `addr`. */
  storeAt(addr: number, value: () => void): this {
    this.const(0);
    value();
    return this.store(addr);
  }
}

// Opcodes used.
const IF = 0x04, ELSE = 0x05, END = 0x0B, LOOP = 0x03, RETURN = 0x0F, DROP = 0x1A, SELECT = 0x1B;
const EQZ = 0x45, EQ = 0x46, NE = 0x47, LT_S = 0x48, LT_U = 0x49, GT_S = 0x4A, GT_U = 0x4B;
const LE_S = 0x4C, LE_U = 0x4D, GE_S = 0x4E, GE_U = 0x4F;
const ADD = 0x6A, SUB = 0x6B, AND = 0x71, OR = 0x72, XOR = 0x73, SHL = 0x74, SHR_S = 0x75;
const SHR_U = 0x76, ROTL = 0x77, ROTR = 0x78;

// Imported functions (indices), then ours.
const F_READ32 = 0, F_READ8 = 1, F_WRITE32 = 2, F_MATERIALIZE = 3, F_TESTCOND = 4, F_SEGFAULT = 5;
const F_GETCF = 6, F_WRITE8 = 7, F_MAT = 8, F_CF = 9, F_UNIT = 10;

// Locals of unit(): params n, stopAt; the 8 registers; scratch.
const L_N = 0, L_STOP = 1, L_R0 = 2, L_A = 10, L_E = 11, L_V = 12, L_FA = 13, L_FB = 14, L_FR = 15;
const L_O = 16, L_EP = 17, L_T = 18;
const N_LOCALS = 17; // declared beyond the params

/** The imports the module needs (the slow paths), given as JS functions. */
export interface WasmUnitImports {
  /** read32/read8 after a TLB miss or a page-crossing access: fills the TLB entry, returns the value. */
  read32: (lin: number) => number;
  read8: (lin: number) => number;
  write32: (lin: number, v: number) => void;
  /** lazy_flags.ts materialize / testCondition on the cc record in memory (records wasm does not compute). */
  materialize: () => void;
  testCondition: (cond: number) => number;
  /** A segment that is not flat (or an offset near 4 GiB): the checks are not modelled here. */
  segment: (seg: number, offset: number) => void;
  /** lazy_flags.ts getCF for the records wasm does not compute. */
  getCF: () => number;
  write8: (lin: number, v: number) => void;
}

/** cf(): lazy_flags.ts getCF for ADD/SUB/logic/INC/DEC 32 and EFLAGS in wasm, else the import. */
function carryBody(): number[] {
  const c = new Body();
  const OP = 0;
  c.const(0).load(M_CC).tee(OP).const(44).op(EQ, IF, VOID).const(0).load(M_CC + 16).const(1).op(
    AND,
    RETURN,
    END,
  );
  c.get(OP).const(2).op(EQ, IF, VOID).const(0).load(M_CC + 4).const(0).load(M_CC + 8).op(LT_U, RETURN, END);
  c.get(OP).const(10).op(EQ, IF, VOID).const(0).load(M_CC + 8).const(0).load(M_CC + 12).op(LT_U, RETURN, END);
  c.get(OP).const(18).op(EQ).get(OP).const(16).op(EQ, OR, IF, VOID).const(0).op(RETURN, END);
  c.get(OP).const(8).op(EQ, IF, VOID).const(0).load(M_CC + 8).const(0xFF).op(AND);
  c.const(0).load(M_CC + 12).const(0xFF).op(AND, LT_U, RETURN, END);
  c.get(OP).const(22).op(EQ).get(OP).const(26).op(EQ, OR, IF, VOID);
  c.const(0).load(M_CC + 12).const(1).op(AND, RETURN, END);
  c.call(F_GETCF);
  return funcBody([[1, I32]], c.b);
}

/** The module's bytes for the unit; throws WasmUnsupported naming the first instruction it cannot compile. */
export function buildUnitModule(u: UnitSlots, nonce = 0): Uint8Array<ArrayBuffer> {
  const out = [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00];
  // Types: 0 (i32)->i32, 1 (i32)->i32 ... reuse: 0 (i32)->i32, 1 (i32 i32)->(), 2 ()->(), 3 (i32 i32)->i32
  section(
    out,
    1,
    vec([
      [0x60, 1, I32, 1, I32],
      [0x60, 2, I32, I32, 0],
      [0x60, 0, 0],
      [0x60, 2, I32, I32, 1, I32],
      [0x60, 0, 1, I32],
    ]),
  );
  const imp = (field: string, type: number) => [...name("e"), ...name(field), 0x00, type];
  section(
    out,
    2,
    vec([
      imp("read32", 0),
      imp("read8", 0),
      imp("write32", 1),
      imp("materialize", 2),
      imp("testCondition", 0),
      imp("segment", 1),
      imp("getCF", 4),
      imp("write8", 1),
      [...name("e"), ...name("mem"), 0x02, 0x00, 0x01], // memory, min 1 page
    ]),
  );
  section(out, 3, vec([[2], [4], [3]])); // mat: ()->(), cf: ()->i32, unit: (i32 i32)->i32
  section(out, 7, vec([[...name("unit"), 0x00, F_UNIT]]));
  const mat = materializeBody();
  const unit = unitBody(u);
  section(out, 10, vec([mat, carryBody(), unit]));
  // A custom section that makes every build's bytes unique (no compile cache between runs).
  const custom = [...name("nonce")];
  sleb(custom, nonce);
  section(out, 0, custom);
  return new Uint8Array(out);
}

function funcBody(locals: number[][], code: number[]): number[] {
  const body: number[] = [];
  uleb(body, locals.length);
  for (const [count, type] of locals) {
    uleb(body, count);
    body.push(type);
  }
  body.push(...code, END);
  const out: number[] = [];
  uleb(out, body.length);
  return out.concat(body);
}

/**
 * mat(): lazy_flags.ts materialize for the 32-bit ADD (2), SUB (10) and logic (18) records, in
 * wasm; any other record goes to the imported JS materialize. Locals: op d a b f.
 */
function materializeBody(): number[] {
  const c = new Body();
  const OP = 0, D = 1, A = 2, B = 3, F = 4;
  c.const(0).load(M_CC).tee(OP).const(44).op(EQ, IF, VOID, RETURN, END);
  c.get(OP).const(2).op(NE).get(OP).const(10).op(NE, AND).get(OP).const(18).op(NE, AND);
  c.op(IF, VOID).call(F_MATERIALIZE).op(RETURN, END);
  c.const(0).load(M_CC + 4).set(D);
  c.const(0).load(M_CC + 8).set(A);
  c.const(0).load(M_CC + 12).set(B);
  // PF ZF SF
  c.get(D).const(0xFF).op(AND).load8u(M_PARITY);
  c.get(D).op(EQZ).const(6).op(SHL, OR);
  c.get(D).const(0x80000000 | 0).op(AND).const(24).op(SHR_U, OR);
  c.set(F);
  c.get(OP).const(18).op(NE, IF, VOID);
  // AF (add and sub alike)
  c.get(F).get(A).get(B).op(XOR).get(D).op(XOR).const(0x10).op(AND, OR).set(F);
  c.get(OP).const(2).op(EQ, IF, VOID);
  // ADD: CF = d <u a; OF = ((a ^ d) & (b ^ d)) < 0
  c.get(F).get(D).get(A).op(LT_U, OR);
  c.get(A).get(D).op(XOR).get(B).get(D).op(XOR, AND).const(0).op(LT_S).const(11).op(SHL, OR).set(F);
  c.op(ELSE);
  // SUB: CF = a <u b; OF = ((a ^ b) & (a ^ d)) < 0
  c.get(F).get(A).get(B).op(LT_U, OR);
  c.get(A).get(B).op(XOR).get(A).get(D).op(XOR, AND).const(0).op(LT_S).const(11).op(SHL, OR).set(F);
  c.op(END, END);
  c.storeAt(M_CC + 16, () => c.const(0).load(M_CC + 16).const(~0x8D5).op(AND).get(F).op(OR));
  c.storeAt(M_CC, () => c.const(44));
  return funcBody([[5, I32]], c.b);
}

const R = (r: number) => L_R0 + r;

/** unit(n, stopAt): the instructions of `u`. */
function unitBody(u: UnitSlots): number[] {
  const c = new Body();
  const count = u.op.length;
  const start = u.eips[0];
  // if (n + count > stopAt) return -1
  c.get(L_N).const(count).op(ADD).get(L_STOP).op(GT_S, IF, VOID).const(-1).op(RETURN, END);
  for (let r = 0; r < 8; r++) c.const(0).load(M_REGS + 4 * r).set(R(r));
  c.const(0).load(M_EPOCH).set(L_EP);
  const writeBack = () => {
    for (let r = 0; r < 8; r++) c.const(0).get(R(r)).store(M_REGS + 4 * r);
  };
  /** Leaves with EIP = target and the count in n (after `retire` instructions did not run). */
  const exit = (target: number) => {
    c.const(0).const(target).store(M_EIP);
    writeBack();
    c.get(L_N).op(RETURN);
  };
  /** A jump to target with `rest` instructions after it not run: back to the start while the budget allows. */
  const jumpTo = (target: number, rest: number, depth: number) => {
    if (rest !== 0) c.get(L_N).const(rest).op(SUB).set(L_N);
    if (target === start) {
      c.get(L_N).const(count).op(ADD).get(L_STOP).op(LE_S, IF, VOID).br(1 + depth).op(END);
    }
    exit(target);
  };
  /** The stack check of stack.ts for a non-flat SS (the import refuses it). */
  const stackCheck = (sp: () => void) => {
    c.const(0).load(M_SEGCHECK + 8).op(IF, VOID).const(2);
    sp();
    c.call(F_SEGFAULT).op(END);
  };
  c.op(LOOP, VOID); // the unit's own loop (depth 0 at top level)
  c.get(L_N).const(count).op(ADD).set(L_N);
  let depth = 0; // blocks open inside the loop
  let flagsIn = "";
  const ccStore = (op: number) => {
    c.const(0).const(op).store(M_CC);
    c.const(0).get(L_FR).store(M_CC + 4);
    c.const(0).get(L_FA).store(M_CC + 8);
    c.const(0).get(L_FB).store(M_CC + 12);
  };
  const epochCheck = (i: number, next: number) => {
    if (i === count - 1) return;
    c.const(0).load(M_EPOCH).get(L_EP).op(NE, IF, VOID);
    c.get(L_N).const(count - i - 1).op(SUB).set(L_N);
    exit(next);
    c.op(END);
  };
  /** Pushes the offset of the slot's memory operand (base + index << scale + displacement). */
  const offset = (i: number) => {
    const e = u.ea[i];
    const b = e & 15, x = (e >> 4) & 15, s = (e >> 8) & 3;
    if ((e & (1 << 15)) !== 0) throw new WasmUnsupported("16-bit addressing");
    let parts = 0;
    if (b !== 8) {
      c.get(R(b));
      parts++;
    }
    if (x !== 8) {
      c.get(R(x));
      if (s !== 0) c.const(s).op(SHL);
      if (parts++ > 0) c.op(ADD);
    }
    if (u.disp[i] !== 0 || parts === 0) {
      c.const(u.disp[i]);
      if (parts++ > 0) c.op(ADD);
    }
  };
  /** Leaves the linear address of the slot's memory operand in L_A. */
  const address = (i: number) => {
    const seg = (u.ea[i] >> 12) & 7;
    offset(i);
    c.set(L_O);
    // segCheck[seg] !== 0 || o >u 0xFFFFFFF8: the check (not modelled: the import refuses)
    c.const(0).load(M_SEGCHECK + 4 * seg).get(L_O).const(0xFFFFFFF8 | 0).op(GT_U, OR);
    c.op(IF, VOID).const(seg).get(L_O).call(F_SEGFAULT).op(END);
    c.get(L_O).const(0).load(M_SEGBASE + 4 * seg).op(ADD).set(L_A);
  };
  /** Pushes read32(L_A) with the TLB fast path inline. */
  const read32 = () => {
    c.get(L_A).const(12).op(SHR_U).const(2).op(SHL).load(M_TLBR).tee(L_E).const(-1).op(NE);
    c.get(L_A).const(0xFFF).op(AND).const(0xFFC).op(LE_U, AND);
    c.op(IF, I32).get(L_E).get(L_A).op(XOR).load(M_RAM, 0).op(ELSE).get(L_A).call(F_READ32).op(END);
  };
  const read8 = () => {
    c.get(L_A).const(12).op(SHR_U).const(2).op(SHL).load(M_TLBR).tee(L_E).const(-1).op(NE);
    c.op(IF, I32).get(L_E).get(L_A).op(XOR).load8u(M_RAM).op(ELSE).get(L_A).call(F_READ8).op(END);
  };
  /** write32(L_A, L_V) with the TLB fast path inline. */
  const write32 = () => {
    c.get(L_A).const(12).op(SHR_U).const(2).op(SHL).load(M_TLBW).tee(L_E).const(-1).op(NE);
    c.get(L_A).const(0xFFF).op(AND).const(0xFFC).op(LE_U, AND);
    c.op(IF, VOID).get(L_E).get(L_A).op(XOR).get(L_V).store(M_RAM, 0);
    c.op(ELSE).get(L_A).get(L_V).call(F_WRITE32).op(END);
  };
  /** Pushes 8-bit register r (AL CL DL BL AH CH DH BH), zero-extended. */
  const getR8 = (r: number) => {
    c.get(R(r & 3));
    if (r >= 4) c.const(8).op(SHR_U);
    c.const(0xFF).op(AND);
  };
  /** Sets 8-bit register r to the low byte of what `value` pushes. */
  const setR8 = (r: number, value: () => void) => {
    const sh = r >= 4 ? 8 : 0;
    c.get(R(r & 3)).const(~(0xFF << sh)).op(AND);
    value();
    c.const(0xFF).op(AND);
    if (sh !== 0) c.const(sh).op(SHL);
    c.op(OR).set(R(r & 3));
  };
  const sx8 = () => c.const(24).op(SHL).const(24).op(SHR_S);
  /** aluInline8 of the translator: operands and result sign-extended from 8 bits, op = kind x 4. */
  const alu8 = (op: number, a1: () => void, b1: () => void): string => {
    a1();
    sx8();
    c.set(L_FA);
    b1();
    sx8();
    c.set(L_FB);
    c.get(L_FA).get(L_FB);
    let kind: number, p: string;
    if (op === 0) [kind, p] = [0, "add"];
    else if (op === 5 || op === 7) [kind, p] = [8, "sub8"];
    else if (op === 1 || op === 4 || op === 6) [kind, p] = [16, "logic"];
    else throw new WasmUnsupported(`8-bit ALU operation ${op}`);
    c.op(op === 0 ? ADD : op === 1 ? OR : op === 4 ? AND : op === 6 ? XOR : SUB);
    if (kind !== 16) sx8();
    c.set(L_FR);
    ccStore(kind);
    return p;
  };
  const write8 = () => {
    c.get(L_A).const(12).op(SHR_U).const(2).op(SHL).load(M_TLBW).tee(L_E).const(-1).op(NE);
    c.op(IF, VOID).get(L_E).get(L_A).op(XOR).get(L_V).store8(M_RAM);
    c.op(ELSE).get(L_A).get(L_V).call(F_WRITE8).op(END);
  };
  /** fa = (stack top a1), fb = (pushed by b1), fr = fa op fb, the record stored; leaves fr pushed if keep. */
  const alu = (op: number, a1: () => void, b1: () => void): string => {
    a1();
    c.set(L_FA);
    b1();
    c.set(L_FB);
    c.get(L_FA).get(L_FB);
    switch (op) {
      case 0:
        c.op(ADD).set(L_FR);
        ccStore(2);
        return "add";
      case 5:
      case 7:
        c.op(SUB).set(L_FR);
        ccStore(10);
        return "sub";
      case 1:
      case 4:
      case 6:
        c.op(op === 1 ? OR : op === 4 ? AND : XOR).set(L_FR);
        ccStore(18);
        return "logic";
    }
    throw new WasmUnsupported(`ALU operation ${op} (ADC/SBB)`);
  };
  /** Pushes whether condition `cond` holds, fused with the producer when it is known. */
  const condition = (cond: number, producer: string) => {
    const fused = (): boolean => {
      if (producer === "sub8" && [2, 3, 6, 7].includes(cond)) {
        const cmp8: Record<number, number> = { 2: LT_U, 3: GE_U, 6: LE_U, 7: GT_U };
        c.get(L_FA).const(0xFF).op(AND).get(L_FB).const(0xFF).op(AND, cmp8[cond]);
        return true;
      }
      if (producer === "sub" || producer === "sub8") {
        const cmp: Record<number, number> = {
          2: LT_U,
          3: GE_U,
          6: LE_U,
          7: GT_U,
          0xC: LT_S,
          0xD: GE_S,
          0xE: LE_S,
          0xF: GT_S,
        };
        if (cond === 4) c.get(L_FR).op(EQZ);
        else if (cond === 5) c.get(L_FR).const(0).op(NE);
        else if (cond === 8) c.get(L_FR).const(0).op(LT_S);
        else if (cond === 9) c.get(L_FR).const(0).op(GE_S);
        else if (cmp[cond] !== undefined) c.get(L_FA).get(L_FB).op(cmp[cond]);
        else return false;
        return true;
      }
      if (producer === "logic" || producer === "add") {
        if (cond === 4 || (producer === "logic" && cond === 6)) c.get(L_FR).op(EQZ);
        else if (cond === 5 || (producer === "logic" && cond === 7)) c.get(L_FR).const(0).op(NE);
        else if (cond === 8 || (producer === "logic" && cond === 0xC)) c.get(L_FR).const(0).op(LT_S);
        else if (cond === 9 || (producer === "logic" && cond === 0xD)) c.get(L_FR).const(0).op(GE_S);
        else if (producer === "logic" && (cond === 0 || cond === 2)) c.const(0);
        else if (producer === "logic" && (cond === 1 || cond === 3)) c.const(1);
        else if (producer === "logic" && cond === 0xE) c.get(L_FR).const(0).op(LE_S);
        else if (producer === "logic" && cond === 0xF) c.get(L_FR).const(0).op(GT_S);
        else return false;
        return true;
      }
      return false;
    };
    if (!fused()) c.const(cond).call(F_TESTCOND);
  };

  for (let i = 0; i < count; i++) {
    const { id, imm, next, g, rm, mem, what } = slotFields(u, i);
    let producer = "";
    let stores = false;
    if (id < 0x40 && (id & 7) < 6 && (id & 7) % 2 === 1) {
      const op = (id >> 3) & 7, form = id & 7;
      if (op === 2 || op === 3) throw new WasmUnsupported(`${what}: ADC/SBB`);
      if (form === 1 && mem && op !== 7) throw new WasmUnsupported(`${what}: ALU to memory`);
      if (mem) {
        address(i);
        read32();
        c.set(L_V);
      }
      const regOrMem = (r: number) => () => mem ? c.get(L_V) : c.get(R(r));
      if (form === 1) producer = alu(op, regOrMem(rm), () => c.get(R(g)));
      else if (form === 3) producer = alu(op, () => c.get(R(g)), regOrMem(rm));
      else producer = alu(op, () => c.get(R(0)), () => c.const(imm));
      if (op !== 7) c.get(L_FR).set(form === 1 ? R(rm) : form === 3 ? R(g) : R(0));
    } else if (id === 0x81 || id === 0x83) {
      const op = g;
      if (op === 2 || op === 3) throw new WasmUnsupported(`${what}: ADC/SBB`);
      if (!mem) {
        producer = alu(op, () => c.get(R(rm)), () => c.const(imm));
        if (op !== 7) c.get(L_FR).set(R(rm));
      } else if (op === 7) {
        address(i);
        read32();
        c.set(L_V);
        producer = alu(7, () => c.get(L_V), () => c.const(imm));
      } else {
        // aluEI: read-modify-write (the JavaScript calls the interpreter's aluEI; flags via alu()).
        address(i);
        read32();
        c.set(L_T);
        alu(op, () => c.get(L_T), () => c.const(imm));
        c.get(L_FR).set(L_V);
        write32();
        stores = true;
        producer = ""; // the JavaScript does not know what aluEI left
      }
    } else if (id === 0x89) {
      if (mem) {
        address(i);
        c.get(R(g)).set(L_V);
        write32();
        stores = true;
      } else c.get(R(g)).set(R(rm));
    } else if (id === 0x8B) {
      if (mem) {
        address(i);
        read32();
      } else c.get(R(rm));
      c.set(R(g));
    } else if (id === 0x1B6) {
      if (mem) {
        address(i);
        read8();
      } else {
        c.get(R(rm & 3));
        if (rm >= 4) c.const(8).op(SHR_U);
        c.const(0xFF).op(AND);
      }
      c.set(R(g));
    } else if (id === 0x8D) {
      if (!mem) throw new WasmUnsupported(`${what}: LEA with a register operand`);
      offset(i);
      c.set(R(g));
    } else if (id === 0xC1 && !mem && g !== 2 && g !== 3) {
      // shift(cc, g, reg, imm, 2) of ops/alu.ts
      const count = imm & 31;
      if (count !== 0) {
        const r = R(rm);
        if (g === 0 || g === 1) {
          c.get(r).const(count).op(g === 0 ? ROTL : ROTR).set(r);
          // setCfOf(cc, cf, of): materialize, then CF and OF
          c.call(F_MAT);
          if (g === 0) {
            c.get(r).const(1).op(AND).set(L_T); // CF = bit 0
            c.get(L_T).get(r).const(31).op(SHR_U).op(XOR); // OF = CF ^ MSB
          } else {
            c.get(r).const(31).op(SHR_U).set(L_T); // CF = MSB
            c.get(L_T).get(r).const(30).op(SHR_U).const(1).op(AND).op(XOR);
          }
          c.const(11).op(SHL).get(L_T).op(OR).set(L_V);
          c.storeAt(M_CC + 16, () => c.const(0).load(M_CC + 16).const(~0x801).op(AND).get(L_V).op(OR));
          c.storeAt(M_CC, () => c.const(44));
        } else {
          const kind = g === 5 ? 8 : g === 7 ? 9 : 7;
          c.get(r).set(L_FA);
          c.get(L_FA).const(count).op(g === 5 ? SHR_U : g === 7 ? SHR_S : SHL).set(r);
          c.const(0).const(kind * 4 + 2).store(M_CC);
          c.const(0).get(r).store(M_CC + 4);
          c.const(0).get(L_FA).store(M_CC + 8);
          c.const(0).const(count).store(M_CC + 12);
        }
      }
    } else if (id === 0xF7 && g === 2 && !mem) {
      c.get(R(rm)).const(-1).op(XOR).set(R(rm));
    } else if (id === 0x90) {
      // nothing
    } else if (id < 0x40 && ((id & 7) === 2 || (id & 7) === 4)) {
      // 8-bit ALU r8, r/m8 and AL, imm8 (the translator's inline forms; ADC/SBB refused)
      const op = (id >> 3) & 7;
      if ((id & 7) === 2) {
        if (mem) {
          address(i);
          read8();
          c.set(L_T);
        }
        producer = alu8(op, () => getR8(g), () => mem ? c.get(L_T) : getR8(rm));
        if (op !== 7) setR8(g, () => c.get(L_FR));
      } else {
        producer = alu8(op, () => getR8(0), () => c.const(imm));
        if (op !== 7) setR8(0, () => c.get(L_FR));
      }
    } else if (id === 0x80 && (g === 7 || !mem)) {
      if (mem) {
        address(i);
        read8();
        c.set(L_V);
        producer = alu8(7, () => c.get(L_V), () => c.const(imm));
      } else {
        producer = alu8(g, () => getR8(rm), () => c.const(imm));
        if (g !== 7) setR8(rm, () => c.get(L_FR));
      }
    } else if (id === 0x84 || id === 0xA8) {
      if (id === 0x84 && mem) {
        address(i);
        read8();
        c.set(L_V);
      }
      producer = id === 0xA8
        ? alu8(4, () => getR8(0), () => c.const(imm))
        : alu8(4, () => mem ? c.get(L_V) : getR8(rm), () => getR8(g));
    } else if (id === 0x88) {
      if (mem) {
        address(i);
        getR8(g);
        c.set(L_V);
        write8();
        stores = true;
      } else setR8(rm, () => getR8(g));
    } else if (id === 0x8A) {
      if (mem) {
        address(i);
        read8();
        c.set(L_T);
        setR8(g, () => c.get(L_T));
      } else setR8(g, () => getR8(rm));
    } else if (id >= 0x40 && id <= 0x4F) {
      // inc()/dec() of ops/alu.ts: the record keeps the CF from before
      const r = R(id & 7);
      c.call(F_CF).set(L_T);
      c.get(r).const(1).op(id < 0x48 ? ADD : SUB).set(r);
      c.const(0).const(id < 0x48 ? 22 : 26).store(M_CC);
      c.const(0).get(r).store(M_CC + 4);
      c.const(0).get(L_T).store(M_CC + 12);
    } else if ((id >= 0x50 && id <= 0x57) || id === 0x68 || id === 0x6A || id === 0xE8) {
      // PUSH (memory first, then ESP), CALL rel32: push the return address, leave to the target
      c.get(R(4)).const(4).op(SUB).set(L_T);
      stackCheck(() => c.get(L_T));
      c.get(L_T).const(0).load(M_SEGBASE + 8).op(ADD).set(L_A);
      if (id === 0xE8) c.const(next);
      else if (id <= 0x57) c.get(R(id & 7));
      else c.const(imm);
      c.set(L_V);
      write32();
      c.get(L_T).set(R(4));
      if (id === 0xE8) jumpTo((next + imm) | 0, 0, 0);
      else stores = true;
    } else if (id >= 0x58 && id <= 0x5F) {
      stackCheck(() => c.get(R(4)));
      c.get(R(4)).const(0).load(M_SEGBASE + 8).op(ADD).set(L_A);
      read32();
      c.set(L_T);
      c.get(R(4)).const(4).op(ADD).set(R(4));
      c.get(L_T).set(R(id & 7));
    } else if (id === 0xC3) {
      stackCheck(() => c.get(R(4)));
      c.get(R(4)).const(0).load(M_SEGBASE + 8).op(ADD).set(L_A);
      read32();
      c.set(L_T);
      c.get(R(4)).const(4).op(ADD).set(R(4));
      c.const(0).get(L_T).store(M_EIP);
      writeBack();
      c.get(L_N).op(RETURN);
    } else if (id === 0xE9 || id === 0xEB) {
      // followed (the next instruction is its target), or the unit's last: then it leaves
      if (i === count - 1) jumpTo((next + imm) | 0, 0, 0);
      producer = flagsIn;
    } else if (id === 0x85 || id === 0xA9) {
      if (id === 0x85 && mem) {
        address(i);
        read32();
        c.set(L_V);
      }
      if (id === 0xA9) c.get(R(0)).const(imm);
      else c.get(mem ? L_V : R(rm)).get(R(g));
      c.op(AND).set(L_FR);
      c.const(0).const(18).store(M_CC);
      c.const(0).get(L_FR).store(M_CC + 4);
      producer = "logic";
    } else if ((id >= 0x70 && id <= 0x7F) || (id >= 0x180 && id <= 0x18F)) {
      const target = (next + imm) | 0;
      condition(id & 0xF, flagsIn);
      c.op(IF, VOID);
      const rest = count - i - 1;
      if (rest !== 0) c.get(L_N).const(rest).op(SUB).set(L_N);
      if (target === start) {
        // if (n + count <= stopAt) continue
        c.get(L_N).const(count).op(ADD).get(L_STOP).op(LE_S, IF, VOID).br(2 + depth).op(END);
      }
      exit(target);
      c.op(END);
      producer = flagsIn;
    } else {
      throw new WasmUnsupported(`${what}: not supported by the wasm back end`);
    }
    if (stores) epochCheck(i, next);
    flagsIn = producer;
    void depth;
  }
  // Fell off the end: EIP = after the last instruction (unless it was a jump, which left).
  const lastId = u.op[count - 1];
  if (![0xC3, 0xE8, 0xE9, 0xEB].includes(lastId)) exit(u.eips[count]);
  c.op(END); // loop
  c.const(-1); // unreachable (the loop body always returns)
  void DROP;
  void SELECT;
  depth = 0;
  return funcBody([[N_LOCALS, I32]], c.b);
}
