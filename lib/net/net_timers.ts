/**
 * Many network timers (TCP retransmission, TIME-WAIT, idle UDP flows) on one timer of the machine's
 * clock, so connections that come and go never grow the clock's own list: each NetTimer is a
 * deadline in a set, and the clock timer is armed for the earliest one.
 */

/** The part of the machine's VirtualClock the network uses (lib/machine/clock.ts). */
export interface NetClock {
  nowNs(): number;
  timer(name: string, callback: (nowNs: number) => void): { arm(deadlineNs: number): void; cancel(): void };
}

export class NetTimer {
  deadlineNs = Infinity;
  readonly #owner: NetTimers;
  readonly callback: () => void;

  constructor(owner: NetTimers, callback: () => void) {
    this.#owner = owner;
    this.callback = callback;
  }

  /** Fires `ms` milliseconds of machine time from now (re-arming moves the deadline). */
  arm(ms: number): void {
    this.#owner.schedule(this, this.#owner.nowNs() + ms * 1e6);
  }

  cancel(): void {
    this.#owner.unschedule(this);
  }

  get armed(): boolean {
    return this.deadlineNs !== Infinity;
  }
}

export class NetTimers {
  readonly #clock: NetClock;
  readonly #armed = new Set<NetTimer>();
  readonly #timer: { arm(deadlineNs: number): void; cancel(): void };
  readonly #wake: () => void;
  #nextNs = Infinity;

  /** `wake` tells a halted machine to look at its timers again (a host event armed an earlier one). */
  constructor(clock: NetClock, name: string, wake: () => void = () => {}) {
    this.#clock = clock;
    this.#wake = wake;
    this.#timer = clock.timer(name, () => this.#fire());
  }

  nowNs(): number {
    return this.#clock.nowNs();
  }

  create(callback: () => void): NetTimer {
    return new NetTimer(this, callback);
  }

  schedule(t: NetTimer, deadlineNs: number): void {
    t.deadlineNs = deadlineNs;
    this.#armed.add(t);
    if (deadlineNs < this.#nextNs) {
      this.#nextNs = deadlineNs;
      this.#timer.arm(deadlineNs);
      this.#wake();
    }
  }

  unschedule(t: NetTimer): void {
    t.deadlineNs = Infinity;
    this.#armed.delete(t);
  }

  /** Timers armed now (for tests and the state dump). */
  get armedCount(): number {
    return this.#armed.size;
  }

  #fire(): void {
    const now = this.#clock.nowNs();
    const due: NetTimer[] = [];
    for (const t of this.#armed) if (t.deadlineNs <= now) due.push(t);
    for (const t of due) {
      this.#armed.delete(t);
      t.deadlineNs = Infinity;
    }
    for (const t of due) t.callback();
    let next = Infinity;
    for (const t of this.#armed) if (t.deadlineNs < next) next = t.deadlineNs;
    this.#nextNs = next;
    if (next === Infinity) this.#timer.cancel();
    else this.#timer.arm(next);
  }
}
