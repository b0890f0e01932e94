/**
 * The 8042 keyboard controller at 0x60/0x64 (IBM PC/AT technical reference; the commands Linux's
 * i8042 driver sends), with a keyboard that answers the atkbd probe but never types and an empty
 * AUX port whose loopback works, so Linux finds both quickly; 0xFE pulses the reset line. Left
 * out: scancodes, the A20 gate, a mouse, and disabled ports holding bytes back.
 */
import type { PortBus } from "../machine/bus.ts";
import type { IrqSink } from "../machine/irq.ts";

const I8042_STR_OBF = 0x01;
const I8042_STR_SYSFLAG = 0x04;
const I8042_STR_CMDDAT = 0x08;
const I8042_STR_KEYLOCK = 0x10; // set = not locked
const I8042_STR_AUXDATA = 0x20;
const I8042_STR_TIMEOUT = 0x40;

const I8042_CTR_KBDINT = 0x01;
const I8042_CTR_AUXINT = 0x02;
const I8042_CTR_SYSFLAG = 0x04;
const I8042_CTR_KBDDIS = 0x10;
const I8042_CTR_AUXDIS = 0x20;
const I8042_CTR_XLATE = 0x40;

/** Where a byte in the output buffer came from. */
const FROM_CONTROLLER = 0;
const FROM_KEYBOARD = 1;
const FROM_AUX = 2;
/** ...or the AUX port with its timeout bit: the answer to a byte sent to a missing mouse. */
const FROM_AUX_TIMEOUT = 3;

const KBD_IRQ = 1;
const AUX_IRQ = 12;
const QUEUE_SIZE = 16;

/** Keyboard replies. */
const KBD_REPLY_ACK = 0xFA;
const KBD_REPLY_POR = 0xAA;
const KBD_REPLY_RESEND = 0xFE;

export class I8042 {
  #irq: IrqSink;
  #onReset: () => void;
  /** Controller command byte ("CTR"), as a BIOS leaves it: translated, both ports' IRQs on. */
  #ctr = I8042_CTR_XLATE | I8042_CTR_SYSFLAG | I8042_CTR_AUXINT | I8042_CTR_KBDINT;
  /** Status bits other than OBF/AUXDATA/TIMEOUT (which follow the output buffer). */
  #status = I8042_STR_KEYLOCK | I8042_STR_SYSFLAG;
  /** The controller command awaiting its data byte on port 0x60, or 0. */
  #pendingCommand = 0;
  /** The keyboard command awaiting its parameter byte, or 0. */
  #pendingKeyboardCommand = 0;
  #outputPort = 0x03; // reset line inactive, A20 enabled

  /** Bytes waiting behind the output buffer, as `byte | source << 8` in a ring. */
  #queue = new Uint16Array(QUEUE_SIZE);
  #queueHead = 0;
  #queueCount = 0;
  #outputFull = false;
  #output = 0;
  #outputSource = FROM_CONTROLLER;
  #kbdIrqLevel = false;
  #auxIrqLevel = false;

  /** `onReset` is called when the guest pulses the CPU reset line (command 0xFE, Linux's reboot). */
  constructor(irq: IrqSink, onReset: () => void) {
    this.#irq = irq;
    this.#onReset = onReset;
  }

  /** Claims ports 0x60 (data) and 0x64 (status/command); 0x61 belongs to SystemControlPort. */
  register(ports: PortBus): void {
    ports.register(0x60, 1, "i8042-data", {
      read: (_offset, size) => this.#widen(this.#readData(), size),
      write: (_offset, _size, value) => this.#writeData(value & 0xFF),
    });
    ports.register(0x64, 1, "i8042-command", {
      read: (_offset, size) => this.#widen(this.#readStatus(), size),
      write: (_offset, _size, value) => this.#writeCommand(value & 0xFF),
    });
  }

  #widen(value: number, size: number): number {
    return size === 1 ? value : size === 2 ? value | 0xFF00 : (value | 0xFFFF_FF00) >>> 0;
  }

  #readStatus(): number {
    let status = this.#status;
    if (this.#outputFull) {
      status |= I8042_STR_OBF;
      if (this.#outputSource >= FROM_AUX) status |= I8042_STR_AUXDATA;
      if (this.#outputSource === FROM_AUX_TIMEOUT) status |= I8042_STR_TIMEOUT;
    }
    // IBF (bit 1) is never set: every write is digested at once.
    return status;
  }

  #readData(): number {
    const value = this.#output; // an empty buffer reads its last byte again
    if (this.#outputFull) {
      // The line drops before the next byte moves in, so each byte is a fresh edge at the 8259.
      this.#outputFull = false;
      this.#updateLines();
      this.#pump();
    }
    return value;
  }

  #writeCommand(command: number): void {
    this.#status |= I8042_STR_CMDDAT;
    this.#pendingCommand = 0;
    switch (command) {
      case 0x20: // read CTR
        this.#queueByte(this.#ctr, FROM_CONTROLLER);
        break;
      case 0x60: // write CTR
      case 0xD1: // write output port
      case 0xD2: // write keyboard output buffer
      case 0xD3: // write AUX output buffer (loopback)
      case 0xD4: // write to the AUX device
        this.#pendingCommand = command;
        break;
      case 0xA7: // disable AUX port
        this.#setCtr(this.#ctr | I8042_CTR_AUXDIS);
        break;
      case 0xA8: // enable AUX port
        this.#setCtr(this.#ctr & ~I8042_CTR_AUXDIS);
        break;
      case 0xA9: // AUX interface test: 0 = no error
      case 0xAB: // keyboard interface test
        this.#queueByte(0x00, FROM_CONTROLLER);
        break;
      case 0xAA: // controller self-test
        this.#status |= I8042_STR_SYSFLAG;
        this.#queueByte(0x55, FROM_CONTROLLER);
        break;
      case 0xAD: // disable keyboard
        this.#setCtr(this.#ctr | I8042_CTR_KBDDIS);
        break;
      case 0xAE: // enable keyboard
        this.#setCtr(this.#ctr & ~I8042_CTR_KBDDIS);
        break;
      case 0xC0: // read input port: keyboard not inhibited, colour display
        this.#queueByte(0xBF, FROM_CONTROLLER);
        break;
      case 0xD0: // read output port
        this.#queueByte(this.#outputPort, FROM_CONTROLLER);
        break;
      default:
        // 0xF0-0xFF pulse output port bits 0-3 low for 6 us; bit 0 is the CPU reset line.
        if (command >= 0xF0 && (command & 1) === 0) this.#onReset();
    }
  }

  #writeData(value: number): void {
    this.#status &= ~I8042_STR_CMDDAT;
    const command = this.#pendingCommand;
    this.#pendingCommand = 0;
    switch (command) {
      case 0x60:
        this.#setCtr(value);
        break;
      case 0xD1:
        this.#outputPort = value;
        if ((value & 1) === 0) this.#onReset();
        break;
      case 0xD2:
        this.#queueByte(value, FROM_KEYBOARD);
        break;
      case 0xD3:
        this.#queueByte(value, FROM_AUX);
        break;
      case 0xD4:
        // No mouse: the controller times out waiting for it and says so.
        this.#queueByte(KBD_REPLY_RESEND, FROM_AUX_TIMEOUT);
        break;
      default:
        this.#keyboardCommand(value);
    }
  }

  /** A byte written to port 0x60 with no command pending goes to the keyboard. */
  #keyboardCommand(value: number): void {
    const pending = this.#pendingKeyboardCommand;
    if (pending !== 0) {
      this.#pendingKeyboardCommand = 0;
      this.#queueByte(KBD_REPLY_ACK, FROM_KEYBOARD);
      if (pending === 0xF0 && value === 0) this.#queueByte(0x02, FROM_KEYBOARD); // current set: 2
      return;
    }
    switch (value) {
      case 0xED: // set LEDs
      case 0xF0: // get/set scancode set
      case 0xF3: // set typematic rate
        this.#pendingKeyboardCommand = value;
        this.#queueByte(KBD_REPLY_ACK, FROM_KEYBOARD);
        break;
      case 0xEE: // echo
        this.#queueByte(0xEE, FROM_KEYBOARD);
        break;
      case 0xF2: // get ID: an MF2 keyboard (0x83 reads as 0x41 through translation)
        this.#queueByte(KBD_REPLY_ACK, FROM_KEYBOARD);
        this.#queueByte(0xAB, FROM_KEYBOARD);
        this.#queueByte(this.#ctr & I8042_CTR_XLATE ? 0x41 : 0x83, FROM_KEYBOARD);
        break;
      case 0xFF: // reset and self-test
        this.#queueByte(KBD_REPLY_ACK, FROM_KEYBOARD);
        this.#queueByte(KBD_REPLY_POR, FROM_KEYBOARD);
        break;
      default: // enable, disable, set defaults, ...: all simply acknowledged
        this.#queueByte(KBD_REPLY_ACK, FROM_KEYBOARD);
    }
  }

  #setCtr(value: number): void {
    this.#ctr = value;
    if (value & I8042_CTR_SYSFLAG) this.#status |= I8042_STR_SYSFLAG;
    else this.#status &= ~I8042_STR_SYSFLAG;
    this.#pump();
  }

  #queueByte(byte: number, source: number): void {
    if (this.#queueCount === QUEUE_SIZE) return; // a real controller would lose it too
    this.#queue[(this.#queueHead + this.#queueCount) & (QUEUE_SIZE - 1)] = byte | (source << 8);
    this.#queueCount++;
    this.#pump();
  }

  /** Moves the next queued byte into the output buffer if it is empty. */
  #pump(): void {
    if (!this.#outputFull && this.#queueCount > 0) {
      const entry = this.#queue[this.#queueHead];
      this.#queueHead = (this.#queueHead + 1) & (QUEUE_SIZE - 1);
      this.#queueCount--;
      this.#output = entry & 0xFF;
      this.#outputSource = entry >> 8;
      this.#outputFull = true;
    }
    this.#updateLines();
  }

  /** IRQ1/IRQ12 follow a full output buffer from their port, gated by the CTR's enables. */
  #updateLines(): void {
    const aux = this.#outputSource >= FROM_AUX;
    const kbdLevel = this.#outputFull && !aux && (this.#ctr & I8042_CTR_KBDINT) !== 0;
    const auxLevel = this.#outputFull && aux && (this.#ctr & I8042_CTR_AUXINT) !== 0;
    if (kbdLevel !== this.#kbdIrqLevel) this.#setLine(KBD_IRQ, kbdLevel);
    if (auxLevel !== this.#auxIrqLevel) this.#setLine(AUX_IRQ, auxLevel);
  }

  #setLine(line: number, level: boolean): void {
    if (line === KBD_IRQ) this.#kbdIrqLevel = level;
    else this.#auxIrqLevel = level;
    this.#irq.setIrq(line, level);
  }
}
