/**
 * JavaScript or WebAssembly for translated guest code (issue #10): measured on real hot units.
 * Boots the reference guest in this process (--deterministic, the translator on) with the workload
 * `dd if=/dev/zero bs=1M count=N | md5sum` (or the busybox shell loop: --workload=loop), counts
 * the guest instructions each translated unit retires once the workload runs, picks the hottest
 * unit(s), and at the next entry of the hottest one snapshots the CPU (registers, lazy flags, EIP,
 * segment bases, TLBs) and the guest RAM. For that unit it then has two equivalents:
 *   JS:   the function our translator made (lib/x86/jit/translator.ts, used as is);
 *   WASM: the same instructions (the decode-cache slots the translator used) compiled by
 *         tools/wasm_unit.ts into a WebAssembly module over one WebAssembly.Memory holding the
 *         guest RAM copy, the two TLBs in use and the CPU state, with the TLB fast path inline
 *         and the lazy-flags record of lib/x86/lazy_flags.ts.
 * Both run from the same snapshot the same number of times and must end in identical registers,
 * flags, EIP and memory (else it stops: the numbers would mean nothing); then it prints ns per guest
 * instruction (CPU and wall time, after warm-up), compile time per unit, and the cost of a call
 * from each into a JS helper (the TLB-miss path, forced by clearing the TLB entries).
 * Usage: deno run -A tools/bench_wasm_vs_js.ts [--workload=md5|loop] [--units=3] [--runs=200000]
 *        [--print-js]
 * A benchmark that prints numbers, never a test.
 */
import { ensureGuest } from "./fetch_guest.ts";
import { Machine } from "../lib/machine/machine.ts";
import { Translator } from "../lib/x86/jit/translator.ts";
import type { Cpu } from "../lib/x86/cpu.ts";
import { main } from "../main.ts";
import { disassemble } from "../lib/x86/disassembler.ts";
import { peekCode } from "../lib/x86/instruction_view.ts";
import { measure, type UnitSource } from "./wasm_vs_js_measure.ts";

function arg(name: string, fallback: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : a.slice(name.length + 3);
}
const workload = arg("workload", "md5");
const unitCount = Number(arg("units", "3"));
const runs = Number(arg("runs", "200000"));
const printJs = Deno.args.includes("--print-js");
if (workload !== "md5" && workload !== "loop") {
  console.error(`bench_wasm_vs_js: --workload must be md5 or loop, not "${workload}"`);
  Deno.exit(2);
}

const g = await ensureGuest();
const kernel = g.vmlinux ?? g.kernel;
const command = workload === "md5"
  ? "echo W0; dd if=/dev/zero bs=1048576 count=64 2>/dev/null | md5sum"
  : "echo W0; i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done";

// ---- Hooks (this tool's process only): the machine, each unit's source and EIPs, unit heat ----

let cpu: Cpu | null = null;
const origRun = Machine.prototype.run;
Machine.prototype.run = function (this: Machine) {
  cpu = this.cpu;
  return origRun.call(this);
};

/** What new Function was given and what the factory it made was called with, per unit function. */
const sourceOf = new WeakMap<object, { source: string; eips: number[]; args: unknown[] }>();
const RealFunction = Function;
globalThis.Function = new Proxy(RealFunction, {
  construct(target, args) {
    const source = String(args[args.length - 1]);
    const factory = Reflect.construct(target, args) as (...a: unknown[]) => unknown;
    if (!source.includes("return function unit(")) return factory;
    return function (this: unknown, ...a: unknown[]) {
      const fn = factory.apply(this, a) as object;
      sourceOf.set(fn, { source, eips: a[2] as number[], args: a });
      return fn;
    };
  },
}) as FunctionConstructor;

interface Heat {
  id: number;
  fn: (n: number, stopAt: number) => number;
  map: Int32Array;
  offset: number;
  eip: number;
  retired: number;
  calls: number;
  dec?: { slots: number[]; fields: Record<string, number[]> };
}
let counting = false;
let heat: Heat[] = [];
let wrappedArray: unknown[] | null = null;
let wrappedUpTo = 0;
let armed: Heat | null = null;
let onSnapshot: ((h: Heat) => void) | null = null;

const origTranslate = Translator.prototype.translate;
Translator.prototype.translate = function (this: Translator, map: Int32Array, offset: number, eip: number) {
  const r = origTranslate.call(this, map, offset, eip);
  if (this.units !== wrappedArray) {
    wrappedArray = this.units;
    wrappedUpTo = 1;
    heat = [];
  }
  for (let id = wrappedUpTo; id < this.units.length; id++) {
    const fn = this.units[id];
    const h: Heat = {
      id,
      fn,
      map,
      offset: -1,
      eip: this.entryEip[id],
      retired: 0,
      calls: 0,
    };
    // The map offset of the entry: the map entry holding -id.
    for (let o = 0; o < 4096; o++) {
      if (map[o] === -id) {
        h.offset = o;
        break;
      }
    }
    heat[id] = h;
    // The decoded fields, copied now: the slots the translator just read (later the decode cache
    // may recycle them, and the page's map may name other units).
    const src = sourceOf.get(fn);
    if (src !== undefined && h.offset >= 0 && cpu !== null) {
      h.dec = decodedFields(cpu, map, h.offset, src.eips);
    }
    this.units[id] = (n: number, stopAt: number) => {
      if (armed === h && onSnapshot !== null) onSnapshot(h);
      const m = fn(n, stopAt);
      if (counting && m > n) {
        h.retired += m - n;
        h.calls++;
      }
      return m;
    };
  }
  wrappedUpTo = this.units.length;
  return r;
};

// The workload marker on the console starts the count.
const origWriteSync = Deno.stdout.writeSync.bind(Deno.stdout);
let consoleTail = "";
let markerAt = 0;
Deno.stdout.writeSync = (b: Uint8Array): number => {
  consoleTail = (consoleTail + new TextDecoder().decode(b)).slice(-200);
  if (!counting && /(^|\n)W0\r?\n/.test(consoleTail)) {
    counting = true;
    markerAt = performance.now();
    setTimeout(pick, 4000);
  }
  return origWriteSync(b);
};

function pick(): void {
  const ranked = heat.filter((h) => h !== undefined && h.retired > 0).sort((a, b) => b.retired - a.retired);
  const total = ranked.reduce((s, h) => s + h.retired, 0);
  console.error(
    `bench: ${((performance.now() - markerAt) / 1000).toFixed(1)} s of the ${workload} workload, ` +
      `${ranked.length} units ran ${total} instructions`,
  );
  const chosen = ranked.slice(0, unitCount);
  const queue = [...chosen];
  const units: UnitSource[] = [];
  const next = () => {
    const h = queue.shift();
    if (h === undefined) {
      finish(units, total);
      return;
    }
    armed = h;
    onSnapshot = (hh) => {
      armed = null;
      onSnapshot = null;
      const src = sourceOf.get(hh.fn);
      if (src === undefined) throw new Error(`no source recorded for unit ${hh.id}`);
      units.push(snapshotUnit(hh, src.source, src.eips, src.args, total));
      setTimeout(next, 0);
    };
  };
  next();
}

/** The decode-cache fields of the unit's instructions (at EIPs `eips`, the entry at map offset `offset`). */
function decodedFields(
  c: Cpu,
  map: Int32Array,
  offset: number,
  eips: number[],
): { slots: number[]; fields: Record<string, number[]> } {
  const dc = c.decoded;
  const slots: number[] = [];
  for (let i = 0; i + 1 < eips.length; i++) {
    const off = offset + ((eips[i] - eips[0]) | 0);
    let slot = map[off];
    if (slot < 0) slot = c.jit.entrySlot[-slot];
    slots.push(slot);
  }
  const copy = (a: Int32Array | Uint8Array | Uint16Array) => slots.map((s) => a[s]);
  return {
    slots,
    fields: {
      op: copy(dc.op),
      len: copy(dc.len),
      modrm: copy(dc.modrm),
      pfx: copy(dc.pfx),
      ea: copy(dc.ea),
      disp: copy(dc.disp),
      imm: copy(dc.imm),
      imm2: copy(dc.imm2),
      macc: copy(dc.macc),
    },
  };
}

/** The CPU and RAM as they are at this unit's entry. */
function snapshotUnit(h: Heat, source: string, eips: number[], args: unknown[], total: number): UnitSource {
  const c = cpu!;
  if (h.dec === undefined) throw new Error(`unit ${h.id}: decoded fields not recorded`);
  const slots = h.dec.slots;
  return {
    id: h.id,
    eip: h.eip,
    eips: eips.slice(),
    source,
    factoryArgs: args,
    share: h.retired / total,
    retired: h.retired,
    calls: h.calls,
    fn: h.fn,
    slots,
    text: eips.slice(0, -1).map((e) => disassemble(peekCode(c, (c.segBase[1] + e) | 0, 16), e).text),
    dec: h.dec.fields,
    regs: c.regs.slice(),
    cc: c.cc.slice(),
    st: c.st.slice(),
    segBase: c.segBase.slice(),
    segCheck: c.segCheck.slice(),
    ram: c.ram8.slice(),
    tlbR: c.tlbR.slice(),
    tlbW: c.tlbW.slice(),
  };
}

function finish(units: UnitSource[], total: number): void {
  counting = false;
  globalThis.Function = RealFunction;
  try {
    measure(cpu!, units, { runs, printJs, workload, total });
  } catch (e) {
    console.error(e instanceof Error ? e.stack ?? e.message : String(e));
    Deno.exit(1);
  }
  Deno.exit(0);
}

await main([
  "--deterministic",
  `--initrd=${g.initrd}`,
  "256",
  kernel,
  "console=ttyS0",
  "cryptomgr.notests=1",
  "noisapnp",
  "quiet",
  `lguest_run="${command}"`,
]);
console.error("bench: the guest stopped before the units were measured");
Deno.exit(1);
