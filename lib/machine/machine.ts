/**
 * The Machine: guest RAM, the port and MMIO buses, the virtual clock and the CPU, and the run
 * loop that ties them together (STYLE "hot loop", outer layer). The loop runs the CPU in slices,
 * fires due timers, sleeps while the guest halts (optionally waking the host at most every
 * idleBatchMs for the timers that fell due meanwhile), and yields to the event loop every few milliseconds so the
 * terminal and sockets stay live. Which devices exist
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
  /**
   * Host mode: a halted guest's timers wake the host at most once per this many ms (0, the default:
   * at each timer; IDLE_BATCH_MS is the measured choice, see there).
   */
  idleBatchMs?: number;
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
/**
 * Host mode: while the guest halts, its timers wake the host at most once per this many ms; the
 * ones that fell due in between are delivered at that wake-up, one by one in deadline order with
 * virtual time set to each deadline before it fires (the clock's catch-up path), so the guest sees
 * every tick at its time on its own clocks, only up to this much later in host time. Debian's
 * kernel ticks 250 times a second (CONFIG_HZ_PERIODIC: it cannot stop its tick when idle), so this
 * turns 250 host wake-ups a second into 50, and runs the tick handlers back to back in warm host
 * caches. A host event (console input, a network frame) ends the wait at once, and the wait after it
 * is not batched, so an answer to it is never held back. Off by default for now: with it on, the
 * host-clock Debian boot test's "guest time follows the host's" check failed twice at load average
 * 8 (the guest's `sleep 1` measured 1.42 s against 1.23 s of host time), which main passed.
 */
export const IDLE_BATCH_MS = 20;

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
  readonly #idleBatchNs: number;
  /** Host time (clock.hostNs) at which the last timer wait of a halted guest ended. */
  #lastIdleWakeNs = -Infinity;
  /** Control is in the event loop (host callbacks may run); a wake() then is a host event's. */
  #inEventLoop = false;
  /** A host event called wake() since the last idle wait began: the next wait is exact. */
  #hostWoke = false;
  /** Counters for `kill -USR2`: CPU slices run, and host waits of a halted guest. */
  #slices = 0;
  #idleWaits = 0;
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
    this.#idleBatchNs = (options.idleBatchMs ?? 0) * 1e6;
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
    if (this.#inEventLoop) this.#hostWoke = true;
    this.#wake.resolve();
  }

  /** Registers host I/O the guest will see the result of (see #hostIo); returns `p`. */
  /** How many times a halted guest's run loop waited on the host (timers or events). */
  get idleWaits(): number {
    return this.#idleWaits;
  }

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
      `run loop: ${this.#slices} slices, ${this.#idleWaits} waits while halted`,
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
      this.#slices++;
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
        this.#inEventLoop = true;
        if (now - lastTimerYield >= TIMER_YIELD_MS) {
          await sleep(0);
          lastTimerYield = performance.now();
        } else {
          await yieldNow();
        }
        this.#inEventLoop = false;
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
    let ms = deadline === Infinity ? Infinity : (deadline - clock.nowNs()) / 1e6;
    // A timer already due (the guest lags host time) fires now; a later one waits for the batch.
    if (ms > 0 && ms !== Infinity && !this.#hostWoke) {
      ms = Math.max(ms, (this.#lastIdleWakeNs + this.#idleBatchNs - clock.hostNs()) / 1e6);
    }
    if (ms > 0) {
      this.#hostWoke = false;
      await this.#waitForHost(ms);
      this.#lastIdleWakeNs = clock.hostNs();
    }
    clock.catchUp(clock.nextDeadlineNs());
    clock.runDue();
  }

  async #waitForHost(ms: number): Promise<void> {
    this.#idleWaits++;
    this.#wake = Promise.withResolvers<void>();
    this.#inEventLoop = true;
    if (ms === Infinity) {
      debug("guest idle with no timer armed: waiting for host input");
      await this.#wake.promise;
    } else await sleep(ms, this.#wake);
    this.#inEventLoop = false;
  }
}
