/** The 16550A as Linux's 8250 driver (drivers/tty/serial/8250/8250_port.c) probes and drives it. */
import { assert, assertEquals } from "../assert.ts";
import { PortBus } from "../../lib/machine/bus.ts";
import { Uart16550 } from "../../lib/pc/uart_16550.ts";
import { FakeIrqSink } from "./fake_irq_sink.ts";

const BASE = 0x3F8;
const UART_RX = 0, UART_TX = 0, UART_IER = 1, UART_IIR = 2, UART_FCR = 2, UART_EFR = 2, UART_LCR = 3;
const UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7;

class RecordingBackend {
  chunks: Uint8Array[] = [];
  write(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
  }
  text(): string {
    return this.chunks.map((c) => new TextDecoder().decode(c)).join("");
  }
}

function setup() {
  const irq = new FakeIrqSink();
  const backend = new RecordingBackend();
  const ports = new PortBus();
  const uart = new Uart16550(irq, backend);
  uart.register(ports);
  const inb = (reg: number) => ports.read(BASE + reg, 1);
  const outb = (reg: number, value: number) => ports.write(BASE + reg, 1, value);
  return { irq, backend, uart, inb, outb };
}

/** autoconfig() and autoconfig_16550a() with the 16550A variant probes, reduced to the port traffic. */
function linuxAutoconfig(inb: (reg: number) => number, outb: (reg: number, value: number) => void): string {
  const scratch = inb(UART_IER);
  outb(UART_IER, 0);
  const scratch2 = inb(UART_IER) & 0x0F;
  outb(UART_IER, 0x0F);
  const scratch3 = inb(UART_IER) & 0x0F;
  outb(UART_IER, scratch);
  if (scratch2 !== 0 || scratch3 !== 0x0F) return "no UART (IER test)";

  const saveMcr = inb(UART_MCR);
  const saveLcr = inb(UART_LCR);
  outb(UART_MCR, 0x10 | 0x0A); // UART_MCR_LOOP | 0x0A
  const status1 = inb(UART_MSR) & 0xF0;
  outb(UART_MCR, saveMcr);
  if (status1 !== 0x90) return "no UART (loopback test)";

  outb(UART_LCR, 0xBF);
  outb(UART_EFR, 0);
  outb(UART_LCR, 0);
  outb(UART_FCR, 0x01);
  const fifoBits = inb(UART_IIR) >> 6;
  if (fifoBits !== 3) return ["8250", "unknown", "16550"][fifoBits];

  // autoconfig_16550a: EFR with DLAB set (ST16C650V1)?
  outb(UART_LCR, 0x80);
  if (inb(UART_EFR) === 0) return "ST16C650V1";
  outb(UART_LCR, 0xBF);
  if (inb(UART_EFR) === 0) return "16650V2";
  // National SuperIO: LOOP read back from EXCR1 in bank 2?
  outb(UART_LCR, 0);
  let mcr = inb(UART_MCR);
  outb(UART_LCR, 0xE0);
  let excr1 = inb(0x02);
  if (!((excr1 ^ mcr) & 0x10)) {
    outb(UART_LCR, 0);
    outb(UART_MCR, mcr ^ 0x10);
    outb(UART_LCR, 0xE0);
    excr1 = inb(0x02);
    outb(UART_LCR, 0);
    outb(UART_MCR, mcr);
    if ((excr1 ^ mcr) & 0x10) return "NS16550A";
  }
  // TI16750: IIR bit 5 with the 64-byte FIFO enabled under DLAB?
  outb(UART_LCR, 0);
  outb(UART_FCR, 0x01 | 0x20);
  const s1 = inb(UART_IIR) & 0xE0;
  outb(UART_FCR, 0x01);
  outb(UART_LCR, 0x80);
  outb(UART_FCR, 0x01 | 0x20);
  const s2 = inb(UART_IIR) & 0xE0;
  outb(UART_FCR, 0x01);
  outb(UART_LCR, 0);
  if (s1 === 0xC0 && s2 === 0xE0) return "16750";
  // XScale: IER UUE bit sticks?
  const iersave = inb(UART_IER);
  outb(UART_IER, iersave & ~0x40);
  if (!(inb(UART_IER) & 0x40)) {
    outb(UART_IER, iersave | 0x40);
    if (inb(UART_IER) & 0x40) return "XScale";
  }
  outb(UART_IER, iersave);
  outb(UART_LCR, saveLcr);
  mcr = saveMcr;
  outb(UART_MCR, mcr);
  outb(UART_FCR, 0x07); // serial8250_clear_fifos
  outb(UART_FCR, 0);
  inb(UART_RX);
  outb(UART_IER, 0);
  return "16550A";
}

Deno.test("Uart16550 is detected as a 16550A by Linux's 8250 autoconfig", () => {
  const { inb, outb, backend, irq } = setup();
  assertEquals(linuxAutoconfig(inb, outb), "16550A");
  assertEquals(backend.chunks.length, 0);
  assertEquals(irq.risingEdges[4], 0);
  assert(inb(UART_LSR) !== 0xFF, "serial8250_do_startup's LSR safety check");
});

Deno.test("Uart16550 re-asserts THRE when THRI is re-enabled (no UART_BUG_THRE)", () => {
  const { inb, outb } = setup();
  outb(UART_IER, 0x02);
  const iir1 = inb(UART_IIR);
  outb(UART_IER, 0);
  outb(UART_IER, 0x02);
  const iir = inb(UART_IIR);
  outb(UART_IER, 0);
  assertEquals(iir1 & 0x0F, 0x02);
  assertEquals(iir & 0x0F, 0x02);
  // serial8250_do_startup's TXEN test: THRI → an interrupt is reported.
  outb(UART_IER, 0x02);
  assertEquals(inb(UART_LSR) & 0x60, 0x60);
  assertEquals(inb(UART_IIR) & 0x01, 0);
});

Deno.test("Uart16550 loopback turns transmitted bytes into received ones", () => {
  const { inb, outb, backend, irq } = setup();
  outb(UART_FCR, 0x81);
  outb(UART_MCR, 0x10 | 0x08 | 0x02);
  outb(UART_IER, 0x01);
  outb(UART_TX, 0x41);
  outb(UART_TX, 0x42);
  assertEquals(inb(UART_LSR) & 0x01, 0x01);
  assertEquals(inb(UART_IIR), 0xCC, "FIFO below the trigger: character timeout");
  assertEquals(irq.levels[4], false, "loopback disconnects the IRQ line");
  assertEquals(inb(UART_RX), 0x41);
  assertEquals(inb(UART_RX), 0x42);
  assertEquals(inb(UART_LSR) & 0x01, 0);
  assertEquals(backend.chunks.length, 0, "nothing reaches the line");
});

Deno.test("Uart16550 batches transmitted bytes into one backend write per task", async () => {
  const { outb, backend, uart } = setup();
  outb(UART_LCR, 0x83);
  outb(UART_TX, 1); // divisor latch, not THR
  outb(UART_IER, 0);
  outb(UART_LCR, 0x03);
  for (const byte of new TextEncoder().encode("Linux version 6.1\n")) outb(UART_TX, byte);
  assertEquals(backend.chunks.length, 0, "not yet: batched");
  await Promise.resolve();
  assertEquals(backend.chunks.length, 1);
  assertEquals(backend.text(), "Linux version 6.1\n");
  outb(UART_TX, 0x21);
  uart.flush();
  assertEquals(backend.text(), "Linux version 6.1\n!");
});

Deno.test("Uart16550 raises THRE interrupts for interrupt-driven output, gated by OUT2", () => {
  const { inb, outb, irq } = setup();
  outb(UART_FCR, 0x81);
  outb(UART_IER, 0x02);
  assertEquals(irq.levels[4], false, "OUT2 low: the PC's IRQ buffer is off");
  outb(UART_MCR, 0x0B); // DTR | RTS | OUT2, as serial8250_do_startup sets it
  assertEquals(irq.levels[4], true);
  assertEquals(inb(UART_IIR), 0xC2);
  assertEquals(irq.levels[4], false, "reading IIR acknowledged THRE");
  // serial8250_tx_chars: fill the FIFO; each byte leaves at once and THRE comes back.
  for (let i = 0; i < 16; i++) outb(UART_TX, 0x30 + i);
  assertEquals(irq.levels[4], true);
  assertEquals(irq.risingEdges[4], 2);
});

Deno.test("Uart16550 receives host input with RDA and timeout interrupts", () => {
  const { inb, outb, irq, uart } = setup();
  outb(UART_FCR, 0x81); // FIFO, trigger 8 (Linux's 16550A setting)
  outb(UART_MCR, 0x0B);
  outb(UART_IER, 0x05); // RDI | RLSI
  uart.receive(new TextEncoder().encode("ls\r"));
  assertEquals(irq.levels[4], true);
  assertEquals(inb(UART_IIR), 0xCC, "below the trigger level: timeout");
  let received = "";
  while (inb(UART_LSR) & 0x01) received += String.fromCharCode(inb(UART_RX));
  assertEquals(received, "ls\r");
  assertEquals(irq.levels[4], false);

  const big = new Uint8Array(10_000).map((_, i) => i & 0xFF);
  uart.receive(big);
  assertEquals(inb(UART_IIR), 0xC4, "FIFO at its trigger level");
  const got: number[] = [];
  while (inb(UART_LSR) & 0x01) got.push(inb(UART_RX));
  assertEquals(got.length, 10_000, "the host-side queue refills the FIFO as the guest drains it");
  assert(got.every((b, i) => b === (i & 0xFF)));
  assertEquals(inb(UART_IIR), 0xC1);
});

Deno.test("Uart16550 keeps the divisor, LCR and scratch registers apart from data", () => {
  const { inb, outb } = setup();
  outb(UART_LCR, 0x80);
  outb(0, 0x01);
  outb(1, 0x00);
  assertEquals(inb(0), 0x01);
  assertEquals(inb(1), 0x00);
  outb(UART_LCR, 0x03);
  assertEquals(inb(UART_LCR), 0x03);
  assertEquals(inb(UART_IER), 0x00, "DLM did not land in IER");
  outb(UART_SCR, 0x5A);
  assertEquals(inb(UART_SCR), 0x5A);
  assertEquals(inb(UART_MSR) & 0xF0, 0xB0, "CTS, DSR and DCD: a terminal is attached");
});

Deno.test("Uart16550 modem status deltas interrupt when MSI is enabled", () => {
  const { inb, outb, irq } = setup();
  outb(UART_MCR, 0x0B);
  inb(UART_MSR);
  outb(UART_IER, 0x08);
  assertEquals(inb(UART_IIR), 0x01);
  outb(UART_MCR, 0x19); // loopback: CTS follows RTS (now low), DSR DTR, DCD OUT2
  assertEquals(inb(UART_IIR), 0x00, "modem status interrupt");
  assertEquals(irq.levels[4], false, "but loopback disconnects the line");
  assertEquals(inb(UART_MSR), 0xA0 | 0x01, "DSR, DCD and the CTS delta");
  assertEquals(inb(UART_MSR), 0xA0, "reading MSR cleared the delta");
  assertEquals(inb(UART_IIR), 0x01);
});
