/**
 * "JS-B" for tools/bench_wasm_vs_js.ts: the same unit as tools/wasm_unit.ts compiles, generated as
 * JavaScript with the same design, so that the JS-vs-wasm comparison separates the target (V8's
 * JavaScript tiers vs its wasm tiers) from code-generation choices. As in the wasm unit: the guest
 * registers are JavaScript locals loaded at entry and stored at exit, the rotates, NOT and the
 * read-modify-write ALU forms are inline (lib/x86/jit/translator.ts calls shift(), group3() and
 * aluEI() for them), no try/catch (faults are not modelled: see wasm_unit.ts). Like the
 * translator: the lazy-flags record in cpu.cc, the soft-TLB fast path inline on cpu.tlbR/tlbW,
 * the interpreter's helpers (read32, write32, materialize, testCondition, checkSegmentAccess) for
 * the slow paths. Supports what wasm_unit.ts supports; refuses the rest the same way.
 */
import type { Cpu } from "../lib/x86/cpu.ts";
import { getCF, materialize, testCondition } from "../lib/x86/lazy_flags.ts";
import { read32, read8, write32, write8 } from "../lib/x86/mmu.ts";
import { checkSegmentAccess } from "../lib/x86/segments.ts";
import type { Translator } from "../lib/x86/jit/translator.ts";
import { slotFields, type UnitSlots, WasmUnsupported } from "./wasm_unit.ts";

export type UnitFn = (n: number, stopAt: number) => number;

const HELPERS = { read32, read8, write32, materialize, testCondition, checkSegmentAccess, getCF, write8 };

/** The JavaScript source of the unit (the body of a factory over cpu, J and the helpers). */
export function jsUnitSource(u: UnitSlots): string {
  const count = u.op.length;
  const start = u.eips[0];
  const R = (r: number) => `r${r}`;
  const writeBack = Array.from({ length: 8 }, (_, r) => `regs[${r}] = r${r};`).join(" ");
  const exit = (target: number) => `st[0] = ${target}; ${writeBack} return n;`;
  const out: string[] = [
    "const regs = cpu.regs, cc = cpu.cc, st = cpu.st, segBase = cpu.segBase, segCheck = cpu.segCheck;",
    "const ram8 = cpu.ram8, ram32 = cpu.ram32;",
    "return function unit(n, stopAt) {",
    `if (n + ${count} > stopAt) return -1;`,
    "const tlbR = cpu.tlbR, tlbW = cpu.tlbW, ep = J.epoch;",
    `let ${Array.from({ length: 8 }, (_, r) => `r${r} = regs[${r}]`).join(", ")};`,
    "let a = 0, e = 0, v = 0, fa = 0, fb = 0, fr = 0, o = 0, t = 0;",
    "for (;;) {",
    `n += ${count};`,
  ];
  /** The slot's memory operand's offset (base + index << scale + displacement) as an expression. */
  const offset = (i: number): string => {
    const e = u.ea[i];
    const b = e & 15, x = (e >> 4) & 15, s = (e >> 8) & 3;
    if ((e & (1 << 15)) !== 0) throw new WasmUnsupported("16-bit addressing");
    const parts: string[] = [];
    if (b !== 8) parts.push(R(b));
    if (x !== 8) parts.push(s === 0 ? R(x) : `(${R(x)} << ${s})`);
    if (u.disp[i] !== 0 || parts.length === 0) parts.push(`${u.disp[i]}`);
    return `(${parts.join(" + ")}) | 0`;
  };
  const address = (i: number): string => {
    const seg = (u.ea[i] >> 12) & 7;
    return `o = ${offset(i)}; if (segCheck[${seg}] !== 0 || (o >>> 0) > 0xFFFFFFF8) ` +
      `checkSegmentAccess(cpu, ${seg}, o, ${u.macc[i]}); a = (o + segBase[${seg}]) | 0;`;
  };
  const read32Into = (dst: string) =>
    `e = tlbR[a >>> 12]; ${dst} = e !== -1 && (a & 0xFFF) <= 0xFFC && ((e ^ a) & 3) === 0 ? ` +
    "ram32[(e ^ a) >>> 2] : read32(cpu, a);";
  const read8Into = (dst: string) => `e = tlbR[a >>> 12]; ${dst} = e !== -1 ? ram8[e ^ a] : read8(cpu, a);`;
  const write32v = "e = tlbW[a >>> 12]; if (e !== -1 && (a & 0xFFF) <= 0xFFC && ((e ^ a) & 3) === 0) " +
    "ram32[(e ^ a) >>> 2] = v; else write32(cpu, a, v);";
  const alu = (op: number, a1: string, b1: string): [string, string] => {
    const pre = `fa = ${a1}; fb = ${b1}; `;
    const rec = (k: number) => ` cc[0] = ${k}; cc[1] = fr; cc[2] = fa; cc[3] = fb;`;
    switch (op) {
      case 0:
        return [pre + "fr = (fa + fb) | 0;" + rec(2), "add"];
      case 5:
      case 7:
        return [pre + "fr = (fa - fb) | 0;" + rec(10), "sub"];
      case 1:
      case 4:
      case 6:
        return [pre + `fr = fa ${op === 1 ? "|" : op === 4 ? "&" : "^"} fb;` + rec(18), "logic"];
    }
    throw new WasmUnsupported(`ALU operation ${op} (ADC/SBB)`);
  };
  const condition = (cond: number, producer: string): string => {
    if (producer === "sub" || producer === "sub8") {
      const u32 = producer === "sub" ? (x: string) => `(${x} >>> 0)` : (x: string) => `(${x} & 0xFF)`;
      const m: Record<number, string> = {
        2: `${u32("fa")} < ${u32("fb")}`,
        3: `${u32("fa")} >= ${u32("fb")}`,
        4: "fr === 0",
        5: "fr !== 0",
        6: `${u32("fa")} <= ${u32("fb")}`,
        7: `${u32("fa")} > ${u32("fb")}`,
        8: "fr < 0",
        9: "fr >= 0",
        0xC: "fa < fb",
        0xD: "fa >= fb",
        0xE: "fa <= fb",
        0xF: "fa > fb",
      };
      if (m[cond] !== undefined) return m[cond];
    } else if (producer === "logic" || producer === "add") {
      const common: Record<number, string> = { 4: "fr === 0", 5: "fr !== 0", 8: "fr < 0", 9: "fr >= 0" };
      if (common[cond] !== undefined) return common[cond];
      if (producer === "logic") {
        const l: Record<number, string> = {
          0: "false",
          2: "false",
          1: "true",
          3: "true",
          6: "fr === 0",
          7: "fr !== 0",
          0xC: "fr < 0",
          0xD: "fr >= 0",
          0xE: "fr <= 0",
          0xF: "fr > 0",
        };
        if (l[cond] !== undefined) return l[cond];
      }
    }
    return `testCondition(cc, ${cond})`;
  };
  const jumpTo = (target: number, rest: number): string =>
    (rest === 0 ? "" : `n -= ${rest}; `) +
    (target === start ? `if (n + ${count} <= stopAt) continue; ` : "") +
    exit(target);
  const get8 = (r: number) => r < 4 ? `(${R(r)} & 0xFF)` : `((${R(r & 3)} >>> 8) & 0xFF)`;
  const set8 = (r: number, v: string) => {
    const sh = r >= 4 ? 8 : 0;
    return `${R(r & 3)} = (${R(r & 3)} & ${~(0xFF << sh)}) | ((${v} & 0xFF) << ${sh});`;
  };
  const alu8 = (op: number, a1: string, b1: string): [string, string] => {
    const pre = `fa = (${a1} << 24) >> 24; fb = (${b1} << 24) >> 24; `;
    const rec = (k: number) => ` cc[0] = ${k}; cc[1] = fr; cc[2] = fa; cc[3] = fb;`;
    if (op === 0) return [pre + "fr = ((fa + fb) << 24) >> 24;" + rec(0), "add"];
    if (op === 5 || op === 7) return [pre + "fr = ((fa - fb) << 24) >> 24;" + rec(8), "sub8"];
    if (op === 1 || op === 4 || op === 6) {
      return [pre + `fr = fa ${op === 1 ? "|" : op === 4 ? "&" : "^"} fb;` + rec(16), "logic"];
    }
    throw new WasmUnsupported(`8-bit ALU operation ${op}`);
  };
  const write8v = "e = tlbW[a >>> 12]; if (e !== -1) ram8[e ^ a] = v; else write8(cpu, a, v);";
  const stackCheck = (sp: string) => `if (segCheck[2] !== 0) checkSegmentAccess(cpu, 2, ${sp}, 4);`;
  let flagsIn = "";
  for (let i = 0; i < count; i++) {
    const { id, imm, next, g, rm, mem, what } = slotFields(u, i);
    let producer = "";
    let stores = false;
    let body = "";
    if (id < 0x40 && (id & 7) < 6 && (id & 7) % 2 === 1) {
      const op = (id >> 3) & 7, form = id & 7;
      if (op === 2 || op === 3) throw new WasmUnsupported(`${what}: ADC/SBB`);
      if (form === 1 && mem && op !== 7) throw new WasmUnsupported(`${what}: ALU to memory`);
      if (mem) body = address(i) + read32Into("v");
      const src = (r: number) => mem ? "v" : R(r);
      const [code, p] = form === 1
        ? alu(op, src(rm), R(g))
        : form === 3
        ? alu(op, R(g), src(rm))
        : alu(op, R(0), `${imm}`);
      body += code;
      producer = p;
      if (op !== 7) body += ` ${form === 1 ? R(rm) : form === 3 ? R(g) : R(0)} = fr;`;
    } else if (id === 0x81 || id === 0x83) {
      const op = g;
      if (op === 2 || op === 3) throw new WasmUnsupported(`${what}: ADC/SBB`);
      if (!mem) {
        const [code, p] = alu(op, R(rm), `${imm}`);
        body = code + (op !== 7 ? ` ${R(rm)} = fr;` : "");
        producer = p;
      } else if (op === 7) {
        const [code, p] = alu(7, "v", `${imm}`);
        body = address(i) + read32Into("v") + code;
        producer = p;
      } else {
        body = address(i) + read32Into("t") + alu(op, "t", `${imm}`)[0] + " v = fr; " + write32v;
        stores = true;
      }
    } else if (id === 0x89) {
      if (mem) {
        body = address(i) + `v = ${R(g)}; ` + write32v;
        stores = true;
      } else body = `${R(rm)} = ${R(g)};`;
    } else if (id === 0x8B) {
      body = mem ? address(i) + read32Into(R(g)) : `${R(g)} = ${R(rm)};`;
    } else if (id === 0x1B6) {
      body = mem
        ? address(i) + read8Into(R(g))
        : `${R(g)} = ${rm >= 4 ? `(${R(rm & 3)} >>> 8) & 0xFF` : `${R(rm)} & 0xFF`};`;
    } else if (id === 0x8D) {
      if (!mem) throw new WasmUnsupported(`${what}: LEA with a register operand`);
      body = `${R(g)} = ${offset(i)};`;
    } else if (id === 0xC1 && !mem && g !== 2 && g !== 3) {
      const c = imm & 31, r = R(rm);
      if (c !== 0) {
        if (g === 0 || g === 1) {
          body = g === 0
            ? `${r} = (${r} << ${c}) | (${r} >>> ${32 - c}); materialize(cc); t = ${r} & 1; ` +
              `cc[4] = (cc[4] & ~0x801) | t | ((t ^ (${r} >>> 31)) << 11); cc[0] = 44;`
            : `${r} = (${r} >>> ${c}) | (${r} << ${32 - c}); materialize(cc); t = ${r} >>> 31; ` +
              `cc[4] = (cc[4] & ~0x801) | t | ((t ^ ((${r} >>> 30) & 1)) << 11); cc[0] = 44;`;
        } else {
          const kind = g === 5 ? 8 : g === 7 ? 9 : 7;
          const o = g === 5 ? ">>>" : g === 7 ? ">>" : "<<";
          body = `fa = ${r}; ${r} = fa ${o} ${c}; cc[0] = ${
            kind * 4 + 2
          }; cc[1] = ${r}; cc[2] = fa; cc[3] = ${c};`;
        }
      }
    } else if (id === 0xF7 && g === 2 && !mem) {
      body = `${R(rm)} = ~${R(rm)};`;
    } else if (id === 0x90) {
      body = "";
    } else if (id < 0x40 && ((id & 7) === 2 || (id & 7) === 4)) {
      const op = (id >> 3) & 7;
      if ((id & 7) === 2) {
        const [code, p] = alu8(op, get8(g), mem ? "t" : get8(rm));
        body = (mem ? address(i) + read8Into("t") : "") + code + (op !== 7 ? " " + set8(g, "fr") : "");
        producer = p;
      } else {
        const [code, p] = alu8(op, get8(0), `${imm}`);
        body = code + (op !== 7 ? " " + set8(0, "fr") : "");
        producer = p;
      }
    } else if (id === 0x80 && (g === 7 || !mem)) {
      if (mem) {
        const [code, p] = alu8(7, "v", `${imm}`);
        body = address(i) + read8Into("v") + code;
        producer = p;
      } else {
        const [code, p] = alu8(g, get8(rm), `${imm}`);
        body = code + (g !== 7 ? " " + set8(rm, "fr") : "");
        producer = p;
      }
    } else if (id === 0x84 || id === 0xA8) {
      const [code, p] = id === 0xA8 ? alu8(4, get8(0), `${imm}`) : alu8(4, mem ? "v" : get8(rm), get8(g));
      body = (id === 0x84 && mem ? address(i) + read8Into("v") : "") + code;
      producer = p;
    } else if (id === 0x88) {
      if (mem) {
        body = address(i) + `v = ${get8(g)}; ` + write8v;
        stores = true;
      } else body = set8(rm, get8(g));
    } else if (id === 0x8A) {
      body = mem ? address(i) + read8Into("t") + " " + set8(g, "t") : set8(g, get8(rm));
    } else if (id >= 0x40 && id <= 0x4F) {
      const r = R(id & 7);
      body = `t = getCF(cc); ${r} = (${r} ${id < 0x48 ? "+" : "-"} 1) | 0; cc[0] = ${id < 0x48 ? 22 : 26}; ` +
        `cc[1] = ${r}; cc[3] = t;`;
    } else if ((id >= 0x50 && id <= 0x57) || id === 0x68 || id === 0x6A || id === 0xE8) {
      const value = id === 0xE8 ? `${next}` : id <= 0x57 ? R(id & 7) : `${imm}`;
      body = `t = (r4 - 4) | 0; if (segCheck[2] !== 0) checkSegmentAccess(cpu, 2, t, 0x84); ` +
        `a = (segBase[2] + t) | 0; v = ${value}; ${write32v} r4 = t;`;
      if (id === 0xE8) body += jumpTo((next + imm) | 0, 0);
      else stores = true;
    } else if (id >= 0x58 && id <= 0x5F) {
      body = `${stackCheck("r4")} a = (segBase[2] + r4) | 0; ${read32Into("t")} r4 = (r4 + 4) | 0; ${
        R(id & 7)
      } = t;`;
    } else if (id === 0xC3) {
      body = `${stackCheck("r4")} a = (segBase[2] + r4) | 0; ${read32Into("t")} r4 = (r4 + 4) | 0; ` +
        `st[0] = t; ${writeBack} return n;`;
    } else if (id === 0xE9 || id === 0xEB) {
      body = i === count - 1 ? jumpTo((next + imm) | 0, 0) : "";
      producer = flagsIn;
    } else if (id === 0x85 || id === 0xA9) {
      const a1 = id === 0xA9 ? "r0" : mem ? "v" : R(rm);
      const b1 = id === 0xA9 ? `${imm}` : R(g);
      body = (id === 0x85 && mem ? address(i) + read32Into("v") : "") +
        `fr = ${a1} & ${b1}; cc[0] = 18; cc[1] = fr;`;
      producer = "logic";
    } else if ((id >= 0x70 && id <= 0x7F) || (id >= 0x180 && id <= 0x18F)) {
      const target = (next + imm) | 0;
      const rest = count - i - 1;
      const retire = rest === 0 ? "" : `n -= ${rest}; `;
      const again = target === start ? `if (n + ${count} <= stopAt) continue; ` : "";
      body = `if (${condition(id & 0xF, flagsIn)}) { ${retire}${again}${exit(target)} }`;
      producer = flagsIn;
    } else {
      throw new WasmUnsupported(`${what}: not supported by the back ends`);
    }
    out.push(body);
    if (stores && i !== count - 1) out.push(`if (J.epoch !== ep) { n -= ${count - i - 1}; ${exit(next)} }`);
    flagsIn = producer;
  }
  if (![0xC3, 0xE8, 0xE9, 0xEB].includes(u.op[count - 1])) out.push(exit(u.eips[count]));
  out.push("}", "};");
  return out.join("\n");
}

/** Compiles the unit's JS-B source against `cpu` (`tag` makes the source unique: V8 caches by source). */
export function compileJsUnit(cpu: Cpu, jit: Translator, source: string, tag = ""): UnitFn {
  const names = ["cpu", "J", ...Object.keys(HELPERS)];
  const factory = new Function(...names, tag === "" ? source : `${source}\n// ${tag}`);
  return factory(cpu, jit, ...Object.values(HELPERS)) as UnitFn;
}
