/**
 * The one virtual clock behind the PIT, RTC, TSC (and lguest's clock events), so the kernel's
 * calibrations agree with each other. In "host" mode virtual time follows the host's monotonic
 * clock; in "deterministic" mode it is a pure function of instructions retired, so a boot is
 * reproducible run after run. Devices arm `Timer`s; the machine's run loop fires the due ones.
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

export class VirtualClock {
  readonly mode: ClockMode;
  /** In deterministic mode: virtual nanoseconds per retired instruction. */
  readonly nsPerInstruction: number;
  #timers: Timer[] = [];
  #instructions: () => number = () => 0;
  #hostStart = performance.now();
  /** Virtual time frozen while the machine is paused (host mode), added back on resume. */
  #offsetNs = 0;

  constructor(mode: ClockMode = "host", nsPerInstruction = 10) {
    this.mode = mode;
    this.nsPerInstruction = nsPerInstruction;
  }

  /** Connects the instruction counter (the CPU's retired-instruction count). */
  setInstructionCounter(fn: () => number): void {
    this.#instructions = fn;
  }

  /** Current virtual time in nanoseconds since machine start. */
  nowNs(): number {
    if (this.mode === "deterministic") return this.#instructions() * this.nsPerInstruction + this.#offsetNs;
    return (performance.now() - this.#hostStart) * 1e6 + this.#offsetNs;
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
