/**
 * The Machine: guest RAM, the port and MMIO buses, the virtual clock and the CPU, and the run
 * loop that ties them together (STYLE "hot loop", outer layer). The loop runs the CPU in slices,
 * fires due timers, sleeps while the guest halts (near-zero host CPU when idle), and yields to the
 * event loop every few milliseconds so the terminal and sockets stay live. Which devices exist
 * is the launcher's business; they are attached to the buses before `run()`.
 */
import type { StopKind } from "../support/errors.ts";
import { debug } from "../support/log.ts";
import { nextTurn, sleep, yieldNow } from "../support/yield_now.ts";
import { Cpu } from "../x86/cpu.ts";
import { instructionsAtEip, traceLine } from "../x86/instruction_view.ts";
import { MmioBus, PortBus } from "./bus.ts";
import { type ClockMode, VirtualClock } from "./clock.ts";
import { GuestMemory } from "./guest_memory.ts";

export interface MachineOptions {
  memBytes: number;
  clock?: ClockMode;
  /** Deterministic mode: virtual nanoseconds per instruction. */
  nsPerInstruction?: number;
  /**
   * Deterministic mode: let idle time pass at host speed instead of skipping to the next timer
   * (QEMU's `-icount sleep=on`). For guests wired to the outside world (a network link), whose
   * peers answer in wall-clock time: skipping would fire their timeouts before any answer.
   */
  idleInHostTime?: boolean;
  /** Translate hot guest code (default true; --no-jit turns it off). */
  jit?: boolean;
  /** Host mode: the host's monotonic clock in ms (default performance.now; tests stall it). */
  hostMs?: () => number;
}

/** How a run ended. */
export interface RunResult {
  kind: StopKind;
  reason: string;
}

/** Most instructions per CPU slice between timer checks. */
const SLICE = 100_000;
/**
 * Host-clock mode: the wall time a slice aims at, and the fewest instructions one runs. Slices are
 * sized from the measured instruction rate so that timers fire close to their time however fast the
 * guest code runs (early boot, before V8 has optimized the interpreter, runs 10x slower).
 */
const HOST_SLICE_NS = 1_000_000;
const MIN_HOST_SLICE = 500;
/** Wall-clock milliseconds of guest work between event-loop yields. */
const YIELD_MS = 8;
/**
 * Wall-clock milliseconds between yields through a timer rather than a MessageChannel message. Deno
 * delivers a signal once and then only after a timer turn: with message-only yields a busy guest
 * answered the first `kill -USR2` and no later one.
 */
const TIMER_YIELD_MS = 250;

export class Machine {
  readonly mem: GuestMemory;
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  readonly clock: VirtualClock;
  readonly cpu: Cpu;
  readonly idleInHostTime: boolean;
  #stop: RunResult | null = null;
  /** Host-clock mode: host nanoseconds per guest instruction, a moving average over slices. */
  #hostNsPerInstruction = 20;
  #wake: { promise: Promise<void>; resolve: () => void } = Promise.withResolvers<void>();
  /** Called after each slice (devices that poll, lguest's interrupt delivery...). */
  readonly afterSlice: (() => void)[] = [];
  /**
   * Host I/O that guest-visible state waits on (block requests, 9P requests). In deterministic mode the
   * run loop lets all of it finish at the end of the slice that started it, so when a completion
   * reaches the guest does not depend on how fast the host disk was.
   */
  readonly #hostIo = new Set<Promise<unknown>>();
  /**
   * `--trace`: given one line per instruction (see instruction_view.ts traceLine) before it runs;
   * the CPU then runs one instruction per execute() call (slow, for bug reports).
   */
  trace: ((line: string) => void) | null = null;

  constructor(options: MachineOptions) {
    this.mem = new GuestMemory(options.memBytes);
    this.clock = new VirtualClock(options.clock ?? "host", options.nsPerInstruction ?? 10, options.hostMs);
    this.cpu = new Cpu(this.mem, this.ports, this.mmio, { fpu: true, jit: options.jit ?? true });
    this.idleInHostTime = options.idleInHostTime ?? false;
    this.clock.setInstructionCounter(() => this.cpu.instructionsRetired());
    this.cpu.nowNs = () => this.clock.nowNs();
  }

  /** Ends the run with `kind`; the first reason given wins (lguest's kill_guest rule). */
  stop(kind: StopKind, reason: string): void {
    if (this.#stop === null) this.#stop = { kind, reason };
    this.wake();
  }

  /** Wakes a halted guest's wait early (a host event arrived: input, a socket frame...). */
  wake(): void {
    this.#wake.resolve();
  }

  /** Registers host I/O the guest will see the result of (see #hostIo); returns `p`. */
  trackHostIo<T>(p: Promise<T>): Promise<T> {
    const tracked = p.finally(() => this.#hostIo.delete(tracked));
    tracked.catch(() => {});
    this.#hostIo.add(tracked);
    return p;
  }

  /** CPU and clock state in a few lines (what `kill -USR2` on the launcher prints). */
  describe(): string {
    const cpu = this.cpu;
    const hex = (v: number) => (v >>> 0).toString(16).padStart(8, "0");
    return [
      `cpu eip=${hex(cpu.eip)} eflags=${hex(cpu.getEflags())} halted=${cpu.halted} ` +
      `instructions=${cpu.instructionsRetired()} interrupt-pending=${
        cpu.interrupts?.hasInterrupt() ?? false
      }`,
      this.clock.describe(),
      this.cpu.jit.describe(),
      instructionsAtEip(cpu, 5),
    ].join("\n");
  }

  /** Runs the guest until it stops. */
  async run(): Promise<RunResult> {
    const cpu = this.cpu, clock = this.clock;
    let lastYield = performance.now();
    let lastTimerYield = lastYield;
    while (this.#stop === null) {
      let budget = SLICE;
      const deadline = clock.nextDeadlineNs();
      const deterministic = clock.mode === "deterministic";
      if (deterministic) {
        if (deadline !== Infinity) {
          const left = Math.ceil((deadline - clock.nowNs()) / clock.nsPerInstruction);
          budget = Math.max(1, Math.min(SLICE, left));
        }
      } else {
        clock.steer(this.#hostNsPerInstruction);
        const ns = Math.min(HOST_SLICE_NS, deadline - clock.nowNs());
        budget = Math.max(MIN_HOST_SLICE, Math.min(SLICE, Math.ceil(ns / clock.rateNsPerInstruction)));
      }
      const started = deterministic ? 0 : clock.hostNs();
      const retired = this.trace === null ? cpu.execute(budget) : this.#executeTraced(budget);
      if (!deterministic && retired >= MIN_HOST_SLICE) {
        // Floored: a coarse host timer can measure a short slice as taking no time at all.
        const sample = Math.max((clock.hostNs() - started) / retired, 0.5);
        this.#hostNsPerInstruction += (sample - this.#hostNsPerInstruction) * 0.25;
      }
      if (deterministic && this.#hostIo.size > 0) await this.#settleHostIo();
      clock.runDue();
      for (const f of this.afterSlice) f();
      if (cpu.stopReason === "shutdown") {
        this.stop("triple-fault", cpu.stopMessage);
        break;
      }
      if (cpu.stopReason === "unsupported") {
        this.stop("error", `guest used an unsupported CPU feature: ${cpu.stopMessage}`);
        break;
      }
      if (cpu.halted) await this.#idle();
      const now = performance.now();
      if (now - lastYield >= YIELD_MS) {
        if (now - lastTimerYield >= TIMER_YIELD_MS) {
          await sleep(0);
          lastTimerYield = performance.now();
        } else {
          await yieldNow();
        }
        lastYield = performance.now();
      }
    }
    return this.#stop ?? { kind: "error", reason: "stopped" };
  }

  /** Runs up to `budget` instructions one at a time, each announced to `trace` first. */
  #executeTraced(budget: number): number {
    const cpu = this.cpu, trace = this.trace!;
    let retired = 0;
    while (retired < budget) {
      trace(traceLine(cpu));
      const n = cpu.execute(1);
      retired += n;
      if (n === 0 || cpu.halted || cpu.stopReason !== "") break;
    }
    return retired;
  }

  /**
   * Deterministic mode, at the end of a slice: waits until the host I/O the slice started has
   * finished and every device has acted on it (pushed its used buffers, raised its interrupt), so
   * the next slice starts from the same state however fast the host was. A device acts in the
   * promise continuations after its backend's promise settles, and how many microtask turns that
   * takes is its own business: one event-loop turn runs them all. A completion may start the
   * ring's next request (tracked again): repeat until none is left.
   */
  async #settleHostIo(): Promise<void> {
    while (this.#hostIo.size > 0) {
      while (this.#hostIo.size > 0) await Promise.allSettled([...this.#hostIo]);
      await nextTurn();
    }
  }

  /** The CPU is halted: wait for the next timer or host event, or end a guest that can never wake. */
  async #idle(): Promise<void> {
    const cpu = this.cpu, clock = this.clock;
    const interruptsOn = (cpu.getEflags() & 0x200) !== 0;
    if (!interruptsOn) {
      this.stop("halt", "guest halted with interrupts disabled");
      return;
    }
    if (cpu.interrupts?.hasInterrupt()) return;
    const deadline = clock.nextDeadlineNs();
    if (clock.mode === "deterministic") {
      if (deadline === Infinity) {
        // Nothing virtual can wake it; only host events (input) can.
        await this.#waitForHost(Infinity);
      } else if (this.idleInHostTime) {
        // Virtual time advances by the host time spent waiting, up to the deadline.
        const from = clock.nowNs();
        const started = performance.now();
        await this.#waitForHost((deadline - from) / 1e6);
        clock.skipTo(Math.min(deadline, from + (performance.now() - started) * 1e6));
        clock.runDue();
      } else {
        clock.skipTo(deadline);
        clock.runDue();
      }
      return;
    }
    clock.catchUp(deadline);
    const ms = deadline === Infinity ? Infinity : (deadline - clock.nowNs()) / 1e6;
    if (ms > 0) await this.#waitForHost(ms);
    clock.catchUp(clock.nextDeadlineNs());
    clock.runDue();
  }

  async #waitForHost(ms: number): Promise<void> {
    this.#wake = Promise.withResolvers<void>();
    if (ms === Infinity) {
      debug("guest idle with no timer armed: waiting for host input");
      await this.#wake.promise;
    } else await sleep(ms, this.#wake);
  }
}
