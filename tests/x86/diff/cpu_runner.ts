/**
 * Our side of the differential test: runs each case on lib/x86's Cpu in 32-bit flat protected mode
 * with the same memory layout as host_runner.c (instructions at entryEip among pages of HLTs, data
 * regions at the same addresses) and `stopOnException`, then reports the outcome as a DiffResult.
 */
import { MmioBus, PortBus } from "../../../lib/machine/bus.ts";
import { GuestMemory } from "../../../lib/machine/guest_memory.ts";
import { Cpu } from "../../../lib/x86/cpu.ts";
import {
  CODE_BASE,
  CODE_SIZE,
  type DiffCase,
  type DiffResult,
  HLT,
  type Region,
  STOP_HLT,
} from "./diff_case.ts";

/** Instructions a case may retire before we call it a runaway (one instruction, REP steps, the HLT). */
const BUDGET = 64;

export class CpuRunner {
  readonly #mem = new GuestMemory(8 << 20);
  readonly #cpu = new Cpu(this.#mem, new PortBus(), new MmioBus());
  readonly #regions: readonly Region[];
  readonly #backgrounds: readonly Uint8Array[];
  /** Per region: what it held before the case ran (background plus the case's patches). */
  readonly #init: Uint8Array[];

  /**
   * With `translate`, every case runs through the translator (jit/translator.ts) in its test mode:
   * each instruction sequence is translated at its first execution, so the blocks the cases make
   * (an instruction and the flag consumers after it) run as generated code.
   */
  constructor(regions: readonly Region[], backgrounds: readonly Uint8Array[], translate = false) {
    this.#regions = regions;
    this.#backgrounds = backgrounds;
    this.#init = backgrounds.map((b) => b.slice());
    regions.forEach((r, i) => this.#mem.write(r.base, backgrounds[i]));
    this.#mem.write(CODE_BASE, new Uint8Array(CODE_SIZE).fill(HLT));
    this.#cpu.stopOnException = true;
    this.#cpu.jit.enabled = translate;
    this.#cpu.jit.eager = translate;
  }

  run(c: DiffCase): DiffResult {
    const mem = this.#mem, cpu = this.#cpu;
    for (const p of c.patches) {
      mem.write(p.linearAddr, p.bytes);
      const k = this.#regionIndex(p.linearAddr);
      this.#init[k].set(p.bytes, p.linearAddr - this.#regions[k].base);
    }
    mem.write(c.entryEip, c.code);
    let error: string | null = null;
    try {
      cpu.enterProtectedFlat(c.entryEip);
      cpu.regs.set(c.regs);
      cpu.setEflags(c.eflags);
      cpu.lastException = -1;
      cpu.execute(BUDGET);
    } catch (e) {
      error = `ours threw ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
    }
    let stop = STOP_HLT, eip = cpu.eip;
    if (error === null) {
      if (cpu.stopReason === "exception") stop = cpu.lastException;
      else if (cpu.halted) eip = (eip - 1) >>> 0; // HLT leaves EIP after itself; the host reports the HLT
      else {error =
          `ours did not stop within ${BUDGET} instructions (stopReason "${cpu.stopReason}" ${cpu.stopMessage})`;}
    }
    const result: DiffResult = {
      regs: cpu.regs.slice(),
      eflags: cpu.getEflags(),
      stop,
      eip,
      changes: this.#collectChanges(),
      error,
    };
    mem.write(c.entryEip, new Uint8Array(c.code.length).fill(HLT));
    for (const p of c.patches) {
      const k = this.#regionIndex(p.linearAddr);
      const off = p.linearAddr - this.#regions[k].base;
      const bg = this.#backgrounds[k].subarray(off, off + p.bytes.length);
      mem.write(p.linearAddr, bg);
      this.#init[k].set(bg, off);
    }
    return result;
  }

  /** Every byte that differs from the pre-case contents, put back to the background as it's found. */
  #collectChanges(): Map<number, number> {
    const changes = new Map<number, number>();
    const ram = this.#mem.u8, ram32 = this.#mem.i32;
    this.#regions.forEach((r, k) => {
      const init = this.#init[k], init32 = new Int32Array(init.buffer, init.byteOffset, init.length >> 2);
      const bg = this.#backgrounds[k];
      const base32 = r.base >> 2;
      for (let w = 0; w < init32.length; w++) {
        if (ram32[base32 + w] === init32[w]) continue;
        for (let b = w * 4; b < w * 4 + 4; b++) {
          if (ram[r.base + b] !== init[b]) changes.set(r.base + b, ram[r.base + b]);
          ram[r.base + b] = bg[b];
          init[b] = bg[b];
        }
      }
    });
    return changes;
  }

  #regionIndex(linearAddr: number): number {
    return this.#regions.findIndex((r) => linearAddr >= r.base && linearAddr < r.base + r.sizeBytes);
  }
}
