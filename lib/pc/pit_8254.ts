/**
 * The 8254 interval timer at 0x40-0x43 (Intel 8254 datasheet: control word, modes 0-5, latch and
 * read-back). Counters are derived from the shared VirtualClock at 1.193182 MHz, never ticked, so
 * PIT, RTC and TSC agree; channel 0 drives IRQ0 through a Timer, channel 2 meets port 0x61. Left
 * out: the one-clock load delay; a count rewritten in modes 2/3 restarts at once.
 */
import type { PortBus } from "../machine/bus.ts";
import type { Timer, VirtualClock } from "../machine/clock.ts";
import type { IrqSink } from "../machine/irq.ts";

/** The PIT's input clock. */
export const PIT_HZ = 1_193_182;
const TICKS_PER_NS = PIT_HZ / 1e9;

/** Owed IRQ0 edges are delivered this far apart (in virtual ns), one per run-loop turn. */
const CATCH_UP_NS = 100_000;
/** At most this much lost time (in PIT ticks: one second) is caught up; beyond, ticks are dropped. */
const MAX_CATCH_UP_TICKS = PIT_HZ;

/** Access modes (control word RW bits). */
const ACCESS_LATCH = 0;
const ACCESS_LSB = 1;
const ACCESS_MSB = 2;
const ACCESS_LOHI = 3;

/** PIT ticks since machine start at virtual time `ns` (monotonic: float rounding is monotonic). */
function tickAt(ns: number): number {
  return Math.floor(ns * TICKS_PER_NS);
}

/** The earliest virtual time at which `tickAt` reaches `tick`. */
function nsForTick(tick: number): number {
  let ns = Math.ceil(tick / TICKS_PER_NS);
  while (tickAt(ns) < tick) ns++;
  while (ns > 0 && tickAt(ns - 1) >= tick) ns--;
  return ns;
}

function fromBcd(value: number): number {
  return ((value >> 12) & 0xF) * 1000 + ((value >> 8) & 0xF) * 100 + ((value >> 4) & 0xF) * 10 +
    (value & 0xF);
}

function toBcd(value: number): number {
  const thousands = Math.floor(value / 1000) % 10;
  const hundreds = Math.floor(value / 100) % 10;
  const tens = Math.floor(value / 10) % 10;
  return (thousands << 12) | (hundreds << 8) | (tens << 4) | (value % 10);
}

/** One counter. Time is in PIT ticks; `elapsed` is ticks counted since the count was loaded. */
class PitChannel {
  /** Operating mode 0-5 (6 and 7 are aliases of 2 and 3). */
  #mode = 0;
  /** The mode bits exactly as written, for the read-back status byte. */
  #modeBits = 0;
  #access = ACCESS_LOHI;
  #bcd = false;
  /** The initial count as written (0 means the maximum: 65536, or 10000 in BCD). */
  #countRegister = 0;
  /** A count has been loaded since the last control word. */
  #loaded = false;
  /** Modes 1 and 5: the gate has triggered the count. */
  #triggered = false;
  #gate: boolean;
  /** Counting (the gate allows it); when paused, `frozenElapsed` holds the count's progress. */
  #running = false;
  #loadTick = 0;
  #frozenElapsed = 0;
  #nullCount = true;
  /** Write and read flip-flops for the LSB-then-MSB access mode. */
  #writeMsbNext = false;
  #pendingLsb = 0;
  #readMsbNext = false;
  /** Output latch: bytes left to read from a latched count (0 = none), and the status latch. */
  #latchedBytes = 0;
  #latchedCount = 0;
  #statusLatched = false;
  #latchedStatus = 0;

  constructor(gate: boolean) {
    this.#gate = gate;
  }

  /** Operating mode 0-5. */
  get mode(): number {
    return this.#mode;
  }

  /** The GATE input's level. */
  get gate(): boolean {
    return this.#gate;
  }

  /** The absolute tick of OUT's next rising edge, or -1 if none is coming. */
  nextRisingEdgeTick(tick: number): number {
    const edge = this.#nextRisingEdge(this.#elapsed(tick));
    return edge < 0 ? -1 : this.#loadTick + edge;
  }

  /** The period in ticks of the periodic modes 2 and 3 while counting; 0 otherwise. */
  periodTicks(): number {
    return this.#loaded && this.#running && (this.#mode === 2 || this.#mode === 3) ? this.#initialCount() : 0;
  }

  /** How many rising edges of OUT fall in the ticks (fromTick, toTick] (counting must not pause between). */
  risingEdgesIn(fromTick: number, toTick: number): number {
    if (!this.#loaded || !this.#running || toTick <= fromTick) return 0;
    const n = this.#initialCount();
    const from = Math.max(fromTick - this.#loadTick, 0);
    const to = toTick - this.#loadTick;
    if (to <= 0) return 0;
    switch (this.#mode) {
      case 2:
      case 3:
        return Math.floor(to / n) - Math.floor(from / n);
      case 4:
        return from < n + 1 && n + 1 <= to ? 1 : 0;
      default:
        return 0; // mode 0 is handled as a level; 1 and 5 need gate edges
    }
  }

  /** Read-back's status latch: holds until read, a second latch before that is ignored. */
  latchStatus(tick: number): void {
    if (this.#statusLatched) return;
    this.#statusLatched = true;
    this.#latchedStatus = this.#statusByte(tick);
  }

  /** The effective initial count N (1..65536, or 1..10000 in BCD). */
  #initialCount(): number {
    const n = this.#bcd ? fromBcd(this.#countRegister) : this.#countRegister;
    return n === 0 ? (this.#bcd ? 10000 : 0x10000) : n;
  }

  #elapsed(tick: number): number {
    return this.#running ? tick - this.#loadTick : this.#frozenElapsed;
  }

  /** The counting element's value, as the guest reads it (BCD-encoded in BCD mode). */
  #count(tick: number): number {
    if (!this.#loaded || ((this.#mode === 1 || this.#mode === 5) && !this.#triggered)) {
      return this.#countRegister;
    }
    const n = this.#initialCount();
    const e = this.#elapsed(tick);
    let value: number;
    switch (this.#mode) {
      case 2:
        value = n - (e % n);
        break;
      case 3:
        // Decrements by two each clock, reloading every half period (odd counts approximated).
        value = n - ((2 * e) % n);
        break;
      default: {
        // Modes 0, 1, 4, 5 keep counting down through zero and wrap.
        const modulus = this.#bcd ? 10000 : 0x10000;
        value = (((n - e) % modulus) + modulus) % modulus;
      }
    }
    return this.#bcd ? toBcd(value) : value & 0xFFFF;
  }

  out(tick: number): boolean {
    if (!this.#loaded) return this.#mode !== 0;
    const n = this.#initialCount();
    const e = this.#elapsed(tick);
    switch (this.#mode) {
      case 0:
        return e >= n;
      case 1:
        return !this.#triggered || e >= n;
      case 2:
        // Low for the one clock when the count reaches 1; forced high while the gate is low.
        return !this.#running || e % n !== n - 1;
      case 3:
        return !this.#running || e % n < (n + 1) >> 1;
      case 4:
        return e !== n;
      default: // 5
        return !this.#triggered || e !== n;
    }
  }

  /**
   * Elapsed ticks of the next rising edge of OUT after `e`, or -1 if none is coming (only
   * channel 0 needs this: its rising edges are IRQ0).
   */
  #nextRisingEdge(e: number): number {
    if (!this.#loaded || !this.#running) return -1;
    const n = this.#initialCount();
    switch (this.#mode) {
      case 0:
        return e < n ? n : -1;
      case 2:
      case 3:
        return (Math.floor(e / n) + 1) * n;
      case 4:
        return e < n + 1 ? n + 1 : -1;
      default: // modes 1 and 5 need a gate edge, which channel 0 never gets
        return -1;
    }
  }

  #statusByte(tick: number): number {
    return (this.out(tick) ? 0x80 : 0) | (this.#nullCount ? 0x40 : 0) | (this.#access << 4) |
      (this.#modeBits << 1) |
      (this.#bcd ? 1 : 0);
  }

  latchCount(tick: number): void {
    if (this.#latchedBytes !== 0) return; // a second latch before the read is ignored
    this.#latchedCount = this.#count(tick);
    this.#latchedBytes = this.#access === ACCESS_LOHI ? 2 : 1;
  }

  writeControl(value: number): void {
    this.#access = (value >> 4) & 3;
    this.#modeBits = (value >> 1) & 7;
    this.#mode = this.#modeBits > 5 ? this.#modeBits - 4 : this.#modeBits;
    this.#bcd = (value & 1) !== 0;
    this.#loaded = false;
    this.#triggered = false;
    this.#running = false;
    this.#frozenElapsed = 0;
    this.#nullCount = true;
    this.#writeMsbNext = false;
    this.#readMsbNext = false;
    this.#latchedBytes = 0;
    this.#statusLatched = false;
  }

  /** Returns true when a complete count was written (and loaded). */
  writeCount(value: number, tick: number): boolean {
    switch (this.#access) {
      case ACCESS_LSB:
        this.#countRegister = value;
        break;
      case ACCESS_MSB:
        this.#countRegister = value << 8;
        break;
      default:
        if (!this.#writeMsbNext) {
          this.#pendingLsb = value;
          this.#writeMsbNext = true;
          return false;
        }
        this.#writeMsbNext = false;
        this.#countRegister = this.#pendingLsb | (value << 8);
    }
    this.#loaded = true;
    this.#nullCount = false;
    if (this.#mode === 1 || this.#mode === 5) {
      // Hardware-triggered modes wait for a rising gate edge.
      this.#triggered = false;
      this.#running = false;
      this.#frozenElapsed = 0;
    } else {
      this.#start(tick);
    }
    return true;
  }

  readByte(tick: number): number {
    if (this.#statusLatched) {
      this.#statusLatched = false;
      return this.#latchedStatus;
    }
    if (this.#latchedBytes !== 0) {
      let byte: number;
      if (this.#access === ACCESS_MSB || (this.#access === ACCESS_LOHI && this.#latchedBytes === 1)) {
        byte = this.#latchedCount >> 8;
      } else {
        byte = this.#latchedCount & 0xFF;
      }
      this.#latchedBytes--;
      return byte & 0xFF;
    }
    // Without a latch each byte samples the live counter, as Linux's quick_pit_calibrate expects.
    const count = this.#count(tick);
    switch (this.#access) {
      case ACCESS_LSB:
        return count & 0xFF;
      case ACCESS_MSB:
        return (count >> 8) & 0xFF;
      default:
        this.#readMsbNext = !this.#readMsbNext;
        return this.#readMsbNext ? count & 0xFF : (count >> 8) & 0xFF;
    }
  }

  setGate(level: boolean, tick: number): void {
    const rising = level && !this.#gate;
    const falling = !level && this.#gate;
    this.#gate = level;
    if (!this.#loaded) return;
    switch (this.#mode) {
      case 0:
      case 4:
        // The gate suspends counting.
        if (falling) this.#pause(tick);
        else if (rising) this.#resume(tick);
        break;
      case 2:
      case 3:
        // Low gate stops the count (OUT goes high); a rising gate reloads it.
        if (falling) this.#pause(tick);
        else if (rising) this.#start(tick);
        break;
      default: // 1, 5: a rising gate (re)triggers
        if (rising) {
          this.#triggered = true;
          this.#start(tick);
        }
    }
  }

  #start(tick: number): void {
    if (this.#gate) {
      this.#running = true;
      this.#loadTick = tick;
    } else {
      this.#running = false;
      this.#frozenElapsed = 0;
    }
  }

  #pause(tick: number): void {
    if (!this.#running) return;
    this.#frozenElapsed = tick - this.#loadTick;
    this.#running = false;
  }

  #resume(tick: number): void {
    if (this.#running) return;
    this.#running = true;
    this.#loadTick = tick - this.#frozenElapsed;
  }
}

/** The three-channel 8254. Channel 0 → IRQ0; channel 1 (DRAM refresh) is inert; channel 2 → 0x61. */
export class Pit8254 {
  #clock: VirtualClock;
  #irq: IrqSink;
  #irqLine: number;
  #channels: PitChannel[];
  /** Fires at channel 0's next rising OUT edge. */
  #timer: Timer;
  /** The level last driven on IRQ0. */
  #irqLevel = false;
  /** Channel 0 edges that have happened but not yet reached IRQ0 (the host fell behind). */
  #owedEdges = 0;
  /** Channel 0 edges up to this tick have been counted (delivered or owed). */
  #countedToTick = 0;

  /**
   * `irq` receives channel 0's OUT on `irqLine` (IRQ0 on a PC). The counters start as a BIOS
   * leaves them: channel 0 in mode 3 with count 0 (the 18.2 Hz tick), channel 1 in mode 2 with
   * count 18 (DRAM refresh), channel 2 unprogrammed with its gate low. With `powerOn` (firmware
   * runs from the reset vector) no channel is programmed: nothing counts until firmware writes a
   * control word and a count.
   */
  constructor(clock: VirtualClock, irq: IrqSink, irqLine = 0, options: { powerOn?: boolean } = {}) {
    this.#clock = clock;
    this.#irq = irq;
    this.#irqLine = irqLine;
    this.#channels = [new PitChannel(true), new PitChannel(true), new PitChannel(false)];
    this.#timer = clock.timer("pit-channel0", (nowNs) => this.#onTimer(nowNs));
    if (options.powerOn === true) return;
    this.#writeControl(0x36);
    this.#writeCounter(0, 0);
    this.#writeCounter(0, 0);
    this.#writeControl(0x54);
    this.#writeCounter(1, 18);
  }

  /** Claims ports 0x40-0x43. */
  register(ports: PortBus): void {
    ports.register(0x40, 4, "pit", {
      read: (offset, size) => {
        const byte = offset === 3 ? 0xFF : this.#readCounter(offset);
        return size === 1 ? byte : size === 2 ? byte | 0xFF00 : (byte | 0xFFFF_FF00) >>> 0;
      },
      write: (offset, _size, value) => {
        if (offset === 3) this.#writeControl(value & 0xFF);
        else this.#writeCounter(offset, value & 0xFF);
      },
    });
  }

  /** Sets a channel's GATE input (only channel 2's is wired to anything: port 0x61 bit 0). */
  setGate(channel: number, level: boolean): void {
    const ch = this.#channels[channel];
    if (ch.gate === level) return;
    const nowNs = this.#clock.nowNs();
    if (channel === 0) this.#deliverDueEdge(nowNs);
    ch.setGate(level, tickAt(nowNs));
    if (channel === 0) this.#channel0Changed(nowNs);
  }

  /** A channel's GATE input as last set. */
  gate(channel: number): boolean {
    return this.#channels[channel].gate;
  }

  /** A channel's OUT pin now (channel 2's is port 0x61 bit 5). */
  output(channel: number): boolean {
    return this.#channels[channel].out(tickAt(this.#clock.nowNs()));
  }

  #readCounter(channel: number): number {
    return this.#channels[channel].readByte(tickAt(this.#clock.nowNs()));
  }

  #writeCounter(channel: number, value: number): void {
    const ch = this.#channels[channel];
    const nowNs = this.#clock.nowNs();
    if (channel === 0) this.#deliverDueEdge(nowNs);
    if (ch.writeCount(value, tickAt(nowNs)) && channel === 0) this.#channel0Changed(nowNs);
  }

  #writeControl(value: number): void {
    const select = value >> 6;
    const nowNs = this.#clock.nowNs();
    const tick = tickAt(nowNs);
    if (select === 3) {
      // Read-back: bit 5 clear latches counts, bit 4 clear latches status, bits 1-3 pick channels.
      for (let i = 0; i < 3; i++) {
        if ((value & (2 << i)) === 0) continue;
        const ch = this.#channels[i];
        if ((value & 0x20) === 0) ch.latchCount(tick);
        if ((value & 0x10) === 0) ch.latchStatus(tick);
      }
      return;
    }
    const ch = this.#channels[select];
    if (((value >> 4) & 3) === ACCESS_LATCH) {
      ch.latchCount(tick);
      return;
    }
    if (select === 0) this.#deliverDueEdge(nowNs);
    ch.writeControl(value);
    if (select === 0) this.#channel0Changed(nowNs);
  }

  /**
   * Channel 0 is about to change: an edge whose time has come but which the run loop has not
   * fired yet (timers fire between CPU slices) happened on real hardware, so it reaches the 8259
   * now instead of being lost to the reprogramming.
   */
  #deliverDueEdge(nowNs: number): void {
    if (this.#timer.deadlineNs > nowNs) return;
    this.#timer.cancel();
    this.#onTimer(nowNs);
  }

  /**
   * Re-drives IRQ0 from channel 0's OUT and arms the timer for its next rising edge. `nowNs` is
   * the time of the access that changed the channel: reading the clock again here could step past
   * a short one-shot count's edge (host time moves on) and lose it for good.
   */
  #channel0Changed(nowNs: number): void {
    const ch = this.#channels[0];
    const tick = tickAt(nowNs);
    this.#owedEdges = 0;
    this.#countedToTick = tick;
    this.#driveIrq(ch.out(tick));
    this.#armTimer(ch, tick);
  }

  #armTimer(ch: PitChannel, tick: number): void {
    const edgeTick = ch.nextRisingEdgeTick(tick);
    if (edgeTick < 0) this.#timer.cancel();
    else this.#timer.arm(nsForTick(edgeTick));
  }

  /**
   * An edge is due. Mode 0 holds OUT high from the terminal count; the other modes pulse it (OUT
   * dropped for a clock and rose again). When the host fell behind (host-clock mode: a busy host,
   * a garbage collection) several periods may have passed: each becomes its own IRQ0 edge, sent
   * once the 8259 has passed the previous one to the CPU, so the guest counts every tick (QEMU's "delay" lost-tick policy). Linux's
   * early jiffies, and with them the clocksource watchdog's verdict on the TSC, depend on it.
   */
  #onTimer(nowNs: number): void {
    const ch = this.#channels[0];
    const tick = tickAt(nowNs);
    if (ch.mode === 0) {
      this.#driveIrq(ch.out(tick));
      this.#armTimer(ch, tick);
      return;
    }
    const period = ch.periodTicks();
    const maxOwed = period > 0 ? Math.ceil(MAX_CATCH_UP_TICKS / period) : 1;
    this.#owedEdges = Math.min(this.#owedEdges + ch.risingEdgesIn(this.#countedToTick, tick), maxOwed);
    this.#countedToTick = tick;
    const merges = this.#owedEdges > 1 && this.#irq.requestPending?.(this.#irqLine) === true;
    if (this.#owedEdges > 0 && !merges) {
      this.#owedEdges--;
      this.#driveIrq(false);
      this.#driveIrq(true);
    }
    if (this.#owedEdges > 0) this.#timer.arm(nowNs + CATCH_UP_NS);
    else this.#armTimer(ch, tick);
  }

  #driveIrq(level: boolean): void {
    if (level === this.#irqLevel) return;
    this.#irqLevel = level;
    this.#irq.setIrq(this.#irqLine, level);
  }
}
