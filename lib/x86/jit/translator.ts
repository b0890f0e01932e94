/**
 * The translator: hot guest code becomes JavaScript that V8 compiles (issue #10). A unit is one
 * straight-line run of decoded instructions on one physical code page (a basic block: up to a
 * branch, an instruction we do not translate, or the page end), emitted from the decode-cache slots
 * (no second decoder) as one `new Function` with the decoded fields folded into constants. Hot
 * code is found by sampling branch targets in the interpreter; a unit is reached through its
 * page's decode map (the entry offset holds -unit id), so it is forgotten exactly when the decode
 * cache forgets the page (a CPU store or a device's DMA to it, or a pool flush).
 *
 * Exactness: a unit runs only when all of its instructions fit in the interpreter's budget; a fault
 * inside it leaves EIP at the faulting instruction and the retired count at the instructions
 * before it; every instruction checks what can fault before it changes state (the interpreter's
 * rule, kept by calling the same helpers); a store that hits a code page ends the unit after that
 * instruction. Units contain no instruction that changes CS, SS, CPL, IF, TF, paging or segment
 * state, so interrupts are taken at exactly the interpreter's points. Memory operands get the
 * interpreter's segment limit and type checks (segments.ts checkSegmentAccess) under the same
 * condition, read live from Cpu.segCheck: a segment that is not flat, or a flat one at an offset
 * that would wrap past 4 GiB, so a fault comes at the same instruction with the same state.
 * HOT: the generated code.
 */
import type { Cpu } from "../cpu.ts";
import { EA_ADDR16, EA_NONE } from "../decode_cache.ts";
import { decode } from "../decoder.ts";
import { FAULT } from "../fault.ts";
import { materialize, testCondition } from "../lazy_flags.ts";
import { probeWrite, read16, read32, read8, write32, write8 } from "../mmu.ts";
import { alu, bitScan, dec, inc, mulFlags, mulHighS32, setCF, shift, shiftDouble } from "../ops/alu.ts";
import { readRm, REG8, writeRm } from "../ops/operands.ts";
import { cmps, lods, movs, scas, stos } from "../ops/string.ts";
import { checkSegmentAccess } from "../segments.ts";
import { bitTest, cmpxchg, group3 } from "../ops/system_ops.ts";
import { aluEG, aluEI, incDecE, loopOp, popEv, shiftE, xadd, xchg } from "../interpreter.ts";

/** A translated unit: runs from the entry at retired count `n`, returns the new count or -1 (did not fit). */
export type UnitFn = (n: number, stopAt: number) => number;

/** Most instructions in one unit. */
const MAX_UNIT_INSNS = 64;
/** Every this many branches the interpreter samples the target. */
const SAMPLE_EVERY = 16;
/**
 * Samples of one entry before it is translated (about SAMPLE_EVERY x this many executions). A unit
 * costs about a millisecond to make (new Function, then V8's tiers) and saves ~10 ns per instruction,
 * so it pays only after some 10^4-10^5 instructions: at 16 samples a Linux boot made ~10,000 units
 * and spent longer compiling than it saved.
 */
const HOT_SAMPLES = 256;
/** log2 of the heat table's size (entries hashed by physical address). */
const HEAT_BITS = 16;
/** Units made before every unit is forgotten and numbering restarts (bounds translated-code memory). */
const MAX_UNITS = 1 << 13;

/** The helpers generated code calls: the interpreter's own, so each instruction's meaning lives in one place. */
const HELPERS = {
  read8,
  read16,
  read32,
  write8,
  write32,
  probeWrite,
  alu,
  materialize,
  bitScan,
  dec,
  inc,
  mulFlags,
  mulHighS32,
  setCF,
  shift,
  shiftDouble,
  testCondition,
  readRm,
  writeRm,
  movs,
  stos,
  lods,
  cmps,
  scas,
  bitTest,
  cmpxchg,
  group3,
  aluEG,
  aluEI,
  incDecE,
  loopOp,
  popEv,
  shiftE,
  xadd,
  xchg,
  checkSegmentAccess,
};
const HELPER_NAMES = Object.keys(HELPERS);
const HELPER_VALUES = Object.values(HELPERS);

/** Translator statistics (`--verbose` at exit, `kill -USR2`). */
export interface TranslatorStats {
  units: number;
  compileMs: number;
  sourceBytes: number;
  refused: number;
  flushes: number;
  codeInvalidations: number;
  compiledInstructions: number;
  /** Unit runs entered from the interpreter, and runs chained from another unit. */
  entries: number;
  chained: number;
}

export class Translator {
  /** Off: the interpreter never samples, compiles or enters units (--no-jit). */
  enabled: boolean;
  /** Test mode: translate at the first execution of every instruction (differential tests). */
  eager = false;
  /** Branches left until the next sample. */
  tick = SAMPLE_EVERY;
  /** Bumped by every invalidation of a code page (a running unit that sees it change stops). */
  epoch = 0;
  /**
   * Retired count before the instruction a unit is at when it calls something that can fault (the
   * interpreter's catch takes it on a fault), else -1: reset when units return.
   */
  faultN = -1;
  /** Set by a unit as it leaves: the id of the unit at its exit's EIP, to chain to (0: none). */
  next = 0;
  /** Indexed by unit id (the decode map holds -id): the function and the entry's own slot. */
  units: UnitFn[] = [notAUnit];
  entrySlot: Int32Array = new Int32Array(MAX_UNITS + 1);
  /**
   * The EIP each unit was translated at. Units are found by physical address but hold EIPs as
   * constants (branch targets, return addresses, fault EIPs): a page mapped at two linear addresses
   * (the vDSO in every process) must run a unit only at the EIP it was made for.
   */
  entryEip: Int32Array = new Int32Array(MAX_UNITS + 1);
  readonly stats: TranslatorStats = {
    units: 0,
    compileMs: 0,
    sourceBytes: 0,
    refused: 0,
    flushes: 0,
    codeInvalidations: 0,
    compiledInstructions: 0,
    entries: 0,
    chained: 0,
  };
  #heat = new Int32Array(1 << HEAT_BITS);
  #cpu: Cpu;

  constructor(cpu: Cpu, enabled: boolean) {
    this.#cpu = cpu;
    this.enabled = enabled;
  }

  /** Runs unit `id`; -1 when it does not fit in the budget (the interpreter runs its entry instead). */
  run(id: number, n: number, stopAt: number, eip: number): number {
    const units = this.units, entryEip = this.entryEip;
    if (entryEip[id] !== eip) return -1; // made for another linear alias of this page
    this.stats.entries++;
    let m = units[id](n, stopAt);
    // Direct chaining: a unit leaving to a known EIP on its own page names the unit there (if any);
    // else the unit at the exit's EIP is looked up through the fetch TLB. It runs at once, without a
    // trip through the interpreter's fetch (a trampoline, so chains of any length use no stack).
    const st = this.#cpu.st;
    while (m >= 0 && m < stopAt) {
      let next = this.next;
      this.next = 0;
      const to = st[0];
      if (next === 0) next = this.unitAt(to);
      if (next === 0 || entryEip[next] !== to) break;
      const m2 = units[next](m, stopAt);
      if (m2 < 0) break;
      this.stats.chained++;
      m = m2;
    }
    this.next = 0;
    this.faultN = -1; // set by every unit before anything that can fault; nothing did
    if (m > n) this.stats.compiledInstructions += m - n;
    return m;
  }

  /** The unit whose entry is at `eip` when its code page is in the fetch TLB, else 0. */
  unitAt(eip: number): number {
    const phys = this.#codePhys(eip);
    const map = phys < 0 ? null : this.#cpu.decoded.maps32[phys >>> 12];
    if (map === null) return 0;
    const entry = map[phys & 0xFFF];
    return entry < 0 ? -entry : 0;
  }

  /** The RAM address of the code at `eip` when its page is in the fetch TLB, else -1 (no page walk). */
  #codePhys(eip: number): number {
    const cpu = this.#cpu;
    const lin = (cpu.segBase[1] + eip) | 0;
    const e = cpu.tlbX[lin >>> 12];
    if (e === -1) return -1;
    const phys = e ^ lin;
    return phys >= 0 && phys < cpu.ramSize ? phys : -1;
  }

  /** A code page was written: units on it are already unreachable (its decode map was zeroed). */
  codeInvalidated(): void {
    this.epoch = (this.epoch + 1) | 0;
    this.stats.codeInvalidations++;
  }

  /** The interpreter sampled a branch to `eip` (every SAMPLE_EVERY branches): count it, translate when hot. */
  sample(eip: number): void {
    this.tick = SAMPLE_EVERY;
    const cpu = this.#cpu;
    if (!this.enabled || !cpu.code32 || !cpu.ss32) return;
    const phys = this.#codePhys(eip);
    const map = phys < 0 ? null : cpu.decoded.maps32[phys >>> 12];
    if (map === null || map[phys & 0xFFF] <= 1) return; // not decoded yet, scratch, or already a unit
    // Heat lives in a small hashed table (collisions only merge hints): a Map that was cleared when
    // full forgot the progress of every entry, and hot code stayed interpreted.
    const h = Math.imul(phys, 0x9E3779B1) >>> (32 - HEAT_BITS);
    const heat = this.#heat;
    const c = heat[h] + 1;
    if (c < HOT_SAMPLES) {
      heat[h] = c;
      return;
    }
    heat[h] = 0;
    if (this.translate(map, phys & 0xFFF, eip) === 0) heat[h] = -16 * HOT_SAMPLES; // not again soon
  }

  /**
   * Test mode: the instruction at `eip` (page offset `offset` of `map`) was just decoded into
   * `slot`; translate from it at once. Returns the map entry to run: -id, or `slot` unchanged.
   */
  compileAt(map: Int32Array, offset: number, eip: number, slot: number): number {
    const cpu = this.#cpu;
    if (!this.enabled || !cpu.code32 || !cpu.ss32) return slot;
    const id = this.translate(map, offset, eip);
    return id === 0 ? slot : -id;
  }

  /** Translates from page offset `offset` (EIP `eip`); installs the unit in `map`; returns its id or 0. */
  translate(map: Int32Array, offset: number, eip: number): number {
    const cpu = this.#cpu;
    const dc = cpu.decoded;
    // Decoding ahead must not flush the slot pool under us (that would recycle the slots we read).
    if (dc.next + MAX_UNIT_INSNS + 2 >= dc.capacity) return 0;
    if (this.units.length > MAX_UNITS) this.flush();
    const started = performance.now();
    const csBase = cpu.segBase[1];
    const slots: number[] = [];
    const eips: number[] = [];
    let off = offset, at = eip | 0;
    // Test mode: instructions this unit decodes ahead get units of their own too (below), so every
    // instruction still has one at its first execution (a side exit or a budget too small for this
    // unit lands on them).
    const ahead: number[] = [];
    while (slots.length < MAX_UNIT_INSNS && off < 0x1000) {
      let slot = map[off];
      if (slot < 0) slot = this.entrySlot[-slot]; // another unit starts here: go on through it
      if (slot === 0) {
        // Decoding near the page end could fetch from the next page: a page walk there (A bits, or
        // CR2 on a #PF) would be a side effect the interpreter does not have. Leave those to it.
        if (off > 0x1000 - 16) break;
        if (this.eager && off !== offset) ahead.push(off, at);
        try {
          slot = decode(cpu, (csBase + at) | 0, map, true);
        } catch (e) {
          if (e === FAULT) break; // an over-long instruction: the interpreter will raise it
          throw e;
        }
      }
      if (slot <= 1) break; // crosses into the next page
      const kind = classify(cpu, slot);
      if (kind === NOT_TRANSLATED) break;
      slots.push(slot);
      eips.push(at);
      at = (at + dc.len[slot]) | 0;
      off += dc.len[slot];
      if (kind === ENDS_UNIT) break;
      if (kind === JUMPS) {
        // An unconditional near jump: the unit goes on at its target when that is on this page
        // and not yet in the unit (else the jump ends the unit).
        const target = (at + dc.imm[slot]) | 0;
        const targetOff = offset + ((target - eip) | 0);
        if (targetOff < 0 || targetOff >= 0x1000 || eips.includes(target)) break;
        at = target;
        off = targetOff;
      }
    }
    if (slots.length === 0) {
      this.stats.refused++;
      return 0;
    }
    eips.push(at);
    const source = emitUnit(cpu, slots, eips, offset);
    const id = this.units.length;
    let fn: UnitFn;
    try {
      // E, the unit's EIPs, is not read by the generated code: tools/bench_wasm_vs_js.ts rebuilds
      // hot units from their factory's arguments.
      fn = new Function("cpu", "J", "E", "M", ...HELPER_NAMES, source)(
        cpu,
        this,
        eips,
        map,
        ...HELPER_VALUES,
      );
    } catch (e) {
      throw new Error(`translator produced invalid code (${e}):\n${source}`);
    }
    this.units.push(fn);
    this.entrySlot[id] = map[offset];
    this.entryEip[id] = eip | 0;
    map[offset] = -id;
    this.stats.units++;
    this.stats.sourceBytes += source.length;
    this.stats.compileMs += performance.now() - started;
    if (ahead.length === 0) return id;
    for (let j = 0; j < ahead.length; j += 2) {
      if (map[ahead[j]] > 1) this.translate(map, ahead[j], ahead[j + 1]);
    }
    // One of those may have flushed every unit (MAX_UNITS): what is at the entry now is what runs.
    return map[offset] < 0 ? -map[offset] : 0;
  }

  /** Forgets every unit (their map entries go back to the entry slots). */
  flush(): void {
    const dc = this.#cpu.decoded;
    for (const maps of [dc.maps32, dc.maps16]) {
      for (const m of maps) {
        if (m === null) continue;
        for (let i = 0; i < 4096; i++) if (m[i] < 0) m[i] = this.entrySlot[-m[i]];
      }
    }
    this.units = [notAUnit];
    this.#heat.fill(0);
    this.stats.flushes++;
  }

  /** One line of statistics. */
  describe(): string {
    const s = this.stats;
    const total = this.#cpu.instructionsRetired();
    const share = total > 0 ? (100 * s.compiledInstructions / total).toFixed(1) : "0.0";
    return `translator ${this.enabled ? "on" : "off"}: ${s.units} units (${
      (s.sourceBytes / 1024).toFixed(0)
    } KiB ` +
      `of source) in ${s.compileMs.toFixed(0)} ms (${
        s.units > 0 ? (s.compileMs / s.units).toFixed(2) : "0"
      } ms each), ${s.refused} entries refused, ${s.flushes} flushes, ` +
      `${s.codeInvalidations} code-page invalidations; ${share}% of ${total} instructions ran translated ` +
      `(${s.compiledInstructions} in ${s.entries} entries, ${s.chained} chained)`;
  }
}

function notAUnit(): number {
  return -1;
}

// ---- Which instructions are translated ----

/** CONTINUES: the unit goes on after it; SIDE_EXIT: a conditional branch the unit leaves by when
 * taken; JUMPS: an unconditional jump the unit follows on the same page; ENDS_UNIT: the last one. */
const NOT_TRANSLATED = 0, CONTINUES = 1, ENDS_UNIT = 2, SIDE_EXIT = 3, JUMPS = 4;

/** Whether the instruction in `slot` is translated, and whether it ends the unit (a branch). */
function classify(cpu: Cpu, slot: number): number {
  const dc = cpu.decoded;
  const id = dc.op[slot];
  const m = dc.modrm[slot];
  if (m < 0xC0 && (dc.ea[slot] & EA_ADDR16) !== 0 && usesModrmMemory(id)) return NOT_TRANSLATED;
  if (id >= 0x70 && id <= 0x7F) return SIDE_EXIT;
  if (id >= 0x180 && id <= 0x18F) return SIDE_EXIT;
  switch (id) {
    case 0xC3:
    case 0xC2:
    case 0xE8:
      return ENDS_UNIT;
    case 0xE9:
    case 0xEB:
      return JUMPS;
    case 0xE0:
    case 0xE1:
    case 0xE2:
    case 0xE3:
      return (dc.ea[slot] & EA_ADDR16) !== 0 ? NOT_TRANSLATED : ENDS_UNIT;
    case 0xFF: {
      const op = (m >> 3) & 7;
      if (op < 2 || op === 6) return CONTINUES;
      if (op === 2 || op === 4) return ENDS_UNIT;
      return NOT_TRANSLATED;
    }
    case 0xFE:
      return ((m >> 3) & 7) < 2 ? CONTINUES : NOT_TRANSLATED;
    case 0x8D: // LEA with a register operand is #UD: the interpreter raises it
      return m >= 0xC0 ? NOT_TRANSLATED : CONTINUES;
    case 0xC6:
    case 0xC7: // only /0 is MOV
      return (m & 0x38) !== 0 ? NOT_TRANSLATED : CONTINUES;
    case 0x8F:
      return CONTINUES;
    case 0xA4:
    case 0xA5:
    case 0xA6:
    case 0xA7:
    case 0xAA:
    case 0xAB:
    case 0xAC:
    case 0xAD:
    case 0xAE:
    case 0xAF:
      return CONTINUES;
  }
  return SIMPLE[id] === 1 ? CONTINUES : NOT_TRANSLATED;
}

/** Instructions translated with no special rule (32-bit operand size, or byte forms). */
const SIMPLE = new Uint8Array(0x400);
for (let op = 0; op < 0x40; op += 8) for (let f = 0; f < 6; f++) SIMPLE[op + f] = 1; // ALU forms
for (let op = 0x40; op <= 0x5F; op++) SIMPLE[op] = 1; // INC DEC PUSH POP r32
for (
  const op of [
    0x68,
    0x6A,
    0x69,
    0x6B,
    0x80,
    0x81,
    0x83,
    0x84,
    0x85,
    0x86,
    0x87,
    0x88,
    0x89,
    0x8A,
    0x8B,
    0x90,
    0x98,
    0x99,
    0xA0,
    0xA1,
    0xA2,
    0xA3,
    0xA8,
    0xA9,
    0xC0,
    0xC1,
    0xC9,
    0xD0,
    0xD1,
    0xD2,
    0xD3,
    0xF6,
    0xF7,
    0xF5,
    0xF8,
    0xF9,
    0xFC,
    0xFD,
    0x1AF,
    0x1B6,
    0x1B7,
    0x1BE,
    0x1BF,
    0x1A3,
    0x1AB,
    0x1B3,
    0x1BB,
    0x1BA,
    0x1BC,
    0x1BD,
    0x1A4,
    0x1A5,
    0x1AC,
    0x1AD,
    0x1B0,
    0x1B1,
    0x1C0,
    0x1C1,
  ]
) SIMPLE[op] = 1;
for (let op = 0x91; op <= 0x97; op++) SIMPLE[op] = 1;
for (let op = 0xB0; op <= 0xBF; op++) SIMPLE[op] = 1;
for (let op = 0x190; op <= 0x19F; op++) SIMPLE[op] = 1; // SETcc
for (let op = 0x140; op <= 0x14F; op++) SIMPLE[op] = 1; // CMOVcc
for (let op = 0x1C8; op <= 0x1CF; op++) SIMPLE[op] = 1; // BSWAP

/** Instructions whose ModRM may name memory (16-bit addressing is left to the interpreter). */
function usesModrmMemory(id: number): boolean {
  return !(id >= 0x40 && id <= 0x5F) && !(id >= 0xB0 && id <= 0xBF) && !(id >= 0x1C8 && id <= 0x1CF) &&
    id !== 0x90 && !(id >= 0x91 && id <= 0x99);
}

// ---- Code generation ----

/** Byte offsets of AL..BH in the register bytes, for constant folding. */
const R8 = Array.from(REG8);

/**
 * The JavaScript body of a unit over `slots` (EIPs in `eips`, one more than slots: the EIP after
 * the last). Locals: a/e/v/r/t scratch (write32From and push32Inline use a, e, v and r); fa/fb/fr the operands and result of the last flag
 * producer, for a Jcc fused with it.
 */
function emitUnit(cpu: Cpu, slots: number[], eips: number[], offset: number): string {
  const dc = cpu.decoded;
  const count = slots.length;
  const start = eips[0];
  /** Leaves with EIP = `target`, naming the unit there for chaining when it is on this page. */
  const exitTo = (target: number): string => {
    const off = offset + ((target - start) | 0);
    if (off < 0 || off >= 0x1000) return `st[0] = ${target}; return n;`;
    return `e = M[${off}]; if (e < 0) J.next = -e; st[0] = ${target}; return n;`;
  };
  /**
   * A jump to `target` from an instruction with `rest` more after it in the unit (they did not
   * retire): back to the unit's own start while the budget allows, else out.
   */
  const jumpTo = (target: number, rest = 0): string => {
    const retire = rest === 0 ? "" : `n -= ${rest};`;
    if (target !== start) return retire + exitTo(target);
    return `${retire} if (n + ${count} <= stopAt) continue; st[0] = ${target}; return n;`;
  };
  const out: string[] = [];
  out.push(
    "const regs = cpu.regs, cc = cpu.cc, st = cpu.st, segBase = cpu.segBase;",
    "const segCheck = cpu.segCheck;",
    "const ram8 = cpu.ram8, ram32 = cpu.ram32;",
    "return function unit(n, stopAt) {",
    `if (n + ${count} > stopAt || !cpu.ss32) return -1;`,
    "const tlbR = cpu.tlbR, tlbW = cpu.tlbW, ep = J.epoch;",
    "let a = 0, e = 0, v = 0, r = 0, t = 0, o = 0, fa = 0, fb = 0, fr = 0;",
    "let r0 = regs[0], r1 = regs[1], r2 = regs[2], r3 = regs[3], r4 = regs[4], r5 = regs[5], r6 = regs[6], r7 = regs[7];",
    "for (;;) {",
    `n += ${count};`,
  );
  // What the previous instruction left in fa/fb/fr: "sub" (CMP/SUB 32), "logic" (result in fr).
  let flagsIn = "";
  for (let i = 0; i < count; i++) {
    const slot = slots[i];
    const id = dc.op[slot];
    const m = dc.modrm[slot];
    const imm = dc.imm[slot];
    const next = (eips[i] + dc.len[slot]) | 0;
    const last = i === count - 1;
    const kind = classify(cpu, slot);
    const g = (m >> 3) & 7, rm = m & 7;
    const mem = m < 0xC0;
    const addr = () => eaExpr(cpu, slot);
    let producer = "";
    // A store that reaches a code page ends the unit after this instruction (checked below).
    let stores = false;
    let body = "";
    /** What follows the body once helpers are done with the registers (an exit). */
    let tail = "";
    if (id < 0x40 && (id & 7) < 6) {
      const op = (id >> 3) & 7, form = id & 7;
      if (form === 1 || form === 3 || form === 5) {
        // 32-bit ALU: inline the commonest (ADD, SUB/CMP, AND/OR/XOR) and call alu() otherwise.
        const dst = form === 1 ? (mem ? "MEM" : `regs[${rm}]`) : form === 3 ? `regs[${g}]` : "regs[0]";
        const src = form === 1 ? `regs[${g}]` : form === 3 ? (mem ? "MEM" : `regs[${rm}]`) : `${imm}`;
        if (form === 1 && mem && op !== 7) {
          body = `aluEG(cpu, ${slot}, ${op}, 2);`;
          stores = true;
        } else {
          let pre = "";
          let a1 = dst, b1 = src;
          if (dst === "MEM" || src === "MEM") {
            pre = read32Into("v", addr());
            if (dst === "MEM") a1 = "v";
            else b1 = "v";
          }
          const write = op === 7 ? "" : `${dst} = fr;`;
          body = pre + aluInline32(op, a1, b1) + write;
          producer = op === 0
            ? "add"
            : op === 5 || op === 7
            ? "sub"
            : op === 1 || op === 4 || op === 6
            ? "logic"
            : "";
        }
      } else if (form === 0) {
        body = `aluEG(cpu, ${slot}, ${op}, 0);`;
        stores = mem;
      } else if (form === 2) {
        const gi = R8[g];
        const pre = mem ? read8Into("t", addr()) : "";
        const src = mem ? "t" : `r8[${R8[rm]}]`;
        if (INLINE8[op] !== "") {
          body = pre + aluInline8(op, `r8[${gi}]`, src) + (op === 7 ? "" : `r8[${gi}] = fr;`);
          producer = INLINE8[op];
        } else {
          body = pre + `r = alu(cc, ${op}, r8[${gi}], ${src}, 0);` + (op === 7 ? "" : `r8[${gi}] = r;`);
        }
      } else if (INLINE8[op] !== "") {
        body = aluInline8(op, "r8[0]", `${imm}`) + (op === 7 ? "" : "r8[0] = fr;");
        producer = INLINE8[op];
      } else {
        body = `r = alu(cc, ${op}, r8[0], ${imm}, 0);` + (op === 7 ? "" : "r8[0] = r;");
      }
    } else if (id >= 0x40 && id <= 0x47) {
      body = `regs[${id & 7}] = inc(cc, regs[${id & 7}], 2);`;
    } else if (id >= 0x48 && id <= 0x4F) {
      body = `regs[${id & 7}] = dec(cc, regs[${id & 7}], 2);`;
    } else if (id >= 0x50 && id <= 0x57) {
      body = push32Inline(`regs[${id & 7}]`);
      stores = true;
    } else if (id >= 0x58 && id <= 0x5F) {
      body = pop32Inline(`regs[${id & 7}]`);
    } else if (id === 0x68 || id === 0x6A) {
      body = push32Inline(`${imm}`);
      stores = true;
    } else if (id === 0x69 || id === 0x6B || id === 0x1AF) {
      const src = mem ? read32Into("v", addr()) : `v = regs[${rm}];`;
      const b = id === 0x1AF ? `regs[${g}]` : `${imm}`;
      body = src +
        `r = Math.imul(v, ${b}); mulFlags(cc, r, mulHighS32(v, ${b}) !== (r >> 31), 2); regs[${g}] = r;`;
    } else if ((id >= 0x70 && id <= 0x7F) || (id >= 0x180 && id <= 0x18F)) {
      const target = (next + imm) | 0;
      body = `if (${condition(id & 0xF, flagsIn)}) {${jumpTo(target, count - i - 1)}}`;
      producer = flagsIn; // a branch leaves the flags (and fa/fb/fr) as they were
    } else if (id === 0x80 || id === 0x81 || id === 0x83) {
      const size = id === 0x80 ? 0 : 2;
      const op = g;
      if (size === 2 && !mem) {
        body = aluInline32(op, `regs[${rm}]`, `${imm}`) + (op === 7 ? "" : `regs[${rm}] = fr;`);
        producer = op === 0
          ? "add"
          : op === 5 || op === 7
          ? "sub"
          : op === 1 || op === 4 || op === 6
          ? "logic"
          : "";
      } else if (size === 2 && op === 7) {
        body = read32Into("v", addr()) + aluInline32(7, "v", `${imm}`);
        producer = "sub";
      } else if (size === 0 && !mem && INLINE8[op] !== "") {
        body = aluInline8(op, `r8[${R8[rm]}]`, `${imm}`) + (op === 7 ? "" : `r8[${R8[rm]}] = fr;`);
        producer = INLINE8[op];
      } else if (size === 0 && op === 7) {
        body = read8Into("v", addr()) + aluInline8(7, "v", `${imm}`);
        producer = "sub8";
      } else {
        body = `aluEI(cpu, ${slot}, ${size}, ${imm});`;
        stores = mem && op !== 7;
      }
    } else if (id === 0x84) {
      body = (mem ? read8Into("v", addr()) : "") + aluInline8(4, mem ? "v" : `r8[${R8[rm]}]`, `r8[${R8[g]}]`);
      producer = "logic";
    } else if (id === 0x85 || id === 0xA9) {
      const a1 = id === 0xA9 ? "regs[0]" : mem ? "v" : `regs[${rm}]`;
      const b1 = id === 0xA9 ? `${imm}` : `regs[${g}]`;
      body = (id === 0x85 && mem ? read32Into("v", addr()) : "") +
        `fr = ${a1} & ${b1}; cc[0] = 18; cc[1] = fr;`;
      producer = "logic";
    } else if (id === 0xA8) {
      body = aluInline8(4, "r8[0]", `${imm}`);
      producer = "logic";
    } else if (id === 0x86 || id === 0x87) {
      body = `xchg(cpu, ${slot}, ${id === 0x86 ? 0 : 2});`;
      stores = mem;
    } else if (id === 0x88) {
      body = mem ? write8From(addr(), `r8[${R8[g]}]`) : `r8[${R8[rm]}] = r8[${R8[g]}];`;
      stores = mem;
    } else if (id === 0x89) {
      body = mem ? write32From(addr(), `regs[${g}]`) : `regs[${rm}] = regs[${g}];`;
      stores = mem;
    } else if (id === 0x8A) {
      body = mem ? read8Into(`r8[${R8[g]}]`, addr()) : `r8[${R8[g]}] = r8[${R8[rm]}];`;
    } else if (id === 0x8B) {
      body = mem ? read32Into(`regs[${g}]`, addr()) : `regs[${g}] = regs[${rm}];`;
    } else if (id === 0x8D) {
      body = `regs[${g}] = ${eaExpr(cpu, slot, false)};`;
    } else if (id === 0x8F) {
      body = `popEv(cpu, ${slot}, 2);`;
      stores = mem;
    } else if (id === 0x90) {
      body = "";
    } else if (id >= 0x91 && id <= 0x97) {
      body = `v = regs[0]; regs[0] = regs[${id & 7}]; regs[${id & 7}] = v;`;
    } else if (id === 0x98) {
      body = "regs[0] = (regs[0] << 16) >> 16;";
    } else if (id === 0x99) {
      body = "regs[2] = regs[0] >> 31;";
    } else if (id >= 0xA0 && id <= 0xA3) {
      const a1 = segmentAddr((dc.ea[slot] >> 12) & 7, `${dc.disp[slot]}`, dc.macc[slot]);
      body = id === 0xA0
        ? `r8[0] = read8(cpu, ${a1});`
        : id === 0xA1
        ? read32Into("regs[0]", a1)
        : id === 0xA2
        ? `write8(cpu, ${a1}, r8[0]);`
        : write32From(a1, "regs[0]");
      stores = id >= 0xA2;
    } else if (id >= 0xA4 && id <= 0xAF) {
      const size = (id & 1) === 0 ? 0 : 2;
      const fnName = id <= 0xA5
        ? "movs"
        : id <= 0xA7
        ? "cmps"
        : id <= 0xAB
        ? "stos"
        : id <= 0xAD
        ? "lods"
        : "scas";
      body = `${fnName}(cpu, ${slot}, ${size});`;
      stores = fnName === "movs" || fnName === "stos";
    } else if (id >= 0xB0 && id <= 0xB7) {
      body = `r8[${R8[id & 7]}] = ${imm};`;
    } else if (id >= 0xB8 && id <= 0xBF) {
      body = `regs[${id & 7}] = ${imm};`;
    } else if (id === 0xC6 || id === 0xC7) {
      if (id === 0xC7 && mem) body = write32From(addr(), `${imm}`);
      else body = `writeRm(cpu, ${slot}, ${m}, ${id === 0xC6 ? 0 : 2}, ${imm});`;
      stores = mem;
    } else if (id >= 0xC0 && id <= 0xD3 && id !== 0xC2 && id !== 0xC3 && id !== 0xC9) {
      const size = (id & 1) === 0 ? 0 : 2;
      const countExpr = id <= 0xC1 ? `${imm}` : id <= 0xD1 ? "1" : "r8[4]";
      body = !mem && size === 2 && id <= 0xD1 && g !== 2 && g !== 3 // RCL/RCR: shift()
        ? shiftInline32(g, `regs[${rm}]`, id <= 0xC1 ? imm & 31 : 1)
        : !mem && size === 2
        ? `regs[${rm}] = shift(cc, ${g}, regs[${rm}], ${countExpr}, 2);`
        : `shiftE(cpu, ${slot}, ${size}, ${countExpr});`;
      stores = mem;
    } else if (id === 0xC3) {
      body = pop32Inline("v") + "st[0] = v; return n;";
    } else if (id === 0xC2) {
      body = pop32Inline("v") + `regs[4] = (regs[4] + ${imm}) | 0; st[0] = v; return n;`;
    } else if (id === 0xC9) {
      body = `${stackCheck("regs[5]", 4)} v = read32(cpu, (segBase[2] + regs[5]) | 0); ` +
        "regs[4] = (regs[5] + 4) | 0; regs[5] = v;";
    } else if (id === 0xE8) {
      body = push32Inline(`${next}`) + jumpTo((next + imm) | 0);
    } else if (id === 0xE9 || id === 0xEB) {
      // Followed (the next instruction is its target), or the unit's last: then it leaves.
      body = last ? jumpTo((next + imm) | 0) : "";
      producer = flagsIn;
    } else if (id >= 0xE0 && id <= 0xE3) {
      body = `t = loopOp(cpu, ${slot}, ${id}, ${next});`;
      tail = "st[0] = t; return n;";
    } else if (id === 0xF6 && g === 0) {
      body = (mem ? read8Into("v", addr()) : "") + aluInline8(4, mem ? "v" : `r8[${R8[rm]}]`, `${imm}`);
      producer = "logic";
    } else if (id === 0xF7 && g === 0) {
      body = (mem ? read32Into("v", addr()) : "") +
        `fr = ${mem ? "v" : `regs[${rm}]`} & ${imm}; cc[0] = 18; cc[1] = fr;`;
      producer = "logic";
    } else if (id === 0xF7 && g === 2 && !mem) {
      body = `regs[${rm}] = ~regs[${rm}];`;
    } else if (id === 0xF7 && g === 3 && !mem) {
      body = aluInline32(5, "0", `regs[${rm}]`) + `regs[${rm}] = fr;`;
      producer = "sub";
    } else if (id === 0xF6 || id === 0xF7) {
      body = `group3(cpu, ${slot}, ${id === 0xF6 ? 0 : 2});`;
      stores = mem;
    } else if (id === 0xF5) {
      body = "setCF(cc, (materialize(cc) & 1) ^ 1);";
    } else if (id === 0xF8 || id === 0xF9) {
      body = `setCF(cc, ${id & 1});`;
    } else if (id === 0xFC) {
      body = "cc[4] &= ~0x400;";
    } else if (id === 0xFD) {
      body = "cc[4] |= 0x400;";
    } else if (id === 0xFE) {
      body = `incDecE(cpu, ${slot}, ${m}, 0, ${g});`;
      stores = mem;
    } else if (id === 0xFF) {
      if (g < 2) {
        body = `incDecE(cpu, ${slot}, ${m}, 2, ${g});`;
        stores = mem;
      } else if (g === 2) {
        body = `t = readRm(cpu, ${slot}, ${m}, 2);` + push32Inline(`${next}`) + "st[0] = t; return n;";
      } else if (g === 4) {
        body = `st[0] = readRm(cpu, ${slot}, ${m}, 2); return n;`;
      } else {
        body = `t = readRm(cpu, ${slot}, ${m}, 2);` + push32Inline("t");
        stores = true;
      }
    } else if (id === 0x1B6) {
      body = mem ? read8Into(`regs[${g}]`, addr()) : `regs[${g}] = r8[${R8[rm]}];`;
    } else if (id === 0x1B7 || id === 0x1BF) {
      const src = mem ? `read16(cpu, ${addr()})` : `r16[${rm << 1}]`;
      body = id === 0x1B7 ? `regs[${g}] = ${src};` : `regs[${g}] = (${src} << 16) >> 16;`;
    } else if (id === 0x1BE) {
      body = mem
        ? read8Into("v", addr()) + `regs[${g}] = (v << 24) >> 24;`
        : `regs[${g}] = (r8[${R8[rm]}] << 24) >> 24;`;
    } else if (id >= 0x190 && id <= 0x19F) {
      body = `writeRm(cpu, ${slot}, ${m}, 0, ${condition(id & 0xF, flagsIn)} ? 1 : 0);`;
      stores = mem;
    } else if (id >= 0x140 && id <= 0x14F) {
      body = (mem ? read32Into("v", addr()) : `v = regs[${rm}];`) +
        `if (${condition(id & 0xF, flagsIn)}) regs[${g}] = v;`;
    } else if (id === 0x1A3 || id === 0x1AB || id === 0x1B3 || id === 0x1BB || id === 0x1BA) {
      body = `bitTest(cpu, ${slot}, ${id});`;
      stores = mem && id !== 0x1A3 && !(id === 0x1BA && g === 4);
    } else if (id === 0x1BC || id === 0x1BD) {
      body = `v = bitScan(cc, readRm(cpu, ${slot}, ${m}, 2), ${
        (id & 1) !== 0
      }, 2); if (v >= 0) regs[${g}] = v;`;
    } else if (id === 0x1A4 || id === 0x1A5 || id === 0x1AC || id === 0x1AD) {
      const countExpr = (id & 1) !== 0 ? "r8[4]" : `${imm}`;
      const left = (id & 0xFF) < 0xA8;
      if (!mem) {
        body = `regs[${rm}] = shiftDouble(cc, ${left}, regs[${rm}], regs[${g}], ${countExpr}, 2);`;
      } else {
        body = `a = ${addr()}; probeWrite(cpu, a, 4); ` +
          `write32(cpu, a, shiftDouble(cc, ${left}, read32(cpu, a), regs[${g}], ${countExpr}, 2));`;
        stores = true;
      }
    } else if (id === 0x1B0 || id === 0x1B1) {
      body = `cmpxchg(cpu, ${slot}, ${id === 0x1B0 ? 0 : 2});`;
      stores = mem;
    } else if (id === 0x1C0 || id === 0x1C1) {
      body = `xadd(cpu, ${slot}, ${id === 0x1C0 ? 0 : 2});`;
      stores = mem;
    } else if (id >= 0x1C8 && id <= 0x1CF) {
      const x = `regs[${id & 7}]`;
      body = `v = ${x}; ${x} = ((v << 24) | ((v & 0xFF00) << 8) | ((v >>> 8) & 0xFF00) | (v >>> 24)) | 0;`;
    } else {
      throw new Error(`translator: no code for dispatch id 0x${id.toString(16)}`);
    }
    // What can fault first records where: EIP, the retired count before this instruction, and the
    // registers (a unit has no try/catch: V8 would keep every local in memory around one).
    body = registersInLocals(body).replace(
      CAN_FAULT,
      `$1((st[0] = ${eips[i]}, J.faultN = n - ${count - i}, @FLUSHC@ cpu)`,
    );
    if (WRITES_REGS.test(body)) {
      if (body.includes("return")) {
        throw new Error(`translator: an exit inside a register helper's body: ${body}`);
      }
      body = `@FLUSH@ ${body} @RELOAD@`;
    } else if (READS_REGS.test(body)) {
      body = `@FLUSH@ ${body}`;
    }
    out.push(body + registersInLocals(tail));
    if (stores && !last) out.push(`if (J.epoch !== ep) { st[0] = ${next}; return n - ${count - i - 1}; }`);
    flagsIn = producer;
    if (last && kind !== ENDS_UNIT && !(kind === JUMPS)) out.push(exitTo(next));
  }
  out.push("}", "};");
  // The registers the unit's own code assigns go back to cpu.regs before every exit and every
  // helper that reads them; after a helper that may write them, all are reloaded.
  const source = out.join("\n");
  const written = new Set<number>();
  for (const w of source.matchAll(/\br([0-7]) = (?!=)/g)) written.add(Number(w[1]));
  const flush = [...written].map((x) => `regs[${x}] = r${x};`).join(" ");
  const reload = [0, 1, 2, 3, 4, 5, 6, 7].map((x) => `r${x} = regs[${x}];`).join(" ");
  const flushComma = [...written].map((x) => `regs[${x}] = r${x}, `).join("");
  return source.replaceAll("@FLUSH@", flush).replaceAll("@FLUSHC@", flushComma).replaceAll("@RELOAD@", reload)
    .replaceAll("return n", `${flush} return n`);
}

/** Helpers that may write guest registers through cpu.regs (string ops, XCHG, group 3, ...). */
const WRITES_REGS =
  /\b(aluEG|aluEI|incDecE|writeRm|movs|stos|lods|cmps|scas|xchg|cmpxchg|xadd|bitTest|group3|popEv|shiftE|loopOp)\(/;
/** Calls that can fault (their first argument is `cpu`). */
const CAN_FAULT =
  /\b(read8|read16|read32|write8|write32|probeWrite|readRm|writeRm|movs|stos|lods|cmps|scas|bitTest|cmpxchg|group3|aluEG|aluEI|incDecE|loopOp|popEv|shiftE|xadd|xchg|checkSegmentAccess)\(cpu\b/g;
/** Helpers that read guest registers through cpu.regs (an effective address). */
const READS_REGS = /\breadRm\(/;

/**
 * Generated code with the guest registers in locals r0..r7: `regs[N]` becomes `rN`, a byte
 * register `r8[B]` (AL..BH at byte offsets 0, 4, 8, 12 and 1, 5, 9, 13) a shift and mask of its
 * dword, and `r16[2N]` the low word of rN.
 */
function registersInLocals(code: string): string {
  return code
    .replace(/\bregs\[(\d)\]/g, "r$1")
    .replace(/\br8\[(\d+)\] = ([^;]*);/g, (_all, b: string, expr: string) => {
      const x = Number(b) >> 2, sh = (Number(b) & 3) * 8;
      return sh === 0
        ? `r${x} = (r${x} & -256) | ((${expr}) & 0xFF);`
        : `r${x} = (r${x} & -65281) | (((${expr}) & 0xFF) << 8);`;
    })
    .replace(/\br8\[(\d+)\]/g, (_all, b: string) => {
      const x = Number(b) >> 2, sh = (Number(b) & 3) * 8;
      return sh === 0 ? `(r${x} & 0xFF)` : `((r${x} >> 8) & 0xFF)`;
    })
    .replace(/\br16\[(\d+)\]/g, (_all, w: string) => `(r${Number(w) >> 1} & 0xFFFF)`);
}

/**
 * The linear address (or with `withSeg` false, the offset: LEA) of the slot's memory operand, as an
 * expression; a linear address comes after the segment check of the access the decoder recorded.
 */
function eaExpr(cpu: Cpu, slot: number, withSeg = true): string {
  const dc = cpu.decoded;
  const e = dc.ea[slot];
  const parts: string[] = [];
  const b = e & 15, i = (e >> 4) & 15, s = (e >> 8) & 3;
  if (b !== EA_NONE) parts.push(`regs[${b}]`);
  if (i !== EA_NONE) parts.push(s === 0 ? `regs[${i}]` : `(regs[${i}] << ${s})`);
  if (dc.disp[slot] !== 0 || parts.length === 0) parts.push(`${dc.disp[slot]}`);
  const offset = `(${parts.join(" + ")}) | 0`;
  return withSeg ? segmentAddr((e >> 12) & 7, offset, dc.macc[slot]) : `(${offset})`;
}

/**
 * `offset` in segment `seg` as a linear address, checked as operands.ts ea() checks it: when the
 * segment is not flat, or the offset is within 8 bytes of 4 GiB (where even a flat access wraps).
 * `macc` is the access's size | MACC_WRITE.
 */
function segmentAddr(seg: number, offset: string, macc: number): string {
  return `(o = ${offset}, segCheck[${seg}] !== 0 || (o >>> 0) > 0xFFFFFFF8 ? ` +
    `checkSegmentAccess(cpu, ${seg}, o, ${macc}) : 0, (o + segBase[${seg}]) | 0)`;
}

/** The check stack.ts makes of a stack access at offset `sp` (an expression) through a non-flat SS. */
function stackCheck(sp: string, macc: number): string {
  return `if (segCheck[2] !== 0) checkSegmentAccess(cpu, 2, ${sp}, ${macc});`;
}

/** `dst = read32(address)`, with the soft-TLB fast path inline (read32's own test). */
function read32Into(dst: string, address: string): string {
  return `a = ${address}; e = tlbR[a >>> 12]; ` +
    `${dst} = e !== -1 && (a & 0xFFF) <= 0xFFC && ((e ^ a) & 3) === 0 ? ram32[(e ^ a) >>> 2] : read32(cpu, a);`;
}

/** `dst = read8(address)`, with the soft-TLB fast path inline (read8's own test). */
function read8Into(dst: string, address: string): string {
  return `a = ${address}; e = tlbR[a >>> 12]; ${dst} = e !== -1 ? ram8[e ^ a] : read8(cpu, a);`;
}

/** `write8(address, value)`, with the soft-TLB fast path inline (code pages never have a write entry). */
function write8From(address: string, value: string): string {
  return `a = ${address}; v = ${value}; e = tlbW[a >>> 12]; if (e !== -1) ram8[e ^ a] = v; else write8(cpu, a, v);`;
}

/** `write32(address, value)`, with the soft-TLB fast path inline (code pages never have a write entry). */
function write32From(address: string, value: string): string {
  return `a = ${address}; v = ${value}; e = tlbW[a >>> 12]; ` +
    `if (e !== -1 && (a & 0xFFF) <= 0xFFC && ((e ^ a) & 3) === 0) ram32[(e ^ a) >>> 2] = v; else write32(cpu, a, v);`;
}

/** PUSH with a 32-bit stack (units run only when SS.B is set): memory first, then ESP. */
function push32Inline(value: string): string {
  return `r = (regs[4] - 4) | 0; ${stackCheck("r", 0x84)} ${write32From("(segBase[2] + r) | 0", value)} ` +
    "regs[4] = r;";
}

/** POP with a 32-bit stack: the load may fault before ESP changes. POP ESP gets the loaded value. */
function pop32Inline(dst: string): string {
  return `${stackCheck("regs[4]", 4)} ${read32Into("r", "(segBase[2] + regs[4]) | 0")} ` +
    `regs[4] = (regs[4] + 4) | 0; ${dst} = r;`;
}

/** A 32-bit ALU operation `op` on a1, b1 into `fr` with the lazy-flags record (alu.ts's layout). */
function aluInline32(op: number, a1: string, b1: string): string {
  switch (op) {
    case 0:
      return `fa = ${a1}; fb = ${b1}; fr = (fa + fb) | 0; cc[0] = 2; cc[1] = fr; cc[2] = fa; cc[3] = fb;`;
    case 5:
    case 7:
      return `fa = ${a1}; fb = ${b1}; fr = (fa - fb) | 0; cc[0] = 10; cc[1] = fr; cc[2] = fa; cc[3] = fb;`;
    case 1:
    case 4:
    case 6: {
      const o = op === 1 ? "|" : op === 4 ? "&" : "^";
      return `fa = ${a1}; fb = ${b1}; fr = fa ${o} fb; cc[0] = 18; cc[1] = fr; cc[2] = fa; cc[3] = fb;`;
    }
    default:
      return `fr = alu(cc, ${op}, ${a1}, ${b1}, 2);`;
  }
}

/**
 * A 32-bit ROL, ROR, SHL, SHR or SAR (`op`, ModRM.reg) of register expression `x` by the constant
 * `count` (0-31), as alu.ts's shift() does it: SHL/SHR/SAR leave their lazy record, ROL/ROR set CF
 * and OF on the materialized flags; a count of 0 changes nothing.
 */
function shiftInline32(op: number, x: string, count: number): string {
  if (count === 0) return "";
  switch (op) {
    case 0:
      return `${x} = (${x} << ${count}) | (${x} >>> ${32 - count}); t = materialize(cc); v = ${x} & 1; ` +
        `cc[4] = (t & ~0x801) | v | ((v ^ (${x} >>> 31)) << 11); cc[0] = 44;`;
    case 1:
      return `${x} = (${x} >>> ${count}) | (${x} << ${32 - count}); t = materialize(cc); v = ${x} >>> 31; ` +
        `cc[4] = (t & ~0x801) | v | ((v ^ ((${x} >>> 30) & 1)) << 11); cc[0] = 44;`;
    case 4:
    case 6:
      return `fa = ${x}; ${x} = fa << ${count}; cc[0] = 30; cc[1] = ${x}; cc[2] = fa; cc[3] = ${count};`;
    case 5:
      return `fa = ${x}; ${x} = (fa >>> ${count}) | 0; cc[0] = 34; cc[1] = ${x}; cc[2] = fa; cc[3] = ${count};`;
    case 7:
      return `fa = ${x}; ${x} = fa >> ${count}; cc[0] = 38; cc[1] = ${x}; cc[2] = fa; cc[3] = ${count};`;
  }
  throw new Error(`translator: no inline form for shift op ${op}`);
}

/** Which 8-bit ALU operations are inline (by ALU op number), named by the producer they leave. */
const INLINE8 = ["add", "logic", "", "", "logic", "sub8", "logic", "sub8"];

/**
 * An 8-bit ALU operation `op` (one of INLINE8's) on a1, b1 into `fr`, as alu() does it: operands
 * and result sign-extended from 8 bits, the record's op = kind x 4 + size 0.
 */
function aluInline8(op: number, a1: string, b1: string): string {
  const ops = `fa = (${a1} << 24) >> 24; fb = (${b1} << 24) >> 24;`;
  const rec = "cc[1] = fr; cc[2] = fa; cc[3] = fb;";
  switch (op) {
    case 0:
      return `${ops} fr = ((fa + fb) << 24) >> 24; cc[0] = 0; ${rec}`;
    case 5:
    case 7:
      return `${ops} fr = ((fa - fb) << 24) >> 24; cc[0] = 8; ${rec}`;
    default: {
      const o = op === 1 ? "|" : op === 4 ? "&" : "^";
      return `${ops} fr = fa ${o} fb; cc[0] = 16; ${rec}`;
    }
  }
}

/** Condition `cond` as an expression: fused with the producer just before it when that is known. */
function condition(cond: number, producer: string): string {
  if (producer === "sub" || producer === "sub8") {
    // fa, fb: the operands (sign-extended for 8 bits, so signed compares are plain compares).
    const u = producer === "sub" ? (x: string) => `(${x} >>> 0)` : (x: string) => `(${x} & 0xFF)`;
    switch (cond) {
      case 2:
        return `${u("fa")} < ${u("fb")}`;
      case 3:
        return `${u("fa")} >= ${u("fb")}`;
      case 4:
        return "fr === 0";
      case 5:
        return "fr !== 0";
      case 6:
        return `${u("fa")} <= ${u("fb")}`;
      case 7:
        return `${u("fa")} > ${u("fb")}`;
      case 8:
        return "fr < 0";
      case 9:
        return "fr >= 0";
      case 0xC:
        return "fa < fb";
      case 0xD:
        return "fa >= fb";
      case 0xE:
        return "fa <= fb";
      case 0xF:
        return "fa > fb";
    }
  } else if (producer === "logic") {
    switch (cond) {
      case 0:
      case 2:
        return "false";
      case 1:
      case 3:
        return "true";
      case 4:
      case 6:
        return "fr === 0";
      case 5:
      case 7:
        return "fr !== 0";
      case 8:
      case 0xC:
        return "fr < 0";
      case 9:
      case 0xD:
        return "fr >= 0";
      case 0xE:
        return "fr <= 0";
      case 0xF:
        return "fr > 0";
    }
  } else if (producer === "add") {
    switch (cond) {
      case 4:
        return "fr === 0";
      case 5:
        return "fr !== 0";
      case 8:
        return "fr < 0";
      case 9:
        return "fr >= 0";
    }
  }
  return `testCondition(cc, ${cond})`;
}
