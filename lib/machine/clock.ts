/**
 * The one virtual clock behind the PIT, RTC, TSC (and lguest's clock events), so the kernel's
 * calibrations agree with each other. In "deterministic" mode it is a pure function of instructions
 * retired, so a boot is reproducible run after run. In "host" mode it follows the host's monotonic
 * clock, but while the CPU runs it advances with the instructions it retires, at a rate the machine
 * steers at every slice boundary so that it converges on host time (like NTP's slewing) instead of
 * jumping: the host pauses the interpreter (garbage collection, compilation, a busy machine) at any
 * moment, and a guest polling the PIT with interrupts off must never see a pause between two of its
 * instructions that real hardware cannot have (Linux's quick_pit_calibrate gives up when it misses
 * one 256-tick MSB step of the PIT). While the CPU halts, time catches up with the host, but never
 * past the next timer: a guest that fell behind gets its ticks one by one with time moving between
 * them, so the kernel's clocksource watchdog sees jiffies and the TSC agree.
 * Devices arm `Timer`s; the machine's run loop fires the due ones.
 */

export type ClockMode = "host" | "deterministic";

/** A one-shot timer owned by a device. Re-arm it from its callback for periodic behaviour. */
export class Timer {
  /** Absolute virtual time in ns at which it fires; Infinity when disarmed. */
  deadlineNs = Infinity;
  constructor(readonly name: string, readonly callback: (nowNs: number) => void) {}
  arm(deadlineNs: number): void {
    this.deadlineNs = deadlineNs;
  }
  cancel(): void {
    this.deadlineNs = Infinity;
  }
}

/**
 * Host mode: while the CPU halts, a lag behind host time beyond this (the host was suspended) is
 * dropped at once; a smaller one is made up timer by timer, so the guest sees every tick in order.
 */
const MAX_IDLE_LAG_NS = 10e9;
/** Host mode: a lag of this much doubles the rate for the next slice (and half of it: x1.5). */
const SLEW_SCALE_NS = 20e6;
/**
 * Host mode: bounds on virtual ns per instruction. The upper one keeps a polling loop's iterations
 * a few microseconds apart however slow the host (a slice that contained a host stall would
 * otherwise set a rate of microseconds per instruction); a host slower than that lets virtual
 * time fall behind (made up while it idles, see catchUp).
 */
const MIN_RATE_NS = 0.5;
const MAX_RATE_NS = 200;

export class VirtualClock {
  readonly mode: ClockMode;
  /** In deterministic mode: virtual nanoseconds per retired instruction. */
  readonly nsPerInstruction: number;
  #timers: Timer[] = [];
  #instructions: () => number = () => 0;
  /** The host's monotonic clock in ms (injectable so tests can stall it). */
  readonly #hostMs: () => number;
  #hostStart: number;
  /** Deterministic mode: idle time skipped, added to the instruction-derived time. */
  #offsetNs = 0;
  /** Host mode: virtual time = anchorNs + (instructions - anchorInstructions) * rate. */
  #anchorNs = 0;
  #anchorInstructions = 0;
  #rateNsPerInstruction = 20;

  constructor(
    mode: ClockMode = "host",
    nsPerInstruction = 10,
    hostMs: () => number = () => performance.now(),
  ) {
    this.mode = mode;
    this.nsPerInstruction = nsPerInstruction;
    this.#hostMs = hostMs;
    // Deterministic mode never reads the host clock: a run is a function of its inputs only.
    this.#hostStart = mode === "host" ? hostMs() : 0;
  }

  /** Connects the instruction counter (the CPU's retired-instruction count). */
  setInstructionCounter(fn: () => number): void {
    this.#instructions = fn;
    this.#anchorInstructions = fn();
  }

  /** Current virtual time in nanoseconds since machine start. */
  nowNs(): number {
    if (this.mode === "deterministic") return this.#instructions() * this.nsPerInstruction + this.#offsetNs;
    return this.#anchorNs + (this.#instructions() - this.#anchorInstructions) * this.#rateNsPerInstruction;
  }

  /** Host mode: virtual ns per instruction in the current slice (see steer). */
  get rateNsPerInstruction(): number {
    return this.#rateNsPerInstruction;
  }

  /** Host time in ns since machine start. */
  hostNs(): number {
    return (this.#hostMs() - this.#hostStart) * 1e6;
  }

  /**
   * Host mode, between CPU slices: re-anchors virtual time where it is and picks the rate for the
   * next slice from the host's measured ns per instruction, faster while virtual time lags the host
   * and slower while it leads, so it converges without a jump.
   */
  steer(hostNsPerInstruction: number): void {
    if (this.mode !== "host") return;
    const now = this.nowNs();
    const lag = this.hostNs() - now;
    this.#anchorNs = now;
    this.#anchorInstructions = this.#instructions();
    const slew = Math.max(-0.5, Math.min(1, lag / SLEW_SCALE_NS));
    this.#rateNsPerInstruction = Math.max(
      MIN_RATE_NS,
      Math.min(MAX_RATE_NS, hostNsPerInstruction * (1 + slew)),
    );
  }

  /**
   * Host mode, while the CPU halts: virtual time moves towards host time, but not past `limitNs`
   * (the next timer's deadline), and never backwards; a lag over MAX_IDLE_LAG_NS is dropped.
   */
  catchUp(limitNs: number): void {
    if (this.mode !== "host") return;
    const now = this.nowNs(), host = this.hostNs();
    this.#anchorNs = host - now > MAX_IDLE_LAG_NS ? host : Math.max(now, Math.min(host, limitNs));
    this.#anchorInstructions = this.#instructions();
  }

  /**
   * Deterministic mode only: a halted CPU retires no instructions, so idle time is skipped by
   * jumping virtual time forward to the next deadline.
   */
  skipTo(ns: number): void {
    const now = this.nowNs();
    if (ns > now) this.#offsetNs += ns - now;
  }

  /** Creates a timer, initially disarmed. */
  timer(name: string, callback: (nowNs: number) => void): Timer {
    const t = new Timer(name, callback);
    this.#timers.push(t);
    return t;
  }

  /** Each armed timer's name and how far ahead it fires, for the machine-state dump. */
  describe(): string {
    const now = this.nowNs();
    const armed = this.#timers.filter((t) => t.deadlineNs !== Infinity)
      .map((t) => `${t.name} in ${((t.deadlineNs - now) / 1e6).toFixed(3)} ms`);
    return `clock ${this.mode} at ${(now / 1e9).toFixed(3)} s; timers: ${armed.join(", ") || "none armed"}`;
  }

  /** The earliest armed deadline, or Infinity. */
  nextDeadlineNs(): number {
    let d = Infinity;
    for (const t of this.#timers) if (t.deadlineNs < d) d = t.deadlineNs;
    return d;
  }

  /** Fires every timer whose deadline has passed (a callback may re-arm its timer). */
  runDue(): void {
    const now = this.nowNs();
    for (let guard = 0; guard < 1000; guard++) {
      let due: Timer | null = null;
      for (const t of this.#timers) {
        if (t.deadlineNs <= now && (due === null || t.deadlineNs < due.deadlineNs)) due = t;
      }
      if (due === null) return;
      due.deadlineNs = Infinity;
      due.callback(now);
    }
  }
}
