/**
 * A 16550A UART (PC16550D datasheet: registers, FIFOs, interrupt priorities, loopback), COM1 by
 * default. The line is infinitely fast: THR bytes leave at once, batched to the Backend; input
 * waits in a host-side queue and refills the RX FIFO as the guest drains it, so nothing overruns.
 * Left out: line errors, break, DMA, the 4-character timeout delay (reported at once), 16750 mode.
 */
import type { PortBus } from "../machine/bus.ts";
import type { IrqSink } from "../machine/irq.ts";
import { warn } from "../support/log.ts";

/** Where the UART's transmitted bytes go (a terminal, a file, a socket). */
export interface SerialBackend {
  /** Takes transmitted bytes. The array is only valid during the call: copy what you keep. */
  write(bytes: Uint8Array): void;
}

export interface Uart16550Options {
  /** First of the 8 I/O ports. Default 0x3F8 (COM1). */
  base?: number;
  /** Default 4 (COM1). */
  irqLine?: number;
  /** Port-bus registration name. Default "uart-16550@<base in hex>". */
  name?: string;
}

const UART_IER_RDI = 0x01;
const UART_IER_THRI = 0x02;
const UART_IER_RLSI = 0x04;
const UART_IER_MSI = 0x08;

const UART_IIR_NO_INT = 0x01;
const UART_IIR_MSI = 0x00;
const UART_IIR_THRI = 0x02;
const UART_IIR_RDI = 0x04;
const UART_IIR_RLSI = 0x06;
const UART_IIR_RX_TIMEOUT = 0x0C;
const UART_IIR_FIFO_ENABLED = 0xC0;

const UART_FCR_ENABLE_FIFO = 0x01;
const UART_FCR_CLEAR_RCVR = 0x02;

const UART_LCR_DLAB = 0x80;

const UART_MCR_DTR = 0x01;
const UART_MCR_RTS = 0x02;
const UART_MCR_OUT1 = 0x04;
const UART_MCR_OUT2 = 0x08;
const UART_MCR_LOOP = 0x10;

const UART_LSR_DR = 0x01;
const UART_LSR_OE = 0x02;
const UART_LSR_THRE = 0x20;
const UART_LSR_TEMT = 0x40;

const UART_MSR_DCTS = 0x01;
const UART_MSR_DDSR = 0x02;
const UART_MSR_TERI = 0x04;
const UART_MSR_DDCD = 0x08;
const UART_MSR_CTS = 0x10;
const UART_MSR_DSR = 0x20;
const UART_MSR_RI = 0x40;
const UART_MSR_DCD = 0x80;

const FIFO_SIZE = 16;
/** RX trigger levels selected by FCR bits 7-6. */
const RX_TRIGGER = [1, 4, 8, 14];
/** Output is handed to the backend in chunks of at most this, and at the end of each task. */
const TX_BATCH_BYTES = 4096;
/** Input the guest has not read yet beyond this is dropped (with one warning). */
const RX_QUEUE_MAX_BYTES = 1 << 20;

export class Uart16550 {
  /** First I/O port. */
  readonly base: number;
  readonly irqLine: number;
  readonly name: string;
  #irq: IrqSink;
  #backend: SerialBackend;

  #ier = 0;
  #lcr = 0;
  #mcr = 0;
  #scr = 0;
  #divisor = 12; // 9600 baud, as a BIOS leaves it
  #fifoEnabled = false;
  #rxTrigger = 1;
  /** Receiver line status errors (OE) waiting to be read from LSR. */
  #lsrErrors = 0;
  /** MSR status (bits 7-4) and delta (bits 3-0) bits. */
  #msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
  /** THRE interrupt pending: set when THR empties, cleared by reading IIR or writing THR. */
  #thrPending = true;
  #irqLevel = false;

  /** RX FIFO (a ring), and the host-side queue behind it (a growable ring). */
  #rxFifo = new Uint8Array(FIFO_SIZE);
  #rxHead = 0;
  #rxCount = 0;
  #rxQueue = new Uint8Array(4096);
  #rxQueueHead = 0;
  #rxQueueCount = 0;
  #rxQueueWarned = false;

  #txBuffer = new Uint8Array(TX_BATCH_BYTES);
  #txCount = 0;
  #flushScheduled = false;
  #flushTask = () => {
    this.#flushScheduled = false;
    this.flush();
  };

  constructor(irq: IrqSink, backend: SerialBackend, options: Uart16550Options = {}) {
    this.base = options.base ?? 0x3F8;
    this.irqLine = options.irqLine ?? 4;
    this.name = options.name ?? `uart-16550@${this.base.toString(16)}`;
    this.#irq = irq;
    this.#backend = backend;
  }

  /** Claims the 8 ports at `base`. */
  register(ports: PortBus): void {
    ports.register(this.base, 8, this.name, {
      read: (offset, size) => {
        const value = this.#read(offset);
        return size === 1 ? value : size === 2 ? value | 0xFF00 : (value | 0xFFFF_FF00) >>> 0;
      },
      write: (offset, _size, value) => this.#write(offset, value & 0xFF),
    });
  }

  /** Queues bytes from the host (keyboard, socket) for the guest to read. */
  receive(bytes: Uint8Array): void {
    let length = bytes.length;
    const room = RX_QUEUE_MAX_BYTES - this.#rxQueueCount;
    if (length > room) {
      if (!this.#rxQueueWarned) warn(`${this.name}: guest is not reading its serial input; dropping input`);
      this.#rxQueueWarned = true;
      length = room;
    }
    if (this.#rxQueueCount + length > this.#rxQueue.length) this.#growQueue(this.#rxQueueCount + length);
    const queue = this.#rxQueue;
    const mask = queue.length - 1;
    let tail = (this.#rxQueueHead + this.#rxQueueCount) & mask;
    for (let i = 0; i < length; i++) {
      queue[tail] = bytes[i];
      tail = (tail + 1) & mask;
    }
    this.#rxQueueCount += length;
    this.#refillFifo();
    this.#updateIrq();
  }

  /** Hands batched output to the backend now (it also happens at the end of each task). */
  flush(): void {
    if (this.#txCount === 0) return;
    const count = this.#txCount;
    this.#txCount = 0;
    this.#backend.write(this.#txBuffer.subarray(0, count));
  }

  /** Registers and queue depths, for the machine-state dump. */
  describe(): string {
    const h = (v: number) => v.toString(16).padStart(2, "0");
    return `${this.name} ier=${h(this.#ier)} iir=${h(this.#iir())} mcr=${h(this.#mcr)} lcr=${h(this.#lcr)} ` +
      `rx-fifo=${this.#rxCount} rx-queue=${this.#rxQueueCount} thre-pending=${this.#thrPending} irq=${this.#irqLevel}`;
  }

  #read(offset: number): number {
    switch (offset) {
      case 0:
        if (this.#lcr & UART_LCR_DLAB) return this.#divisor & 0xFF;
        return this.#readRbr();
      case 1:
        if (this.#lcr & UART_LCR_DLAB) return this.#divisor >> 8;
        return this.#ier;
      case 2: {
        const iir = this.#iir();
        // Reporting THRE is what acknowledges it.
        if ((iir & 0x0F) === UART_IIR_THRI) {
          this.#thrPending = false;
          this.#updateIrq();
        }
        return iir;
      }
      case 3:
        return this.#lcr;
      case 4:
        return this.#mcr;
      case 5: {
        const lsr = (this.#rxCount > 0 ? UART_LSR_DR : 0) | this.#lsrErrors | UART_LSR_THRE | UART_LSR_TEMT;
        if (this.#lsrErrors !== 0) {
          this.#lsrErrors = 0;
          this.#updateIrq();
        }
        return lsr;
      }
      case 6: {
        const msr = this.#msr;
        if (msr & 0x0F) {
          this.#msr &= 0xF0;
          this.#updateIrq();
        }
        return msr;
      }
      default:
        return this.#scr;
    }
  }

  #write(offset: number, value: number): void {
    switch (offset) {
      case 0:
        if (this.#lcr & UART_LCR_DLAB) this.#divisor = (this.#divisor & 0xFF00) | value;
        else this.#transmit(value);
        break;
      case 1: {
        if (this.#lcr & UART_LCR_DLAB) {
          this.#divisor = (this.#divisor & 0xFF) | (value << 8);
          break;
        }
        const changed = (this.#ier ^ value) & 0x0F;
        this.#ier = value & 0x0F;
        // Enabling THRI while THR is empty raises THRE again: Linux's UART_BUG_THRE probe checks
        // for exactly this, and Windows relies on it (QEMU's note).
        if (changed & UART_IER_THRI) this.#thrPending = (value & UART_IER_THRI) !== 0;
        this.#updateIrq();
        break;
      }
      case 2:
        this.#writeFcr(value);
        break;
      case 3:
        this.#lcr = value;
        break;
      case 4:
        this.#writeMcr(value & 0x1F);
        break;
      case 5:
      case 6:
        break; // LSR and MSR are read-only (factory test registers on real parts)
      default:
        this.#scr = value;
    }
  }

  #readRbr(): number {
    if (this.#rxCount === 0) return 0;
    const byte = this.#rxFifo[this.#rxHead];
    this.#rxHead = (this.#rxHead + 1) & (FIFO_SIZE - 1);
    this.#rxCount--;
    this.#refillFifo();
    this.#updateIrq();
    return byte;
  }

  #transmit(byte: number): void {
    if (this.#mcr & UART_MCR_LOOP) {
      // Loopback: the transmitter feeds the receiver and nothing reaches the line.
      if (this.#rxCount < this.#rxCapacity()) this.#pushFifo(byte);
      else this.#lsrErrors |= UART_LSR_OE;
    } else {
      this.#txBuffer[this.#txCount++] = byte;
      if (this.#txCount === TX_BATCH_BYTES) {
        this.flush();
      } else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(this.#flushTask);
      }
    }
    // The byte left at once: THR is empty again and THRE is (re)raised.
    this.#thrPending = true;
    this.#updateIrq();
  }

  #writeFcr(value: number): void {
    const enable = (value & UART_FCR_ENABLE_FIFO) !== 0;
    // Changing the FIFO enable resets both FIFOs; the TX FIFO is always empty here.
    if (enable !== this.#fifoEnabled || (value & UART_FCR_CLEAR_RCVR) !== 0) this.#rxCount = 0;
    this.#fifoEnabled = enable;
    this.#rxTrigger = enable ? RX_TRIGGER[value >> 6] : 1;
    this.#refillFifo();
    this.#updateIrq();
  }

  #writeMcr(value: number): void {
    const wasLoop = (this.#mcr & UART_MCR_LOOP) !== 0;
    this.#mcr = value;
    let status: number;
    if (value & UART_MCR_LOOP) {
      // Loopback wires the modem outputs to the inputs: RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD.
      // Linux's autoconfig writes LOOP|OUT2|RTS and expects to read DCD|CTS.
      status = ((value & UART_MCR_RTS) ? UART_MSR_CTS : 0) | ((value & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
        ((value & UART_MCR_OUT1) ? UART_MSR_RI : 0) | ((value & UART_MCR_OUT2) ? UART_MSR_DCD : 0);
    } else {
      status = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS; // a terminal is always connected
    }
    const old = this.#msr;
    const changed = old ^ status;
    let delta = old & 0x0F;
    if (changed & UART_MSR_CTS) delta |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR) delta |= UART_MSR_DDSR;
    if ((old & UART_MSR_RI) && !(status & UART_MSR_RI)) delta |= UART_MSR_TERI;
    if (changed & UART_MSR_DCD) delta |= UART_MSR_DDCD;
    this.#msr = status | delta;
    if (wasLoop && !(value & UART_MCR_LOOP)) this.#refillFifo();
    this.#updateIrq();
  }

  #rxCapacity(): number {
    return this.#fifoEnabled ? FIFO_SIZE : 1;
  }

  #pushFifo(byte: number): void {
    this.#rxFifo[(this.#rxHead + this.#rxCount) & (FIFO_SIZE - 1)] = byte;
    this.#rxCount++;
  }

  /** Moves queued host input into the RX FIFO while it has room (not in loopback: the line is cut). */
  #refillFifo(): void {
    if (this.#mcr & UART_MCR_LOOP) return;
    const capacity = this.#rxCapacity();
    const queue = this.#rxQueue;
    const mask = queue.length - 1;
    while (this.#rxCount < capacity && this.#rxQueueCount > 0) {
      this.#pushFifo(queue[this.#rxQueueHead]);
      this.#rxQueueHead = (this.#rxQueueHead + 1) & mask;
      this.#rxQueueCount--;
    }
  }

  #growQueue(needed: number): void {
    let size = this.#rxQueue.length;
    while (size < needed) size *= 2;
    const old = this.#rxQueue;
    const grown = new Uint8Array(size);
    for (let i = 0; i < this.#rxQueueCount; i++) grown[i] = old[(this.#rxQueueHead + i) & (old.length - 1)];
    this.#rxQueue = grown;
    this.#rxQueueHead = 0;
  }

  /** The interrupt identification, highest priority first (datasheet table 4). */
  #iir(): number {
    const fifoBits = this.#fifoEnabled ? UART_IIR_FIFO_ENABLED : 0;
    const ier = this.#ier;
    if ((ier & UART_IER_RLSI) && this.#lsrErrors !== 0) return fifoBits | UART_IIR_RLSI;
    if ((ier & UART_IER_RDI) && this.#rxCount > 0) {
      return fifoBits | (this.#rxCount >= this.#rxTrigger ? UART_IIR_RDI : UART_IIR_RX_TIMEOUT);
    }
    if ((ier & UART_IER_THRI) && this.#thrPending) return fifoBits | UART_IIR_THRI;
    if ((ier & UART_IER_MSI) && (this.#msr & 0x0F)) return fifoBits | UART_IIR_MSI;
    return fifoBits | UART_IIR_NO_INT;
  }

  /**
   * Drives the IRQ line. On a PC the UART's interrupt reaches the bus only through a buffer enabled
   * by MCR OUT2, and loopback disconnects it; Linux sets OUT2 when it opens the port.
   */
  #updateIrq(): void {
    const connected = (this.#mcr & (UART_MCR_OUT2 | UART_MCR_LOOP)) === UART_MCR_OUT2;
    const level = connected && (this.#iir() & UART_IIR_NO_INT) === 0;
    if (level === this.#irqLevel) return;
    this.#irqLevel = level;
    this.#irq.setIrq(this.irqLine, level);
  }
}
