/**
 * The system tests' harness: a Cpu with RAM, a debug port (0xE9) and a small test port range,
 * loaded with a NASM-assembled guest. Programs built on testdata/x86/pm_kernel.inc start in flat
 * protected mode at IMAGE_BASE; ROM images start from the reset vector. Reads back the kernel's
 * RESULTS, DONE flag and exception log (the layout below mirrors pm_kernel.inc).
 */
import { MmioBus, PortBus } from "../../../lib/machine/bus.ts";
import { GuestMemory } from "../../../lib/machine/guest_memory.ts";
import type { InterruptSource } from "../../../lib/machine/irq.ts";
import { Cpu, type CpuOptions, CS, ST_CR0, ST_CR2, ST_CR3, ST_CR4 } from "../../../lib/x86/cpu.ts";
import { assemble, nasmUnavailableReason } from "./asm.ts";

const IMAGE_BASE = 0x10000;
const DONE = 0x2400;
const DONE_MAGIC = 0x600DD00E;
const LOG_COUNT = 0x3000;
const LOG_ENTRIES = 0x3040;
const LOG_MAX = 32;
const ROM_BASE = 0xF0000;
const RESULTS = 0x2000;
export const STACK0_TOP = 0x90000;
export const STACK3_TOP = 0x80000;
/** Ports 0x300-0x30F read back 0xA0 + offset (bytes) and record writes. */
export const TEST_PORT = 0x300;

/** One entry of pm_kernel.inc's event log: the interrupt frame and the registers at the event. */
export interface LoggedEvent {
  vector: number;
  errorCode: number;
  eip: number;
  cs: number;
  eflags: number;
  cr2: number;
  /** SS:ESP pushed on a privilege change (0 otherwise). */
  esp3: number;
  ss3: number;
  eax: number;
  ecx: number;
  edx: number;
  ebx: number;
  /** ESP just before the event (the interrupted code's stack pointer). */
  esp: number;
  ebp: number;
  esi: number;
  edi: number;
}

const EVENT_FIELDS = [
  "vector",
  "errorCode",
  "eip",
  "cs",
  "eflags",
  "cr2",
  "esp3",
  "ss3",
  "eax",
  "ecx",
  "edx",
  "ebx",
  "esp",
  "ebp",
  "esi",
  "edi",
] as const;

/** An interrupt controller the test drives by hand. */
export class FakeInterruptController implements InterruptSource {
  readonly pending: number[] = [];
  acknowledged = 0;

  raise(vector: number): void {
    this.pending.push(vector);
  }
  hasInterrupt(): boolean {
    return this.pending.length > 0;
  }
  acknowledge(): number {
    this.acknowledged++;
    return this.pending.shift() ?? 0xFF;
  }
}

const skipReason = nasmUnavailableReason();
if (skipReason !== null) console.warn(`x86 system tests ignored: ${skipReason}`);

/** Deno.test for a guest program: ignored (with the reason printed once) when nasm is missing. */
export function systemTest(name: string, fn: () => void): void {
  Deno.test({ name, ignore: skipReason !== null, fn });
}

export class TestGuest {
  readonly mem: GuestMemory;
  readonly ports = new PortBus();
  readonly cpu: Cpu;
  symbols = new Map<string, number>();
  /** Bytes written to port 0xE9. */
  debugOutput = "";
  /** Writes to the test ports: [port, size, value]. */
  readonly portWrites: [number, number, number][] = [];

  constructor(ramBytes = 16 << 20, options: CpuOptions = {}) {
    this.mem = new GuestMemory(ramBytes);
    this.ports.register(0xE9, 1, "debug", {
      read: () => 0xE9,
      write: (_off, _size, v) => {
        this.debugOutput += String.fromCharCode(v & 0xFF);
      },
    });
    this.ports.register(TEST_PORT, 16, "test", {
      read: (off, size) => size === 1 ? 0xA0 + off : size === 2 ? 0xB0B0 + off : 0xC0C0C0C0 + off,
      write: (off, size, v) => {
        this.portWrites.push([TEST_PORT + off, size, v]);
      },
    });
    this.cpu = new Cpu(this.mem, this.ports, new MmioBus(), { fpu: false, ...options });
    // The system tests run through the translator in its test mode (every instruction sequence
    // translated at its first execution), unless a test turns it off (options.jit === false).
    this.cpu.jit.eager = this.cpu.jit.enabled;
  }

  /** A program built on pm_kernel.inc (`body` defines test_main), entered flat at IMAGE_BASE. */
  static kernel(body: string, options: { ramBytes?: number; cpu?: CpuOptions } = {}): TestGuest {
    const g = new TestGuest(options.ramBytes, options.cpu);
    const { bytes, symbols } = assemble(`%include "pm_kernel.inc"\n${body}`);
    g.symbols = symbols;
    g.mem.write(IMAGE_BASE, bytes);
    g.cpu.enterProtectedFlat(IMAGE_BASE);
    return g;
  }

  /** A 64 KiB ROM image (`org 0`, reset vector at 0xFFF0) at physical 0xF0000; the CPU is reset. */
  static rom(source: string, ramBytes = 2 << 20): TestGuest {
    const g = new TestGuest(ramBytes);
    const { bytes, symbols } = assemble(source);
    if (bytes.length !== 0x10000) throw new Error(`ROM image is ${bytes.length} bytes, not 64 KiB`);
    g.symbols = symbols;
    g.mem.write(ROM_BASE, bytes);
    g.cpu.reset();
    return g;
  }

  /** Runs until HLT, a stop (shutdown, unsupported, exception hook) or `maxInstructions`. */
  run(maxInstructions = 2_000_000): number {
    const cpu = this.cpu;
    let total = 0;
    while (total < maxInstructions) {
      total += cpu.execute(Math.min(50_000, maxInstructions - total));
      if (cpu.halted || (cpu.stopReason !== "" && cpu.stopReason !== "halt")) break;
    }
    return total;
  }

  u32(physAddr: number): number {
    return this.mem.readU32(physAddr);
  }

  /** RESULTS[index] as an unsigned number. */
  result(index: number): number {
    return this.u32(RESULTS + index * 4);
  }

  /** True once the guest ran `finish`. */
  get done(): boolean {
    return this.u32(DONE) === DONE_MAGIC;
  }

  /** The exception and interrupt log. */
  events(): LoggedEvent[] {
    const count = Math.min(this.u32(LOG_COUNT), LOG_MAX);
    return Array.from({ length: count }, (_, i) => {
      const fields = EVENT_FIELDS.map((f, k) => [f, this.u32(LOG_ENTRIES + i * 64 + k * 4)]);
      return Object.fromEntries(fields) as unknown as LoggedEvent;
    });
  }

  /** Vector and error code of each logged event: compact for assertions. */
  eventSummary(): [number, number][] {
    return this.events().map((e) => [e.vector, e.errorCode]);
  }

  symbol(name: string): number {
    const v = this.symbols.get(name);
    if (v === undefined) throw new Error(`no symbol ${name} in the guest program`);
    return v;
  }

  /** The CPU's state and the event log, for failure messages. */
  describe(): string {
    const c = this.cpu;
    const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;
    const regs = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"].map((r, i) =>
      `${r}=${hex(c.regs[i])}`
    );
    const events = this.events().map((e) =>
      `  vector ${e.vector} error ${hex(e.errorCode)} at ${hex(e.cs)}:${hex(e.eip)} cr2=${hex(e.cr2)}`
    );
    return [
      `stopReason="${c.stopReason}" ${c.stopMessage} halted=${c.halted} cs:eip=${hex(c.segSel[CS])}:${
        hex(c.eip)
      } cpl=${c.cpl}`,
      regs.join(" "),
      `cr0=${hex(c.st[ST_CR0])} cr2=${hex(c.st[ST_CR2])} cr3=${hex(c.st[ST_CR3])} cr4=${hex(c.st[ST_CR4])}`,
      `events:\n${events.join("\n") || "  none"}`,
    ].join("\n");
  }

  /** Asserts that the program reached `finish`. */
  expectDone(): void {
    if (!this.done) throw new Error(`the guest did not finish:\n${this.describe()}`);
  }
}
