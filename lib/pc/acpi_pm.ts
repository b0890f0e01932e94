/**
 * The ACPI fixed hardware (ACPI 6.5 §4.8.3): the PM1a event block (PM1_STS, write 1 to clear, and
 * PM1_EN), the PM1a control block (SCI_EN always 1, as there is no SMI_CMD to switch modes; SLP_EN
 * with SLP_TYP = ACPI_SLP_TYP_S5 powers off) and the 24-bit PM timer at 3.579545 MHz, derived from
 * the shared VirtualClock like the PIT so the two agree. The SCI follows PM1_STS & PM1_EN; only the
 * power button and timer overflow ever set a status. Left out: PM1b, PM2, GPE blocks, S1-S4.
 */
import type { PortBus } from "../machine/bus.ts";
import type { Timer, VirtualClock } from "../machine/clock.ts";
import type { IrqSink } from "../machine/irq.ts";
import { warn } from "../support/log.ts";

/** Where the blocks sit (a PIIX4/ICH-style base of 0x600, clear of ISA and of PCI's 0x1000 upwards). */
export const ACPI_PM1A_EVT_BLK = 0x600;
export const ACPI_PM1_EVT_LEN = 4;
export const ACPI_PM1A_CNT_BLK = 0x604;
export const ACPI_PM1_CNT_LEN = 2;
export const ACPI_PM_TMR_BLK = 0x608;
export const ACPI_PM_TMR_LEN = 4;

/**
 * The SCI's 8259 line. PCI INTx takes 5, 9, 10, 11 then 3, 7, 14, 15 (virtio_devices.ts), COM1 4,
 * the i8042 1 and 12 (both edge-triggered), the RTC 8 and the FPU 13; 6 (the floppy, which this PC
 * lacks) is the one line left that the ELCR can make level-triggered, as the SCI must be.
 */
export const ACPI_SCI_IRQ = 6;

/** The SLP_TYP value our DSDT's \_S5 package names (any 3-bit value would do; the AML and we agree). */
export const ACPI_SLP_TYP_S5 = 5;

/** The PM timer's input clock (ACPI 6.5 §4.8.3.3). */
export const PM_TIMER_HZ = 3_579_545;
const TICKS_PER_NS = PM_TIMER_HZ / 1e9;
/** The counter is 24 bits wide (the FADT leaves TMR_VAL_EXT clear); TMR_STS follows bit 23. */
const PM_TMR_MASK = 0xFF_FFFF;
const TMR_STS_PERIOD_TICKS = 1 << 23;

// PM1 status and enable bits (ACPI 6.5 tables 4.16 and 4.17).
export const TMR_STS = 1 << 0;
export const BM_STS = 1 << 4;
export const GBL_STS = 1 << 5;
export const PWRBTN_STS = 1 << 8;
export const SLPBTN_STS = 1 << 9;
export const RTC_STS = 1 << 10;
export const PCIEXP_WAKE_STS = 1 << 14;
export const WAK_STS = 1 << 15;
export const TMR_EN = 1 << 0;
export const GBL_EN = 1 << 5;
export const PWRBTN_EN = 1 << 8;
export const SLPBTN_EN = 1 << 9;
export const RTC_EN = 1 << 10;
export const PCIEXP_WAKE_DIS = 1 << 14;

// PM1 control bits (ACPI 6.5 table 4.18).
export const SCI_EN = 1 << 0;
export const BM_RLD = 1 << 1;
export const GBL_RLS = 1 << 2;
export const SLP_TYP_SHIFT = 10;
export const SLP_TYP_MASK = 7 << SLP_TYP_SHIFT;
export const SLP_EN = 1 << 13;

const PM1_STS_W1C = TMR_STS | BM_STS | GBL_STS | PWRBTN_STS | SLPBTN_STS | RTC_STS | PCIEXP_WAKE_STS |
  WAK_STS;
/** Enable bits that stick: ACPICA checks each one it sets reads back (no sticking GBL_EN = no global lock). */
const PM1_EN_WRITABLE = TMR_EN | GBL_EN | PWRBTN_EN | SLPBTN_EN | RTC_EN | PCIEXP_WAKE_DIS;
/** Status bits that raise the SCI when their enable bit is set (same positions in both registers). */
const SCI_EVENTS = TMR_STS | GBL_STS | PWRBTN_STS | SLPBTN_STS | RTC_STS;
/** PM1_CNT bits that hold a value; GBL_RLS and SLP_EN are write-only strobes, SCI_EN is fixed at 1. */
const PM1_CNT_STORED = BM_RLD | SLP_TYP_MASK;

export interface AcpiPmOptions {
  /** The guest wrote SLP_EN with SLP_TYP = ACPI_SLP_TYP_S5: soft off. */
  onPowerOff: () => void;
  /** The SCI's IRQ line (default ACPI_SCI_IRQ); it must match the FADT's SCI_INT. */
  sciIrq?: number;
}

/** PM timer ticks since machine start at virtual time `ns` (monotonic, as `nowNs` is). */
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

export class AcpiPm {
  readonly #clock: VirtualClock;
  readonly #irq: IrqSink;
  readonly #sciIrq: number;
  readonly #onPowerOff: () => void;
  /** PM1_STS except TMR_STS, which is derived from the timer (see #timerStatus). */
  #status = 0;
  #enable = 0;
  /** PM1_CNT's stored bits (SCI_EN is added on read). */
  #control = 0;
  /** The TMR_STS period (ticks >> 23) in which TMR_STS was last cleared. */
  #tmrStsClearedPeriod = 0;
  #sciLevel = false;
  /** Fires at each bit-23 toggle while TMR_EN is set, to raise the SCI on time. */
  readonly #overflowTimer: Timer;

  constructor(clock: VirtualClock, irq: IrqSink, options: AcpiPmOptions) {
    this.#clock = clock;
    this.#irq = irq;
    this.#sciIrq = options.sciIrq ?? ACPI_SCI_IRQ;
    this.#onPowerOff = options.onPowerOff;
    this.#overflowTimer = clock.timer("acpi-pm-timer-overflow", () => this.#onOverflow());
  }

  /** Claims the three register blocks at their FADT addresses. */
  register(ports: PortBus): void {
    ports.register(ACPI_PM1A_EVT_BLK, ACPI_PM1_EVT_LEN, "acpi-pm1a-evt", {
      read: (offset, size) => this.#readBytes(offset, size, ACPI_PM1_EVT_LEN, this.#readEventBlock()),
      write: (offset, size, value) => this.#writeEventBlock(offset, size, value),
    });
    ports.register(ACPI_PM1A_CNT_BLK, ACPI_PM1_CNT_LEN, "acpi-pm1a-cnt", {
      read: (offset, size) => this.#readBytes(offset, size, ACPI_PM1_CNT_LEN, this.#control | SCI_EN),
      write: (offset, size, value) => this.#writeControl(offset, size, value),
    });
    ports.register(ACPI_PM_TMR_BLK, ACPI_PM_TMR_LEN, "acpi-pm-tmr", {
      read: (offset, size) => this.#readBytes(offset, size, ACPI_PM_TMR_LEN, this.timerValue()),
      write: () => {}, // read-only
    });
  }

  /** The PM timer's current count (24 bits). */
  timerValue(): number {
    return tickAt(this.#clock.nowNs()) & PM_TMR_MASK;
  }

  /** The host pressed the power button: PWRBTN_STS, and the SCI if the guest enabled it. */
  pressPowerButton(): void {
    this.#status |= PWRBTN_STS;
    this.#updateSci();
  }

  /** PM1_STS as the guest reads it. */
  get status(): number {
    return this.#status | this.#timerStatus();
  }

  get enable(): number {
    return this.#enable;
  }

  /** TMR_STS: bit 23 of the timer has toggled since the guest last cleared it. */
  #timerStatus(): number {
    return this.#currentPeriod() > this.#tmrStsClearedPeriod ? TMR_STS : 0;
  }

  #currentPeriod(): number {
    return Math.floor(tickAt(this.#clock.nowNs()) / TMR_STS_PERIOD_TICKS);
  }

  /** PM1_STS in bytes 0-1, PM1_EN in bytes 2-3. */
  #readEventBlock(): number {
    return (this.status | (this.#enable << 16)) >>> 0;
  }

  /** Bytes `offset`..`offset+size-1` of a `blockLen`-byte little-endian block; bytes past it read 0xFF. */
  #readBytes(offset: number, size: number, blockLen: number, block: number): number {
    let value = 0;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = at < blockLen ? (block >>> (8 * at)) & 0xFF : 0xFF;
      value |= byte << (8 * i);
    }
    return value >>> 0;
  }

  /**
   * Splits a write at `offset` into the bits it covers of a 16-bit register at `regOffset`:
   * returns [mask, value], with mask 0 when the write misses the register.
   */
  #lanes(offset: number, size: number, value: number, regOffset: number): [number, number] {
    let mask = 0, bits = 0;
    for (let i = 0; i < size; i++) {
      const lane = offset + i - regOffset;
      if (lane < 0 || lane > 1) continue;
      mask |= 0xFF << (8 * lane);
      bits |= ((value >>> (8 * i)) & 0xFF) << (8 * lane);
    }
    return [mask, bits];
  }

  #writeEventBlock(offset: number, size: number, value: number): void {
    const [stsMask, sts] = this.#lanes(offset, size, value, 0);
    const clear = sts & stsMask & PM1_STS_W1C;
    this.#status &= ~clear;
    if (clear & TMR_STS) this.#tmrStsClearedPeriod = this.#currentPeriod();
    const [enMask, en] = this.#lanes(offset, size, value, 2);
    if (enMask !== 0) {
      this.#enable = (this.#enable & ~(enMask & PM1_EN_WRITABLE)) | (en & enMask & PM1_EN_WRITABLE);
      this.#armOverflowTimer();
    }
    this.#updateSci();
  }

  #writeControl(offset: number, size: number, value: number): void {
    const [mask, bits] = this.#lanes(offset, size, value, 0);
    this.#control = (this.#control & ~(mask & PM1_CNT_STORED)) | (bits & mask & PM1_CNT_STORED);
    if ((bits & mask & SLP_EN) === 0) return;
    const slpTyp = (this.#control & SLP_TYP_MASK) >> SLP_TYP_SHIFT;
    if (slpTyp === ACPI_SLP_TYP_S5) {
      this.#onPowerOff();
    } else {
      // Our DSDT names only \_S5, so an OS has no business asking for another state.
      warn(`ACPI: ignoring a request to enter sleep type ${slpTyp}: only soft-off (S5) is supported`);
    }
  }

  /** While TMR_EN is set, a timer stands at the next bit-23 toggle so the SCI rises on time. */
  #armOverflowTimer(): void {
    if ((this.#enable & TMR_EN) === 0) {
      this.#overflowTimer.cancel();
      return;
    }
    this.#overflowTimer.arm(nsForTick((this.#currentPeriod() + 1) * TMR_STS_PERIOD_TICKS));
  }

  #onOverflow(): void {
    this.#updateSci();
    this.#armOverflowTimer();
  }

  /** SCI_EN is always set, so the SCI is simply any enabled event's status (ACPI 6.5 §4.8.3.1). */
  #updateSci(): void {
    const level = (this.status & this.#enable & SCI_EVENTS) !== 0;
    if (level === this.#sciLevel) return;
    this.#sciLevel = level;
    this.#irq.setIrq(this.#sciIrq, level);
  }
}
