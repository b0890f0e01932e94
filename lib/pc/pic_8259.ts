/**
 * The PC's two cascaded 8259A interrupt controllers (Intel 8259A datasheet: ICW1-4, OCW1-3) and
 * the ELCR edge/level register at 0x4D0, modelled on QEMU's i8259, which Linux is happy with.
 * Left out: special fully nested mode (accepted, not honoured), ICW1's LTIM bit (the ELCR does
 * that job on a PC), buffered mode and the 8080 call format.
 */
import type { PortBus } from "../machine/bus.ts";
import type { InterruptSource, IrqSink } from "../machine/irq.ts";

/** ELCR bits that exist: IRQ0-2, IRQ8 and IRQ13 are always edge-triggered on a PC. */
const ELCR_MASK_MASTER = 0xF8;
const ELCR_MASK_SLAVE = 0xDE;
const CASCADE_IRQ = 2;

/** One 8259A. Line levels come in through `setInput`; `pendingIrq() >= 0` is its INT pin. */
class Pic8259 {
  /** Interrupt request register, in-service register, interrupt mask register. */
  #irr = 0;
  #isr = 0;
  #imr = 0;
  #elcr = 0;
  /** Current input line levels, for edge detection and to re-sample level inputs. */
  #lines = 0;
  #vectorBase = 0;
  /** Rotating priority: the IRQ that currently has the highest priority. */
  #priorityAdd = 0;
  /** 0 = ready for OCWs; 1..3 = expecting ICW2..ICW4. */
  #initStep = 0;
  #needIcw4 = false;
  #singleMode = false;
  #autoEoi = false;
  #rotateOnAutoEoi = false;
  #readIsr = false;
  #pollPending = false;
  #specialMask = false;
  /** The ELCR bits that exist on this chip. */
  #elcrMask: number;
  /** ICW1-ICW4 have been written since power-on; before that the chip requests nothing. */
  #initialized: boolean;

  constructor(elcrMask: number, initialized: boolean) {
    this.#elcrMask = elcrMask;
    this.#initialized = initialized;
  }

  /** Edge/level control: bit set = level-triggered input. */
  get elcr(): number {
    return this.#elcr;
  }

  /** ICW2's vector for IRQ0 of this chip. */
  get vectorBase(): number {
    return this.#vectorBase;
  }

  setInput(irq: number, level: boolean): void {
    const mask = 1 << irq;
    if (this.#elcr & mask) {
      // Level-triggered: IRR simply follows the line.
      if (level) {
        this.#irr |= mask;
        this.#lines |= mask;
      } else {
        this.#irr &= ~mask;
        this.#lines &= ~mask;
      }
    } else if (level) {
      if ((this.#lines & mask) === 0) this.#irr |= mask; // rising edge
      this.#lines |= mask;
    } else {
      // An edge request stays latched in IRR after the line drops (unlike real silicon, which
      // would then deliver a spurious IRQ7; Linux copes either way and latching loses nothing).
      this.#lines &= ~mask;
    }
  }

  /** Position (0..7, 8 = none) of the highest-priority bit in `mask` under the current rotation. */
  priorityOf(mask: number): number {
    if (mask === 0) return 8;
    let priority = 0;
    while ((mask & (1 << ((priority + this.#priorityAdd) & 7))) === 0) priority++;
    return priority;
  }

  /** The IRQ this chip would deliver now, or -1. */
  pendingIrq(): number {
    if (!this.#initialized) return -1;
    const priority = this.priorityOf(this.#irr & ~this.#imr);
    if (priority === 8) return -1;
    let inService = this.#isr;
    if (this.#specialMask) inService &= ~this.#imr;
    // Special fully nested mode would also ignore the cascade's ISR bit here; Linux never sets it.
    return priority < this.priorityOf(inService) ? (priority + this.#priorityAdd) & 7 : -1;
  }

  /** The INTA cycle for `irq`: move it from IRR to ISR (or rotate, under auto-EOI). */
  intack(irq: number): void {
    const mask = 1 << irq;
    if (this.#autoEoi) {
      if (this.#rotateOnAutoEoi) this.#priorityAdd = (irq + 1) & 7;
    } else {
      this.#isr |= mask;
    }
    // A level-triggered request stays in IRR while its line is high.
    if ((this.#elcr & mask) === 0) this.#irr &= ~mask;
  }

  /** Poll mode (OCW3 P bit): the read that follows acknowledges like an INTA cycle. */
  pollRead(): number {
    const irq = this.pendingIrq();
    if (irq < 0) return 0;
    this.intack(irq);
    return 0x80 | irq;
  }

  writeCommand(value: number): void {
    if (value & 0x10) {
      // ICW1. Initialisation clears the masks and the in-service state; a level input that is
      // still high is requested again.
      this.#initStep = 1;
      this.#needIcw4 = (value & 0x01) !== 0;
      this.#singleMode = (value & 0x02) !== 0;
      this.#irr = this.#lines & this.#elcr;
      this.#isr = 0;
      this.#imr = 0;
      this.#priorityAdd = 0;
      this.#vectorBase = 0;
      this.#readIsr = false;
      this.#pollPending = false;
      this.#specialMask = false;
      this.#autoEoi = false;
      this.#rotateOnAutoEoi = false;
      return;
    }
    if (value & 0x08) {
      // OCW3.
      if (value & 0x04) this.#pollPending = true;
      if (value & 0x02) this.#readIsr = (value & 0x01) !== 0;
      if (value & 0x40) this.#specialMask = (value & 0x20) !== 0;
      return;
    }
    // OCW2: R, SL, EOI in bits 7-5, the level in bits 2-0.
    const level = value & 7;
    switch (value >> 5) {
      case 0: // rotate in auto-EOI mode: clear
      case 4: // ... set
        this.#rotateOnAutoEoi = (value & 0x80) !== 0;
        break;
      case 1: // non-specific EOI
      case 5: { // rotate on non-specific EOI
        const priority = this.priorityOf(this.#isr);
        if (priority !== 8) {
          const irq = (priority + this.#priorityAdd) & 7;
          this.#isr &= ~(1 << irq);
          if (value & 0x80) this.#priorityAdd = (irq + 1) & 7;
        }
        break;
      }
      case 3: // specific EOI
        this.#isr &= ~(1 << level);
        break;
      case 6: // set priority: `level` becomes the lowest
        this.#priorityAdd = (level + 1) & 7;
        break;
      case 7: // rotate on specific EOI
        this.#isr &= ~(1 << level);
        this.#priorityAdd = (level + 1) & 7;
        break;
      default: // 2: no operation
        break;
    }
  }

  writeData(value: number): void {
    switch (this.#initStep) {
      case 0: // OCW1
        this.#imr = value;
        break;
      case 1: // ICW2: the vector base (low three bits come from the IRQ number)
        this.#vectorBase = value & 0xF8;
        this.#initStep = this.#singleMode ? (this.#needIcw4 ? 3 : 0) : 2;
        break;
      case 2: // ICW3: cascade wiring, fixed on a PC
        this.#initStep = this.#needIcw4 ? 3 : 0;
        break;
      default: // ICW4: bit 1 AEOI; bit 4 SFNM (ignored); bits 2-3 buffered mode (meaningless)
        this.#autoEoi = (value & 0x02) !== 0;
        this.#initStep = 0;
        break;
    }
    if (this.#initStep === 0) this.#initialized = true;
  }

  read(offset: number): number {
    if (this.#pollPending) {
      this.#pollPending = false;
      return this.pollRead();
    }
    if (offset === 1) return this.#imr;
    return this.#readIsr ? this.#isr : this.#irr;
  }

  /** The request for input `irq` is latched in IRR. */
  requested(irq: number): boolean {
    return (this.#irr & (1 << irq)) !== 0;
  }

  /** IRR/ISR/IMR and the input lines, for the state dump. */
  describe(): string {
    const h = (v: number) => v.toString(16).padStart(2, "0");
    return `irr=${h(this.#irr)} isr=${h(this.#isr)} imr=${h(this.#imr)} lines=${h(this.#lines)} elcr=${
      h(this.#elcr)
    }`;
  }

  writeElcr(value: number): void {
    this.#elcr = value & this.#elcrMask;
    // Inputs that just became level-triggered request exactly while their line is high.
    this.#irr = (this.#irr & ~this.#elcr) | (this.#lines & this.#elcr);
  }
}

/**
 * The master (ports 0x20/0x21, IRQ0-7) and slave (0xA0/0xA1, IRQ8-15, on the master's IRQ2) pair,
 * as one `IrqSink` for the devices and one `InterruptSource` for the CPU.
 */
export class Pic8259Pair implements IrqSink, InterruptSource {
  /** Called when `hasInterrupt()` may have just become true (the machine ends the CPU's slice). */
  onChange: () => void = () => {};
  #master: Pic8259;
  #slave: Pic8259;
  /** The master's INT pin, cached for the CPU's between-slices check. */
  #output = false;
  /** Interrupts passed to the CPU per IRQ line (16 and 17: spurious IRQ7 and IRQ15), for the state dump. */
  readonly #taken = new Float64Array(18);

  /**
   * `powerOn`: the chips are as at power-on, uninitialized until firmware writes ICW1-ICW4 (they
   * request nothing before); otherwise as a loader leaves them for a kernel, ready for OCWs.
   */
  constructor(options: { powerOn?: boolean } = {}) {
    const ready = options.powerOn !== true;
    this.#master = new Pic8259(ELCR_MASK_MASTER, ready);
    this.#slave = new Pic8259(ELCR_MASK_SLAVE, ready);
  }

  /** Claims 0x20-0x21, 0xA0-0xA1 and the ELCR at 0x4D0-0x4D1 (byte ports; wider reads see 0xFF beyond). */
  register(ports: PortBus): void {
    ports.register(0x20, 2, "pic-master", {
      read: (offset, size) => this.#read(this.#master, offset, size),
      write: (offset, _size, value) => this.#write(this.#master, offset, value),
    });
    ports.register(0xA0, 2, "pic-slave", {
      read: (offset, size) => this.#read(this.#slave, offset, size),
      write: (offset, _size, value) => this.#write(this.#slave, offset, value),
    });
    ports.register(0x4D0, 2, "pic-elcr", {
      read: (offset, size) => {
        const value = offset === 0 ? this.#master.elcr | (this.#slave.elcr << 8) : this.#slave.elcr | 0xFF00;
        return size === 1 ? value & 0xFF : size === 2 ? value : (value | 0xFFFF_0000) >>> 0;
      },
      write: (offset, size, value) => {
        if (offset === 0) this.#master.writeElcr(value & 0xFF);
        if (offset === 1) this.#slave.writeElcr(value & 0xFF);
        else if (size > 1) this.#slave.writeElcr((value >> 8) & 0xFF);
        this.#update();
      },
    });
  }

  /**
   * Drives ISA IRQ line 0..15. IRQ2 does not exist on the ISA bus (it is the cascade); as on a
   * PC/AT, a device wired to "IRQ2" actually raises IRQ9.
   */
  setIrq(line: number, level: boolean): void {
    if (line === CASCADE_IRQ) line = 9;
    if (line < 8) this.#master.setInput(line, level);
    else this.#slave.setInput(line & 7, level);
    this.#update();
  }

  /** Both chips' registers, for the machine-state dump. */
  describe(): string {
    const taken = [...this.#taken].map((n, i) =>
      n === 0 ? "" : `${i < 16 ? `irq${i}` : i === 16 ? "spurious7" : "spurious15"}=${n}`
    )
      .filter((s) => s !== "").join(" ");
    return `pic master ${this.#master.describe()}; slave ${this.#slave.describe()}; int=${this.#output}\n` +
      `interrupts taken: ${taken || "none"}`;
  }

  requestPending(line: number): boolean {
    if (line === CASCADE_IRQ) line = 9;
    return line < 8 ? this.#master.requested(line) : this.#slave.requested(line & 7);
  }

  hasInterrupt(): boolean {
    return this.#output;
  }

  /**
   * The INTA cycle. With nothing deliverable (the request went away, or was masked, since the CPU
   * saw INT) the 8259 answers with its IRQ7 vector without setting ISR: the spurious IRQ7 (or
   * IRQ15 from the slave, with the master's cascade bit in service) that Linux knows to expect.
   */
  acknowledge(): number {
    const master = this.#master;
    const irq = master.pendingIrq();
    let vector: number;
    if (irq < 0) {
      vector = master.vectorBase + 7;
      this.#taken[16]++;
    } else {
      master.intack(irq);
      if (irq === CASCADE_IRQ) {
        const slave = this.#slave;
        const slaveIrq = slave.pendingIrq();
        if (slaveIrq >= 0) slave.intack(slaveIrq);
        vector = slave.vectorBase + (slaveIrq >= 0 ? slaveIrq : 7);
        this.#taken[slaveIrq >= 0 ? 8 + slaveIrq : 17]++;
      } else {
        vector = master.vectorBase + irq;
        this.#taken[irq]++;
      }
    }
    this.#update();
    return vector;
  }

  #read(chip: Pic8259, offset: number, size: number): number {
    let value = chip.read(offset);
    if (size > 1) value |= (offset === 0 ? chip.read(1) : 0xFF) << 8;
    this.#update(); // a poll read acknowledges like INTA
    return size === 4 ? (value | 0xFFFF_0000) >>> 0 : value;
  }

  #write(chip: Pic8259, offset: number, value: number): void {
    if (offset === 0) chip.writeCommand(value & 0xFF);
    else chip.writeData(value & 0xFF);
    this.#update();
  }

  /**
   * Feeds the slave's INT into the master's IRQ2 (an edge input, so a slave request that vanishes
   * before INTA becomes the slave's spurious IRQ15) and recomputes the master's INT.
   */
  #update(): void {
    const master = this.#master;
    master.setInput(CASCADE_IRQ, this.#slave.pendingIrq() >= 0);
    const output = master.pendingIrq() >= 0;
    const rose = output && !this.#output;
    this.#output = output;
    if (rose) this.onChange();
  }
}
