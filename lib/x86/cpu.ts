/**
 * The i686 CPU: architectural state and the public face the machine, the launcher and tests use.
 * Semantics live elsewhere: the hot loop in interpreter.ts, the MMU (soft TLB and page walk) in
 * mmu.ts, segments in segments.ts, exceptions and interrupts in interrupts.ts, instruction
 * helpers in ops/, virtual-8086 mode in vm86.ts, task switches in task_switch.ts.
 */
// Evaluated first: the modules below read these constants at load time.
export * from "./registers.ts";
import type { MmioBus, PortBus } from "../machine/bus.ts";
import type { GuestMemory } from "../machine/guest_memory.ts";
import type { InterruptSource } from "../machine/irq.ts";
import { SIGNATURE } from "./cpuid.ts";
import { DecodeCache } from "./decode_cache.ts";
import { CC_EFLAGS, CC_FLAGS, CC_OP, materialize } from "./lazy_flags.ts";
import { execute } from "./interpreter.ts";
import { writeCr } from "./ops/system_ops.ts";
import {
  flushTlb,
  invalidateCodePage,
  read16,
  read32,
  read8,
  TLB_ENTRIES,
  write16,
  write32,
  write8,
} from "./mmu.ts";
import { Fpu } from "./fpu/fpu.ts";
import { Translator } from "./jit/translator.ts";

import {
  CR0_CD,
  CR0_ET,
  CR0_NW,
  CR0_PE,
  CR0_PG,
  CS,
  EDX,
  LDTR,
  ST_CPL,
  ST_CR0,
  ST_EIP,
  ST_GDT_LIMIT,
  ST_IDT_LIMIT,
  TR,
} from "./registers.ts";

/** Why execute() returned early, besides running out of budget. */
/** "stopped": a paravirt host stopped the guest (the Machine already holds the reason). */
export type StopReason = "" | "halt" | "exception" | "shutdown" | "unsupported" | "stopped";

export interface CpuOptions {
  /** Attach an x87 FPU (default true); without one CPUID clears the FPU bit and ESC opcodes raise #NM. */
  fpu?: boolean;
  /** Translate hot code (jit/translator.ts); default true. */
  jit?: boolean;
}

export class Cpu {
  readonly mem: GuestMemory;
  readonly ram8: Uint8Array;
  readonly ram16: Uint16Array;
  readonly ram32: Int32Array;
  readonly ramView: DataView;
  readonly ramSize: number;
  readonly ramPages: number;
  readonly ports: PortBus;
  readonly mmio: MmioBus;

  /** General registers EAX..EDI as int32, with 16- and 8-bit views of the same bytes. */
  readonly regs = new Int32Array(8);
  readonly r16 = new Uint16Array(this.regs.buffer);
  readonly r8 = new Uint8Array(this.regs.buffer);
  /** Lazy flags record plus the EFLAGS word (see lazy_flags.ts). */
  readonly cc = new Int32Array(5);
  /** Scalar state: EIP, control registers, descriptor-table registers, CPL, MSRs (ST_* indices). */
  readonly st = new Int32Array(16);
  /** Segment registers ES CS SS DS FS GS LDTR TR: selector and descriptor cache. */
  readonly segSel = new Int32Array(8);
  readonly segBase = new Int32Array(8);
  readonly segLimit = new Int32Array(8);
  /** Descriptor attributes: bits 0-3 type, 4 S, 5-6 DPL, 7 P, 12 AVL, 14 D/B, 15 G (hi dword >> 8). */
  readonly segAttr = new Int32Array(8);
  /**
   * Per segment register: 0 when it is flat (base 0, limit 4 GiB, expand-up, writable data), so
   * data accesses through it need no limit or type check; decided when it is loaded (segments.ts
   * updateSegmentCheck). The check itself always reads the live descriptor cache.
   */
  readonly segCheck = new Int32Array(8);
  readonly dr = new Int32Array(8);

  /** Soft TLB: linear page -> (physical ^ linear) page, or -1. Kernel/user x read/write/exec. */
  readonly tlbKR = new Int32Array(TLB_ENTRIES).fill(-1);
  readonly tlbKW = new Int32Array(TLB_ENTRIES).fill(-1);
  readonly tlbKX = new Int32Array(TLB_ENTRIES).fill(-1);
  readonly tlbUR = new Int32Array(TLB_ENTRIES).fill(-1);
  readonly tlbUW = new Int32Array(TLB_ENTRIES).fill(-1);
  readonly tlbUX = new Int32Array(TLB_ENTRIES).fill(-1);
  /** The tables for the current privilege level. */
  tlbR: Int32Array;
  tlbW: Int32Array;
  tlbX: Int32Array;
  /** Linear pages filled since the last flush (bit 20 = global page). */
  readonly tlbFilled = new Int32Array(1 << 16);
  tlbFilledCount = 0;
  /** Per physical RAM page: bit 0 = instructions decoded from it, bit 1 = ROM (writes ignored). */
  readonly pageFlags: Uint8Array;
  readonly decoded: DecodeCache;

  /** Code segment default size (CS.D) and stack size (SS.B): 32-bit when true. */
  code32 = false;
  ss32 = false;
  halted = false;
  /** Why the last execute() stopped early. */
  stopReason: StopReason = "";
  /** A human-readable reason for "shutdown"/"unsupported" stops. */
  stopMessage = "";
  /** Retired instructions before the current execute() call, and within it so far. */
  retiredBase = 0;
  sliceRetired = 0;
  /** Interrupts are inhibited for one instruction after STI / MOV SS / POP SS. */
  interruptShadow = false;
  /** Set with a fault raised after a task switch's commit point: EIP is the new task's already. */
  faultInNewTask = false;
  /** MOV SS / POP SS also hold off the single-step trap (and data breakpoints) for one instruction. */
  trapShadow = false;

  /** External interrupts (the PIC, or lguest's virtual interrupt controller). */
  interrupts: InterruptSource | null = null;
  /** Test hook: an exception stops execute() (stopReason "exception") instead of being delivered. */
  stopOnException = false;
  lastException = -1;
  /** CR0.NE = 0 and an x87 error is pending: the platform raises IRQ 13 (FERR#). */
  onFpuError: (() => void) | null = null;
  /** Set when a block of instructions ended in a way that must stop execute(). */
  blockFailed = false;
  /** Set by INT n/INT3/INTO: the single-step trap is not taken after them. */
  softwareInterruptTaken = false;
  /** Debugging hook: told of every exception before it is delivered. */
  onException: ((vector: number, errorCode: number, eip: number) => void) | null = null;
  lastErrorCode = 0;
  /**
   * Hook for paravirtual guests: called for INT n before IDT delivery; returning true means the
   * host handled it (lguest's hypercall trap, int $0x1F). `next` is the EIP after the INT.
   */
  softwareInterruptHook: ((vector: number, next: number) => boolean) | null = null;
  /** Called with a GP-faulting instruction before delivery; returning true means it was emulated. */
  generalProtectionHook: ((eip: number) => boolean) | null = null;
  /**
   * Hook for paravirtual guests: called before any protected-mode interrupt or exception is delivered
   * through the IDT (arguments as deliverInterrupt's); returning true means the host delivered it
   * (lguest reflects traps and interrupts itself, lib/lguest/guest_trap.ts).
   */
  deliveryHook:
    | ((
      vector: number,
      source: number,
      hasErrorCode: boolean,
      errorCode: number,
      returnEip: number,
    ) => boolean)
    | null = null;
  /**
   * Host-owned system tables seen at a fixed linear window by supervisor accesses (descriptor-table
   * reads, TSS): lguest's switcher pages at the top of the address space hold the Guest's GDT copy.
   * Not guest RAM: the guest's own page tables cannot reach it.
   */
  sysWindow: DataView | null = null;
  sysWindowBase = 0;
  /** TSC: virtual nanoseconds * tscPerNs, via this clock (set by the machine). */
  nowNs: () => number = () => this.retiredBase + this.sliceRetired;
  /** TSC ticks per virtual nanosecond (1 = a 1 GHz TSC). */
  tscPerNs = 1;
  /** Added to the TSC by WRMSR 0x10. */
  tscOffset = 0;
  readonly fpu: Fpu | null;
  /** The translator of hot code (disabled with --no-jit). */
  readonly jit: Translator;

  constructor(mem: GuestMemory, ports: PortBus, mmio: MmioBus, options: CpuOptions = {}) {
    this.mem = mem;
    this.ram8 = mem.u8;
    this.ram16 = mem.u16;
    this.ram32 = mem.i32;
    this.ramView = mem.view;
    this.ramSize = mem.sizeBytes;
    this.ramPages = mem.sizeBytes >>> 12;
    this.ports = ports;
    this.mmio = mmio;
    this.pageFlags = new Uint8Array(this.ramPages);
    this.decoded = new DecodeCache(this.ramPages);
    this.tlbR = this.tlbKR;
    this.tlbW = this.tlbKW;
    this.tlbX = this.tlbKX;
    this.jit = new Translator(this, options.jit ?? true);
    this.fpu = (options.fpu ?? true)
      ? new Fpu({
        readU8: (a) => read8(this, a),
        readU16: (a) => read16(this, a),
        readU32: (a) => read32(this, a),
        writeU8: (a, v) => write8(this, a, v),
        writeU16: (a, v) => write16(this, a, v),
        writeU32: (a, v) => write32(this, a, v),
      })
      : null;
    mem.onDeviceWrite = (page) => {
      if (page < this.ramPages && (this.pageFlags[page] & 1) !== 0) invalidateCodePage(this, page);
    };
    this.reset();
  }

  get eip(): number {
    return this.st[ST_EIP] >>> 0;
  }
  set eip(v: number) {
    this.st[ST_EIP] = v | 0;
  }
  get cpl(): number {
    return this.st[ST_CPL];
  }

  /** Power-on / RESET state (SDM Vol. 3A, 9.1.1): real mode at F000:FFF0. */
  reset(): void {
    this.regs.fill(0);
    this.regs[EDX] = SIGNATURE; // family, model and stepping, exactly as CPUID.1:EAX (SDM 9.1.1)
    this.st.fill(0);
    this.st[ST_CR0] = CR0_ET | CR0_CD | CR0_NW;
    this.st[ST_IDT_LIMIT] = 0x3FF;
    this.st[ST_GDT_LIMIT] = 0xFFFF;
    this.cc[CC_OP] = CC_EFLAGS;
    this.cc[CC_FLAGS] = 2;
    for (let s = 0; s < 8; s++) {
      this.segSel[s] = 0;
      this.segBase[s] = 0;
      this.segLimit[s] = 0xFFFF;
      this.segAttr[s] = s === CS ? 0x9B : s === LDTR ? 0x82 : s === TR ? 0x8B : 0x93;
      this.segCheck[s] = 1;
    }
    // The reset vector's CS base is 0xFFFF0000 on hardware; firmware is mirrored below 1 MiB, so
    // we start at the identical bytes of the low alias (CS base 0xF0000).
    this.segSel[CS] = 0xF000;
    this.segBase[CS] = 0xF0000;
    this.st[ST_EIP] = 0xFFF0;
    this.dr.fill(0);
    this.dr[6] = 0xFFFF0FF0 | 0;
    this.dr[7] = 0x400;
    this.code32 = false;
    this.ss32 = false;
    this.halted = false;
    this.interruptShadow = false;
    this.faultInNewTask = false;
    this.trapShadow = false;
    this.fpu?.reset();
    this.setCpl(0);
    flushTlb(this, false);
    this.decoded.clear();
    for (let p = 0; p < this.ramPages; p++) this.pageFlags[p] &= 2; // ROM stays ROM
  }

  /**
   * Enters 32-bit flat protected mode at `entry` (what the Linux 32-bit boot protocol expects):
   * CS/DS/ES/SS with base 0 and a 4 GiB limit, CPL 0, paging off, interrupts off. `cs`/`ds` are
   * the selectors reported (the boot protocol uses 0x10/0x18; descriptors need not exist).
   */
  enterProtectedFlat(entry: number, cs = 0x10, ds = 0x18): void {
    this.st[ST_CR0] = (this.st[ST_CR0] | CR0_PE | CR0_ET) & ~(CR0_CD | CR0_NW | CR0_PG);
    for (let s = 0; s < 6; s++) {
      this.segSel[s] = s === CS ? cs : ds;
      this.segBase[s] = 0;
      this.segLimit[s] = -1;
      this.segAttr[s] = s === CS ? 0xC09B : 0xC093;
      this.segCheck[s] = s === CS ? 1 : 0;
    }
    this.code32 = true;
    this.ss32 = true;
    this.setCpl(0);
    this.setEflags(2);
    this.st[ST_EIP] = entry | 0;
    this.halted = false;
    flushTlb(this, false);
  }

  /** Switches the current TLB tables to match the privilege level. */
  setCpl(cpl: number): void {
    this.st[ST_CPL] = cpl;
    const user = cpl === 3;
    this.tlbR = user ? this.tlbUR : this.tlbKR;
    this.tlbW = user ? this.tlbUW : this.tlbKW;
    this.tlbX = user ? this.tlbUX : this.tlbKX;
  }

  /** The full EFLAGS value. */
  getEflags(): number {
    return materialize(this.cc) | 2;
  }

  /** Sets EFLAGS without privilege checks (loaders, tests, interrupt return after checks). */
  setEflags(v: number): void {
    this.cc[CC_FLAGS] = (v & 0x3F7FD7) | 2;
    this.cc[CC_OP] = CC_EFLAGS;
  }

  /** Instructions retired since power-on (or the counter's last reset). */
  instructionsRetired(): number {
    return this.retiredBase + this.sliceRetired;
  }

  /** Makes a range of RAM read-only to the guest (a firmware ROM's shadow below 1 MiB). */
  protectRom(physAddr: number, sizeBytes: number): void {
    for (let p = physAddr >>> 12; p < (physAddr + sizeBytes) >>> 12 && p < this.ramPages; p++) {
      this.pageFlags[p] |= 2;
    }
    flushTlb(this, false);
  }

  /** MOV CRn, value with its architectural side effects (TLB flushes, mode bits); for loaders and tests. */
  writeControlRegister(n: number, value: number): void {
    writeCr(this, n, value);
  }

  /** Runs up to `budget` instructions; returns how many retired. See interpreter.ts. */
  execute(budget: number): number {
    return execute(this, budget);
  }
}
