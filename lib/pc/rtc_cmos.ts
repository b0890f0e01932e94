/**
 * The MC146818 real-time clock and CMOS RAM at 0x70/0x71 (MC146818A datasheet: registers A-D,
 * BCD/binary, 12/24-hour, periodic/alarm/update interrupts on IRQ8; AT BIOS memory-size fields).
 * Time starts at the given UTC date (the host's, or a fixed one when the clock is deterministic) and
 * advances with the VirtualClock. Left out: DSE, the
 * square-wave pin, divider-reset states, the NMI mask bit, the second 128-byte bank.
 */
import type { PortBus } from "../machine/bus.ts";
import type { Timer, VirtualClock } from "../machine/clock.ts";
import type { IrqSink } from "../machine/irq.ts";

const REG_SECONDS = 0x00;
const REG_SECONDS_ALARM = 0x01;
const REG_MINUTES = 0x02;
const REG_MINUTES_ALARM = 0x03;
const REG_HOURS = 0x04;
const REG_HOURS_ALARM = 0x05;
const REG_DAY_OF_WEEK = 0x06;
const REG_DAY_OF_MONTH = 0x07;
const REG_MONTH = 0x08;
const REG_YEAR = 0x09;
const REG_A = 0x0A;
const REG_B = 0x0B;
const REG_C = 0x0C;
const REG_D = 0x0D;
/** The IBM convention for the century byte (Linux finds it through ACPI's FADT, when present). */
const REG_CENTURY = 0x32;

const REG_A_UIP = 0x80;
const REG_B_SET = 0x80;
const REG_B_PIE = 0x40;
const REG_B_AIE = 0x20;
const REG_B_UIE = 0x10;
const REG_B_DM_BINARY = 0x04;
const REG_B_24H = 0x02;
const REG_C_IRQF = 0x80;
const REG_C_PF = 0x40;
const REG_C_AF = 0x20;
const REG_C_UF = 0x10;
const REG_D_VRT = 0x80;

const NS_PER_SECOND = 1e9;
/** UIP rises this long before each update (datasheet: t_BUC = 244 us). */
const UIP_LEAD_NS = 244_000;

/** The RTC's start on a deterministic clock when none is given: 2026-01-01T00:00:00Z. */
export const DETERMINISTIC_RTC_BASE_MS = Date.UTC(2026, 0, 1);

/** A value that means "any" in an alarm register. */
function isDontCare(value: number): boolean {
  return (value & 0xC0) === 0xC0;
}

export interface RtcCmosOptions {
  /** Guest RAM size in bytes, reported in the CMOS memory-size fields. */
  memSizeBytes: number;
  /**
   * Wall-clock time at virtual time zero, in ms since the Unix epoch (UTC). Default: the host's now,
   * or DETERMINISTIC_RTC_BASE_MS on a deterministic clock (a run must not depend on when it ran).
   */
  startTimeMs?: number;
  /** Default 8. */
  irqLine?: number;
}

export class RtcCmos {
  #clock: VirtualClock;
  #irq: IrqSink;
  #irqLine: number;
  #ram = new Uint8Array(128);
  #index = 0;
  /** The time is `#baseSeconds` (Unix, UTC) plus whole seconds elapsed since virtual `#baseNs`. */
  #baseSeconds: number;
  #baseNs: number;
  /** Second (relative to #baseNs) and periodic-interrupt period last accounted for in register C. */
  #lastSecondIndex = 0;
  #lastPeriodIndex = 0;
  #irqLevel = false;
  #periodicTimer: Timer;
  #updateTimer: Timer;
  /** Scratch fields for calendar conversions (no allocation per access). */
  #year = 1970;
  #month = 1;
  #day = 1;

  constructor(clock: VirtualClock, irq: IrqSink, options: RtcCmosOptions) {
    this.#clock = clock;
    this.#irq = irq;
    this.#irqLine = options.irqLine ?? 8;
    const startMs = options.startTimeMs ??
      (clock.mode === "deterministic" ? DETERMINISTIC_RTC_BASE_MS : Date.now());
    this.#baseSeconds = Math.floor(startMs / 1000);
    // Keep the host's sub-second phase so the first update comes when the host's second turns.
    this.#baseNs = -(startMs - this.#baseSeconds * 1000) * 1e6 + clock.nowNs();
    this.#periodicTimer = clock.timer("rtc-periodic", (nowNs) => this.#onTimer(nowNs));
    this.#updateTimer = clock.timer("rtc-update", (nowNs) => this.#onTimer(nowNs));

    const ram = this.#ram;
    ram[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate: what a BIOS leaves
    ram[REG_B] = REG_B_24H; // BCD, 24-hour: the only mode Linux's rtc-cmos accepts without a warning
    ram[REG_D] = REG_D_VRT;
    this.#setMemorySize(options.memSizeBytes);
    const now = clock.nowNs();
    this.#lastSecondIndex = this.#secondIndex(now);
    this.#lastPeriodIndex = this.#periodIndex(now);
    this.#refreshTime(now);
  }

  /** Claims ports 0x70 (index) and 0x71 (data). */
  register(ports: PortBus): void {
    ports.register(0x70, 2, "rtc-cmos", {
      // The index register is write-only; reading it floats.
      read: (offset, size) => {
        const value = offset === 0 ? 0xFF : this.#readRegister(this.#index);
        return size === 1 ? value : size === 2 ? value | 0xFF00 : (value | 0xFFFF_FF00) >>> 0;
      },
      write: (offset, _size, value) => {
        if (offset === 0) this.#index = value & 0x7F; // bit 7 is the NMI mask: no NMIs here
        else this.#writeRegister(this.#index, value & 0xFF);
      },
    });
  }

  #readRegister(index: number): number {
    const ram = this.#ram;
    const now = this.#clock.nowNs();
    switch (index) {
      case REG_SECONDS:
      case REG_MINUTES:
      case REG_HOURS:
      case REG_DAY_OF_WEEK:
      case REG_DAY_OF_MONTH:
      case REG_MONTH:
      case REG_YEAR:
      case REG_CENTURY:
        if ((ram[REG_B] & REG_B_SET) === 0) this.#refreshTime(now);
        return ram[index];
      case REG_A:
        return ram[REG_A] | (this.#updateInProgress(now) ? REG_A_UIP : 0);
      case REG_C: {
        // Reading C reports and clears the flags, and releases IRQ8.
        this.#catchUp(now);
        const value = ram[REG_C];
        ram[REG_C] = 0;
        this.#driveIrq(false);
        return value;
      }
      default:
        return ram[index];
    }
  }

  #writeRegister(index: number, value: number): void {
    const ram = this.#ram;
    const now = this.#clock.nowNs();
    switch (index) {
      case REG_SECONDS:
      case REG_MINUTES:
      case REG_HOURS:
      case REG_DAY_OF_WEEK:
      case REG_DAY_OF_MONTH:
      case REG_MONTH:
      case REG_YEAR:
      case REG_CENTURY:
        if ((ram[REG_B] & REG_B_SET) !== 0) {
          ram[index] = value;
        } else {
          // Writing a running clock changes that field of the current time.
          this.#refreshTime(now);
          ram[index] = value;
          this.#rebase(now);
        }
        break;
      case REG_A:
        this.#catchUp(now);
        ram[REG_A] = value & 0x7F;
        this.#lastPeriodIndex = this.#periodIndex(now);
        break;
      case REG_B: {
        this.#catchUp(now);
        const old = ram[REG_B];
        if (value & REG_B_SET) value &= ~REG_B_UIE; // SET inhibits updates, and so their interrupt
        if ((old & REG_B_SET) === 0 && (value & REG_B_SET) !== 0) this.#refreshTime(now); // freeze
        ram[REG_B] = value;
        if ((old & REG_B_SET) !== 0 && (value & REG_B_SET) === 0) this.#rebase(now); // run from the new time
        this.#updateIrqFlag();
        break;
      }
      case REG_C:
      case REG_D:
        break; // read-only
      default:
        ram[index] = value;
    }
    this.#armTimers(now);
  }

  /** UIP is set from 244 us before each update until it happens (the update itself is instant here). */
  #updateInProgress(nowNs: number): boolean {
    if (this.#ram[REG_B] & REG_B_SET) return false;
    const phase = (nowNs - this.#baseNs) % NS_PER_SECOND;
    return phase >= NS_PER_SECOND - UIP_LEAD_NS;
  }

  #secondIndex(nowNs: number): number {
    return Math.floor((nowNs - this.#baseNs) / NS_PER_SECOND);
  }

  /** The periodic interrupt period from register A's rate select, or 0 when off. */
  #periodNs(): number {
    let rate = this.#ram[REG_A] & 0x0F;
    if (rate === 0) return 0;
    if (rate < 3) rate += 7; // rates 1 and 2 alias 8 and 9 with a 32.768 kHz time base
    return ((1 << (rate - 1)) * NS_PER_SECOND) / 32768;
  }

  #periodIndex(nowNs: number): number {
    const period = this.#periodNs();
    return period === 0 ? 0 : Math.floor(nowNs / period);
  }

  /** Sets the PF, UF and AF flags for periods and seconds that ended since last accounted for. */
  #catchUp(nowNs: number): void {
    const ram = this.#ram;
    if (this.#periodNs() !== 0) {
      const index = this.#periodIndex(nowNs);
      if (index > this.#lastPeriodIndex) ram[REG_C] |= REG_C_PF;
      this.#lastPeriodIndex = index;
    }
    if ((ram[REG_B] & REG_B_SET) === 0) {
      const index = this.#secondIndex(nowNs);
      if (index > this.#lastSecondIndex) {
        ram[REG_C] |= REG_C_UF;
        this.#refreshTime(nowNs);
        if (
          (isDontCare(ram[REG_SECONDS_ALARM]) || ram[REG_SECONDS_ALARM] === ram[REG_SECONDS]) &&
          (isDontCare(ram[REG_MINUTES_ALARM]) || ram[REG_MINUTES_ALARM] === ram[REG_MINUTES]) &&
          (isDontCare(ram[REG_HOURS_ALARM]) || ram[REG_HOURS_ALARM] === ram[REG_HOURS])
        ) {
          ram[REG_C] |= REG_C_AF;
        }
      }
      this.#lastSecondIndex = index;
    }
    this.#updateIrqFlag();
  }

  /** IRQF = any flag whose interrupt is enabled; IRQ8 follows it. */
  #updateIrqFlag(): void {
    const ram = this.#ram;
    const enabled = ram[REG_B] & (REG_B_PIE | REG_B_AIE | REG_B_UIE);
    // The flag bits (C bits 6-4) line up with their enables (B bits 6-4).
    if ((ram[REG_C] & enabled) !== 0) ram[REG_C] |= REG_C_IRQF;
    if (ram[REG_C] & REG_C_IRQF) this.#driveIrq(true);
  }

  #onTimer(nowNs: number): void {
    this.#catchUp(nowNs);
    this.#armTimers(nowNs);
  }

  /** Timers run only while an interrupt that needs them is enabled; otherwise flags are lazy. */
  #armTimers(nowNs: number): void {
    const b = this.#ram[REG_B];
    const period = this.#periodNs();
    if ((b & REG_B_PIE) !== 0 && period !== 0) {
      this.#periodicTimer.arm((Math.floor(nowNs / period) + 1) * period);
    } else {
      this.#periodicTimer.cancel();
    }
    if ((b & (REG_B_UIE | REG_B_AIE)) !== 0 && (b & REG_B_SET) === 0) {
      this.#updateTimer.arm(this.#baseNs + (this.#secondIndex(nowNs) + 1) * NS_PER_SECOND);
    } else {
      this.#updateTimer.cancel();
    }
  }

  #driveIrq(level: boolean): void {
    if (level === this.#irqLevel) return;
    this.#irqLevel = level;
    this.#irq.setIrq(this.#irqLine, level);
  }

  #encode(value: number): number {
    if (this.#ram[REG_B] & REG_B_DM_BINARY) return value;
    return (Math.floor(value / 10) << 4) | (value % 10);
  }

  #decode(value: number): number {
    if (this.#ram[REG_B] & REG_B_DM_BINARY) return value;
    return (value >> 4) * 10 + (value & 0x0F);
  }

  /** Writes the current time into the time registers, in the format register B selects. */
  #refreshTime(nowNs: number): void {
    const ram = this.#ram;
    const seconds = this.#baseSeconds + this.#secondIndex(nowNs);
    const days = Math.floor(seconds / 86400);
    const secondOfDay = seconds - days * 86400;
    const hour = Math.floor(secondOfDay / 3600);
    this.#civilFromDays(days);
    ram[REG_SECONDS] = this.#encode(secondOfDay % 60);
    ram[REG_MINUTES] = this.#encode(Math.floor(secondOfDay / 60) % 60);
    if (ram[REG_B] & REG_B_24H) {
      ram[REG_HOURS] = this.#encode(hour);
    } else {
      ram[REG_HOURS] = this.#encode(hour % 12 === 0 ? 12 : hour % 12) | (hour >= 12 ? 0x80 : 0);
    }
    ram[REG_DAY_OF_WEEK] = (((days % 7) + 11) % 7) + 1; // 1970-01-01 was a Thursday; Sunday is 1
    ram[REG_DAY_OF_MONTH] = this.#encode(this.#day);
    ram[REG_MONTH] = this.#encode(this.#month);
    ram[REG_YEAR] = this.#encode(this.#year % 100);
    ram[REG_CENTURY] = this.#encode(Math.floor(this.#year / 100));
  }

  /** Makes the time registers the current time, keeping the divider's sub-second phase. */
  #rebase(nowNs: number): void {
    const ram = this.#ram;
    let hour: number;
    if (ram[REG_B] & REG_B_24H) {
      hour = this.#decode(ram[REG_HOURS]);
    } else {
      hour = (this.#decode(ram[REG_HOURS] & 0x7F) % 12) + ((ram[REG_HOURS] & 0x80) ? 12 : 0);
    }
    let century = this.#decode(ram[REG_CENTURY]);
    const yearInCentury = this.#decode(ram[REG_YEAR]);
    if (century < 19 || century > 99) century = yearInCentury < 70 ? 20 : 19;
    const days = this.#daysFromCivil(
      century * 100 + yearInCentury,
      this.#decode(ram[REG_MONTH]),
      this.#decode(ram[REG_DAY_OF_MONTH]),
    );
    const phase = (((nowNs - this.#baseNs) % NS_PER_SECOND) + NS_PER_SECOND) % NS_PER_SECOND;
    this.#baseSeconds = days * 86400 + hour * 3600 + this.#decode(ram[REG_MINUTES]) * 60 +
      this.#decode(ram[REG_SECONDS]);
    this.#baseNs = nowNs - phase;
    this.#lastSecondIndex = 0;
  }

  /** Days since 1970-01-01 → #year, #month, #day (proleptic Gregorian; H. Hinnant's algorithm). */
  #civilFromDays(days: number): void {
    const z = days + 719468;
    const era = Math.floor(z / 146097);
    const doe = z - era * 146097;
    const yoe = Math.floor(
      (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
    );
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    this.#day = doy - Math.floor((153 * mp + 2) / 5) + 1;
    this.#month = mp < 10 ? mp + 3 : mp - 9;
    this.#year = yoe + era * 400 + (this.#month <= 2 ? 1 : 0);
  }

  /** The inverse of #civilFromDays; out-of-range fields from the guest just roll over. */
  #daysFromCivil(year: number, month: number, day: number): number {
    const y = month <= 2 ? year - 1 : year;
    const era = Math.floor(y / 400);
    const yoe = y - era * 400;
    const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
    const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
    return era * 146097 + doe - 719468;
  }

  /** The AT BIOS memory fields: base (KiB), extended above 1 MiB (KiB), above 16 MiB (64 KiB units). */
  #setMemorySize(memSizeBytes: number): void {
    const ram = this.#ram;
    const baseKiB = Math.min(Math.floor(memSizeBytes / 1024), 640);
    const extendedKiB = Math.min(Math.max(Math.floor((memSizeBytes - 0x10_0000) / 1024), 0), 0xFFFF);
    const above16M = Math.min(Math.max(Math.floor((memSizeBytes - 0x100_0000) / 0x1_0000), 0), 0xFFFF);
    ram[0x15] = baseKiB & 0xFF;
    ram[0x16] = baseKiB >> 8;
    ram[0x17] = ram[0x30] = extendedKiB & 0xFF;
    ram[0x18] = ram[0x31] = extendedKiB >> 8;
    ram[0x34] = above16M & 0xFF;
    ram[0x35] = above16M >> 8;
    ram[0x14] = 0x02; // equipment byte: math coprocessor present, no floppies, VGA
    // Standard checksum over 0x10-0x2D, big-endian at 0x2E.
    let sum = 0;
    for (let i = 0x10; i <= 0x2D; i++) sum += ram[i];
    ram[0x2E] = (sum >> 8) & 0xFF;
    ram[0x2F] = sum & 0xFF;
  }
}
