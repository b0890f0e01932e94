/**
 * The host side of lguest (Linux 4.9 drivers/lguest, LGUEST-ABI.md): what `/dev/lguest` and its
 * switcher did, on our interpreter. The Guest kernel runs in ring 1 on the real CPU model; the host
 * sits in the CPU's delivery hook, so every trap, interrupt and `int $0x1F` lands here: hypercalls
 * (after draining the async ring), traps reflected through the Guest's IDT copy, IRQs from the virtual
 * interrupt controller, and #GP(0) port I/O emulated as the launcher did. The soft TLB is our shadow
 * page table: the page-table hypercalls flush exactly what they must. A Guest that breaks a rule is
 * killed with lguest's own reason (the first one wins); nothing it passes reaches outside its RAM.
 */
import type { Timer, VirtualClock } from "../machine/clock.ts";
import type { GuestMemory } from "../machine/guest_memory.ts";
import type { PortBus } from "../machine/bus.ts";
import type { StopKind } from "../support/errors.ts";
import { debug } from "../support/log.ts";
import type { Cpu } from "../x86/cpu.ts";
import { FAULT, faultCode } from "../x86/fault.ts";
import { INT_SOFTWARE } from "../x86/interrupts.ts";
import { flushTlb, invalidatePage } from "../x86/mmu.ts";
import {
  CR0_ET,
  CR0_MP,
  CR0_NE,
  CR0_PE,
  CR0_PG,
  CR0_TS,
  CR0_WP,
  CR4_OSFXSR,
  CR4_PAE,
  CR4_PGE,
  CS,
  DS,
  EAX,
  EBX,
  ECX,
  EDX,
  ES,
  ESI,
  FS,
  GS,
  SS,
  ST_CR0,
  ST_CR2,
  ST_CR3,
  ST_CR4,
  ST_GDT_BASE,
  ST_GDT_LIMIT,
  ST_IDT_BASE,
  ST_IDT_LIMIT,
  TR,
} from "../x86/registers.ts";
import { loadCache, readDescriptor } from "../x86/segments.ts";
import { GDT_ENTRIES, GUEST_PL, GuestGdt, LGUEST_KERNEL_CS, LGUEST_KERNEL_DS } from "./guest_gdt.ts";
import { FIRST_EXTERNAL_VECTOR, GuestIdt } from "./guest_idt.ts";
import { enterGuestHandler, enterGuestHandlerReusingFrame, type GuestKernelStack } from "./guest_trap.ts";
import {
  HYPERCALL_LIMIT,
  hypercallByNumber,
  LGUEST_SHUTDOWN_RESTART,
  LGUEST_TRAP_ENTRY,
  LHCALL_FLUSH_ASYNC,
  LHCALL_FLUSH_TLB,
  LHCALL_HALT,
  LHCALL_LGUEST_INIT,
  LHCALL_LOAD_GDT_ENTRY,
  LHCALL_LOAD_IDT_ENTRY,
  LHCALL_LOAD_TLS,
  LHCALL_NEW_PGTABLE,
  LHCALL_RING_SIZE,
  LHCALL_SEND_INTERRUPTS,
  LHCALL_SET_CLOCKEVENT,
  LHCALL_SET_PGD,
  LHCALL_SET_PMD,
  LHCALL_SET_PTE,
  LHCALL_SET_STACK,
  LHCALL_SHUTDOWN,
  LHCALL_TS,
} from "./hypercalls.ts";
import {
  HCALL_ARGS_SIZE,
  LGUEST_DATA,
  LGUEST_DATA_SIZE,
  SYSCALL_VECTOR,
  X86_EFLAGS_IF,
} from "./lguest_data.ts";
import { LguestIrqs } from "./lguest_irqs.ts";
import { emulateGpInstruction } from "./port_io.ts";

/** Where lguest's switcher lived: the top 4 MiB of every address space, which the Guest must not use. */
export const SWITCHER_ADDR = 0xFFC0_0000;
/** lguest_data.reserve_mem: 4 GiB minus the switcher address. */
export const RESERVE_MEM = 0x1_0000_0000 - SWITCHER_ADDR;
/** The Guest's reason string for a power-off (lguest_power_off in arch/x86/lguest/boot.c). */
export const POWER_DOWN_REASON = "Power down";
/** LHCALL_SHUTDOWN reads at most this many bytes of reason. */
const SHUTDOWN_MESSAGE_BYTES = 128;
const GP = 13, PF = 14;

/** What the host needs of the Machine (structurally: lib/machine/machine.ts's Machine). */
export interface LguestMachine {
  readonly cpu: Cpu;
  readonly mem: GuestMemory;
  readonly ports: PortBus;
  readonly clock: VirtualClock;
  stop(kind: StopKind, reason: string): void;
  wake(): void;
}

export interface LguestHostOptions {
  /** The Guest kernel was built with PAE: its page tables are PAE tables. */
  pae: boolean;
  /** Wall-clock time at virtual time zero, ms since the epoch (default: the host's now). */
  startTimeMs?: number;
}

export class LguestHost {
  readonly pae: boolean;
  readonly irqs: LguestIrqs;
  readonly gdt = new GuestGdt();
  readonly idt = new GuestIdt();
  /** Hypercalls made, by number (synchronous and from the async ring). */
  readonly hypercallCounts = new Uint32Array(HYPERCALL_LIMIT);
  asyncHypercalls = 0;
  trapsReflected = 0;
  portIoEmulated = 0;
  /** Guest-physical address of lguest_data; -1 before LHCALL_LGUEST_INIT. */
  dataPhysAddr = -1;
  noirqIret = -1;
  kernelAddress = 0;
  readonly stack: GuestKernelStack = { ss1: 0, esp1: 0 };
  stackPages = 0;
  /** Why the Guest was stopped, once it has been (lguest's kill_guest keeps the first reason). */
  deadReason: string | null = null;
  readonly #machine: LguestMachine;
  readonly #cpu: Cpu;
  readonly #mem: GuestMemory;
  readonly #clockEvent: Timer;
  #nextHcall = 0;
  readonly #startTimeMs: number;

  constructor(machine: LguestMachine, options: LguestHostOptions) {
    this.#machine = machine;
    this.#cpu = machine.cpu;
    this.#mem = machine.mem;
    this.pae = options.pae;
    this.#startTimeMs = options.startTimeMs ?? Date.now();
    this.irqs = new LguestIrqs({
      initialized: () => this.dataPhysAddr >= 0,
      readData32: (off) => this.#mem.readU32(this.dataPhysAddr + off),
      writeData32: (off, v) => this.#mem.writeU32(this.dataPhysAddr + off, v),
      halted: () => this.#cpu.halted,
      wake: () => machine.wake(),
    });
    this.#clockEvent = machine.clock.timer("lguest clock event", () => this.irqs.setIrq(0, true));
    const cpu = this.#cpu;
    cpu.interrupts = this.irqs;
    cpu.deliveryHook = (vector, source, hasErrorCode, errorCode, returnEip) =>
      this.#deliver(vector, source, hasErrorCode, errorCode, returnEip);
    cpu.sysWindow = this.gdt.view;
    cpu.sysWindowBase = SWITCHER_ADDR | 0;
  }

  /**
   * Puts the CPU where lguest started a Guest: ring 1 with CS 0x61 and DS/ES/SS 0x69 from the host's
   * GDT, EFLAGS 0x202 (the real IF stays on for good), ESI 0 (boot_params at 0), paging off so that
   * virtual = physical until the first LHCALL_NEW_PGTABLE, and no TSS, so port I/O raises #GP(0).
   */
  start(entryPhysAddr: number): void {
    const cpu = this.#cpu;
    cpu.reset();
    this.gdt.reset();
    this.idt.reset();
    this.dataPhysAddr = -1;
    this.#nextHcall = 0;
    cpu.st[ST_CR0] = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP;
    cpu.st[ST_CR4] = CR4_PGE | CR4_OSFXSR | (this.pae ? CR4_PAE : 0);
    cpu.st[ST_GDT_BASE] = SWITCHER_ADDR | 0;
    cpu.st[ST_GDT_LIMIT] = GDT_ENTRIES * 8 - 1;
    // Nothing is delivered through the CPU's own IDT: the host's hook does it all.
    cpu.st[ST_IDT_BASE] = SWITCHER_ADDR | 0;
    cpu.st[ST_IDT_LIMIT] = 0;
    cpu.segSel[TR] =
      cpu.segBase[TR] =
      cpu.segLimit[TR] =
      cpu.segAttr[TR] =
        0;
    for (const seg of [CS, DS, ES, SS, FS, GS]) {
      const sel = seg === CS ? LGUEST_KERNEL_CS : seg === FS || seg === GS ? 0 : LGUEST_KERNEL_DS;
      if (sel === 0) {
        cpu.segSel[seg] =
          cpu.segBase[seg] =
          cpu.segLimit[seg] =
          cpu.segAttr[seg] =
            0;
        cpu.segCheck[seg] = 1; // null: a data access through it faults
        continue;
      }
      readDescriptor(cpu, sel);
      loadCache(cpu, seg, sel);
    }
    cpu.setCpl(GUEST_PL);
    cpu.setEflags(0x202);
    cpu.regs.fill(0);
    cpu.st[0] = entryPhysAddr | 0;
    flushTlb(cpu, false);
  }

  /** lguest's kill_guest: the first reason stops the Guest, later ones are dropped. */
  kill(reason: string, kind: StopKind = "error"): void {
    if (this.deadReason === null) {
      this.deadReason = reason;
      this.#machine.stop(kind, reason);
    }
    this.#cpu.stopReason = "stopped";
  }

  /** The lguest part of the `kill -USR2` dump. */
  describe(): string {
    const counts = [...this.hypercallCounts.entries()].filter(([, n]) => n > 0)
      .map(([nr, n]) => `${hypercallByNumber(nr)?.name.slice(7) ?? nr}=${n}`);
    const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;
    const data = this.dataPhysAddr >= 0
      ? `irq_enabled=${hex(this.#data32(LGUEST_DATA.irq_enabled))} blocked_interrupts=${
        hex(this.#data32(LGUEST_DATA.blocked_interrupts))
      } irq_pending=${hex(this.#data32(LGUEST_DATA.irq_pending))}`
      : "lguest_data not registered yet";
    const event = this.#clockEvent.deadlineNs === Infinity
      ? "clock event off"
      : `clock event in ${((this.#clockEvent.deadlineNs - this.#machine.clock.nowNs()) / 1e6).toFixed(3)} ms`;
    return [
      `lguest ${this.pae ? "PAE" : "non-PAE"} guest: hypercalls ${
        counts.join(" ") || "none"
      } (async ${this.asyncHypercalls})`,
      `lguest ${data} irqs_pending=${hex(this.irqs.pending)} delivered=${this.irqs.delivered} ` +
      `traps=${this.trapsReflected} port-io=${this.portIoEmulated}; ${event}; halted=${this.#cpu.halted}`,
    ].join("\n");
  }

  // ---- The delivery hook: every trap, interrupt and INT n of the Guest ----

  #deliver(
    vector: number,
    source: number,
    hasErrorCode: boolean,
    errorCode: number,
    returnEip: number,
  ): boolean {
    const cpu = this.#cpu;
    if (source === INT_SOFTWARE) {
      if (vector === LGUEST_TRAP_ENTRY && cpu.cpl === GUEST_PL) {
        cpu.st[0] = returnEip | 0;
        this.#hypercall();
        return true;
      }
      // INT n reaches a gate whose DPL allows it (the syscall vector), else #GP(vector * 8 + 2),
      // raised as the CPU would so that it reports the INT instruction itself.
      if (!this.idt.present(vector) || this.idt.dpl(vector) < cpu.cpl) faultCode(GP, (vector << 3) | 2);
      return this.#reflect(vector, 0, returnEip, false);
    }
    if (vector >= FIRST_EXTERNAL_VECTOR) return this.#deliverIrq();
    if (vector === GP && errorCode === 0 && cpu.cpl === GUEST_PL) {
      try {
        if (emulateGpInstruction(cpu, this.#machine.ports)) {
          this.portIoEmulated++;
          return true;
        }
      } catch (e) {
        if (e !== FAULT) throw e;
      }
    }
    if (vector === PF && this.dataPhysAddr >= 0) this.#writeData32(LGUEST_DATA.cr2, cpu.st[ST_CR2]);
    const err = hasErrorCode && (vector === 8 || (vector >= 10 && vector <= 14) || vector === 17);
    return this.#reflect(vector, errorCode, returnEip, err);
  }

  /** deliver_trap: through the Guest's gate, or the Guest dies ("unhandled trap"). */
  #reflect(vector: number, errorCode: number, returnEip: number, hasErrorCode: boolean): boolean {
    const cpu = this.#cpu;
    if (!this.idt.present(vector)) {
      const detail = vector === PF ? cpu.st[ST_CR2] : errorCode;
      this.kill(
        `unhandled trap ${vector} at 0x${(returnEip >>> 0).toString(16)} (0x${(detail >>> 0).toString(16)})`,
      );
      return true;
    }
    this.trapsReflected++;
    this.#enter(vector, hasErrorCode ? errorCode : null, returnEip, false);
    return true;
  }

  /** try_deliver_interrupt for the IRQ the controller just acknowledged. */
  #deliverIrq(): boolean {
    const cpu = this.#cpu, irqs = this.irqs;
    const irq = irqs.acknowledged;
    if (irq < 0 || this.dataPhysAddr < 0) return true;
    if (cpu.halted) {
      this.#writeData32(LGUEST_DATA.irq_enabled, X86_EFLAGS_IF); // HALT's implied sti
      cpu.halted = false;
    }
    const vector = FIRST_EXTERNAL_VECTOR + irq;
    if (this.idt.present(vector)) {
      irqs.pending &= ~(1 << irq);
      irqs.delivered++;
      this.#enter(vector, null, cpu.st[0], (cpu.st[0] | 0) === (this.noirqIret | 0));
    }
    if (this.deadReason !== null) return true;
    this.#writeTimestamp();
    if (irqs.ready() === 0) this.#writeData32(LGUEST_DATA.irq_pending, 0);
    return true;
  }

  /** Pushes the frame (or reuses the one at noirq_iret) and runs the handler; kills on a bad stack. */
  #enter(vector: number, errorCode: number | null, returnEip: number, reuseFrame: boolean): void {
    const cpu = this.#cpu;
    const handler = this.idt.offset(vector);
    try {
      if (reuseFrame) enterGuestHandlerReusingFrame(cpu, handler);
      else {
        const enabled = this.dataPhysAddr >= 0 &&
          (this.#data32(LGUEST_DATA.irq_enabled) & X86_EFLAGS_IF) !== 0;
        enterGuestHandler(cpu, this.stack, handler, enabled, errorCode, returnEip);
      }
    } catch (e) {
      if (e !== FAULT) throw e;
      const where = FAULT.vector === PF ? cpu.st[ST_CR2] : cpu.regs[4];
      this.kill(`Bad address 0x${(where >>> 0).toString(16)} (delivering trap ${vector})`);
      return;
    }
    if (this.idt.isInterruptGate(vector) && this.dataPhysAddr >= 0) {
      this.#writeData32(LGUEST_DATA.irq_enabled, 0);
    }
  }

  // ---- Hypercalls ----

  #hypercall(): void {
    const r = this.#cpu.regs;
    const nr = r[EAX] >>> 0, a1 = r[EBX] >>> 0, a2 = r[ECX] >>> 0, a3 = r[EDX] >>> 0, a4 = r[ESI] >>> 0;
    if (this.dataPhysAddr < 0) {
      this.#initialize(nr, a1);
      return;
    }
    this.#drainAsync();
    if (this.deadReason === null) this.#doHypercall(nr, a1, a2, a3, a4);
  }

  /** do_async_hcalls: slots in order from the host's cursor until the first free (0xFF) one. */
  #drainAsync(): void {
    const base = this.dataPhysAddr;
    const mem = this.#mem;
    for (let i = 0; i < LHCALL_RING_SIZE && this.deadReason === null; i++) {
      const n = this.#nextHcall;
      if (mem.readU8(base + LGUEST_DATA.hcall_status + n) === 0xFF) break;
      this.#nextHcall = (n + 1) % LHCALL_RING_SIZE;
      const at = base + LGUEST_DATA.hcalls + n * HCALL_ARGS_SIZE;
      this.asyncHypercalls++;
      this.#doHypercall(
        mem.readU32(at),
        mem.readU32(at + 4),
        mem.readU32(at + 8),
        mem.readU32(at + 12),
        mem.readU32(at + 16),
      );
      mem.writeU8(base + LGUEST_DATA.hcall_status + n, 0xFF);
    }
  }

  /** The first hypercall: LHCALL_LGUEST_INIT, with lguest's checks of the shared page. */
  #initialize(nr: number, dataPhysAddr: number): void {
    if (nr !== LHCALL_LGUEST_INIT) {
      this.kill(`hypercall ${nr} before INIT`);
      return;
    }
    this.hypercallCounts[nr]++;
    if (!this.#mem.contains(dataPhysAddr, LGUEST_DATA_SIZE)) {
      this.kill(`bad guest page 0x${dataPhysAddr.toString(16)}`);
      return;
    }
    this.dataPhysAddr = dataPhysAddr;
    this.#writeData32(LGUEST_DATA.tsc_khz, Math.round(this.#cpu.tscPerNs * 1e6));
    if (this.#data32(LGUEST_DATA.syscall_vec) !== SYSCALL_VECTOR) {
      this.kill("bad syscall vector");
      return;
    }
    this.noirqIret = this.#data32(LGUEST_DATA.noirq_iret);
    this.#writeTimestamp();
    this.kernelAddress = this.#data32(LGUEST_DATA.kernel_address);
    this.#writeData32(LGUEST_DATA.reserve_mem, RESERVE_MEM);
    if (this.kernelAddress >= SWITCHER_ADDR) {
      this.kill(`bad kernel address 0x${this.kernelAddress.toString(16)}`);
      return;
    }
    flushTlb(this.#cpu, false);
    debug(
      `LHCALL_LGUEST_INIT, lguest_data at 0x${dataPhysAddr.toString(16)}, noirq_iret 0x${
        this.noirqIret.toString(16)
      }`,
    );
  }

  /** do_hcall: one hypercall, synchronous or from the ring. */
  #doHypercall(nr: number, a1: number, a2: number, a3: number, a4: number): void {
    const cpu = this.#cpu;
    const known = hypercallByNumber(nr);
    if (known === undefined || (known.paeOnly && !this.pae)) {
      this.kill(`Bad hypercall ${nr}`);
      return;
    }
    this.hypercallCounts[nr]++;
    switch (nr) {
      case LHCALL_FLUSH_ASYNC:
      case LHCALL_SEND_INTERRUPTS:
        break; // entering the host was the point
      case LHCALL_LGUEST_INIT:
        this.kill("already have lguest_data");
        break;
      case LHCALL_SHUTDOWN:
        this.#shutdown(a1, a2);
        break;
      case LHCALL_NEW_PGTABLE:
        this.#newPageTable(a1);
        break;
      case LHCALL_FLUSH_TLB:
        // 0: user mappings only; kernel pages are global, so keeping global entries is exactly that.
        flushTlb(cpu, a1 === 0 && (cpu.st[ST_CR0] & CR0_PG) !== 0);
        break;
      case LHCALL_LOAD_IDT_ENTRY: {
        const why = this.idt.load(a1, a2, a3);
        if (why !== null) this.kill(why);
        break;
      }
      case LHCALL_SET_STACK:
        if ((a1 & 3) !== GUEST_PL) this.kill(`bad stack segment ${a1}`);
        else if (a3 > 2) this.kill(`bad stack pages ${a3}`);
        else {
          this.stack.ss1 = a1;
          this.stack.esp1 = a2 | 0;
          this.stackPages = a3;
        }
        break;
      case LHCALL_TS:
        cpu.st[ST_CR0] = a1 !== 0 ? cpu.st[ST_CR0] | CR0_TS : cpu.st[ST_CR0] & ~CR0_TS;
        break;
      case LHCALL_SET_CLOCKEVENT:
        if (a1 === 0) this.#clockEvent.cancel();
        else this.#clockEvent.arm(this.#machine.clock.nowNs() + a1);
        break;
      case LHCALL_HALT:
        cpu.halted = true;
        break;
      case LHCALL_SET_PMD:
        if (a2 >= 512) this.kill(`Attempt to set pmd ${a2}/512`);
        else flushTlb(cpu, false);
        break;
      case LHCALL_SET_PTE:
        if (a2 >= SWITCHER_ADDR) this.kill("attempt to set pte into Switcher pages");
        else invalidatePage(cpu, a2 | 0);
        break;
      case LHCALL_SET_PGD: {
        const entries = this.pae ? 4 : 1024;
        if (a2 >= entries) this.kill(`Attempt to set pgd ${a2}/${entries}`);
        else flushTlb(cpu, false);
        break;
      }
      case LHCALL_LOAD_TLS:
        if (!this.#mem.contains(a1, 24)) this.kill(`bad read address 0x${a1.toString(16)} len 24`);
        else this.gdt.loadTls(this.#mem.readView(a1, 24));
        break;
      case LHCALL_LOAD_GDT_ENTRY:
        if (a1 >= GDT_ENTRIES) this.kill(`too many gdt entries ${a1}`);
        else this.gdt.load(a1, a2 | 0, a3 | 0);
        break;
    }
    void a4;
  }

  /**
   * LHCALL_SHUTDOWN. A restart restarts even when the reason cannot be read: lguest's host set
   * `dead = ERR_PTR(-ERESTART)` after the failed read's kill_guest, and Linux passes `__pa(NULL)`
   * (0x40000000 with the 3G/1G split) when `reboot -f` gives no reason (kernel_restart(NULL)).
   */
  #shutdown(msgPhysAddr: number, code: number): void {
    const readable = this.#mem.contains(msgPhysAddr, SHUTDOWN_MESSAGE_BYTES);
    let msg = "";
    if (readable) {
      const bytes = this.#mem.readView(msgPhysAddr, SHUTDOWN_MESSAGE_BYTES - 1);
      const end = bytes.indexOf(0);
      msg = new TextDecoder("latin1").decode(end === -1 ? bytes : bytes.subarray(0, end));
    }
    if (code === LGUEST_SHUTDOWN_RESTART) {
      this.kill(`the guest restarted${readable ? `: ${msg}` : " (no reason given)"}`, "reboot");
    } else if (!readable) {
      this.kill(`bad read address 0x${msgPhysAddr.toString(16)} len ${SHUTDOWN_MESSAGE_BYTES}`);
    } else if (msg === POWER_DOWN_REASON) this.kill(`the guest powered off: ${msg}`, "poweroff");
    else this.kill(msg, "panic");
  }

  /** LHCALL_NEW_PGTABLE: the Guest's CR3. The first one also turns paging on. */
  #newPageTable(physAddr: number): void {
    const cpu = this.#cpu;
    const top = physAddr & (this.pae ? ~0x1F : ~0xFFF);
    if (!this.#mem.contains(top, this.pae ? 32 : 4096)) {
      this.kill(`bad page table address 0x${physAddr.toString(16)}`);
      return;
    }
    const pagingWasOn = (cpu.st[ST_CR0] & CR0_PG) !== 0;
    cpu.st[ST_CR3] = top;
    cpu.st[ST_CR0] |= CR0_PG;
    flushTlb(cpu, pagingWasOn);
  }

  #writeTimestamp(): void {
    const ms = this.#startTimeMs + this.#machine.clock.nowNs() / 1e6;
    const sec = Math.floor(ms / 1000);
    this.#writeData32(LGUEST_DATA.time_tv_sec, sec);
    this.#writeData32(LGUEST_DATA.time_tv_nsec, Math.floor((ms - sec * 1000) * 1e6));
  }

  #data32(offset: number): number {
    return this.#mem.readU32(this.dataPhysAddr + offset);
  }

  #writeData32(offset: number, value: number): void {
    this.#mem.writeU32(this.dataPhysAddr + offset, value >>> 0);
  }
}
