/** The 8259 pair, programmed through the port bus exactly as Linux's arch/x86/kernel/i8259.c does. */
import { assert, assertEquals } from "../assert.ts";
import { PortBus } from "../../lib/machine/bus.ts";
import { Pic8259Pair } from "../../lib/pc/pic_8259.ts";

const PIC_MASTER_CMD = 0x20;
const PIC_MASTER_IMR = 0x21;
const PIC_SLAVE_CMD = 0xA0;
const PIC_SLAVE_IMR = 0xA1;
/** ISA_IRQ_VECTOR(0) on 32-bit Linux 6.1. */
const IRQ0_VECTOR = 0x30;

function setup(): { pic: Pic8259Pair; ports: PortBus } {
  const ports = new PortBus();
  const pic = new Pic8259Pair();
  pic.register(ports);
  return { pic, ports };
}

/** init_8259A(auto_eoi), then unmask `masterMask`/`slaveMask` as Linux's cached masks would. */
function linuxInit(ports: PortBus, masterMask = 0xFB, slaveMask = 0xFF, autoEoi = false): void {
  ports.write(PIC_MASTER_IMR, 1, 0xFF);
  ports.write(PIC_SLAVE_IMR, 1, 0xFF);
  ports.write(PIC_MASTER_CMD, 1, 0x11); // ICW1: edge, cascade, ICW4 needed
  ports.write(PIC_MASTER_IMR, 1, IRQ0_VECTOR); // ICW2
  ports.write(PIC_MASTER_IMR, 1, 1 << 2); // ICW3: slave on IR2
  ports.write(PIC_MASTER_IMR, 1, autoEoi ? 0x03 : 0x01); // ICW4: 8086 mode (+AEOI)
  ports.write(PIC_SLAVE_CMD, 1, 0x11);
  ports.write(PIC_SLAVE_IMR, 1, IRQ0_VECTOR + 8);
  ports.write(PIC_SLAVE_IMR, 1, 2); // ICW3: slave identity 2
  ports.write(PIC_SLAVE_IMR, 1, 0x01);
  ports.write(PIC_MASTER_IMR, 1, masterMask);
  ports.write(PIC_SLAVE_IMR, 1, slaveMask);
}

/** mask_and_ack_8259A's specific EOIs. */
function linuxEoi(ports: PortBus, irq: number): void {
  if (irq & 8) {
    ports.write(PIC_SLAVE_CMD, 1, 0x60 + (irq & 7));
    ports.write(PIC_MASTER_CMD, 1, 0x60 + 2);
  } else {
    ports.write(PIC_MASTER_CMD, 1, 0x60 + irq);
  }
}

function readIsr(ports: PortBus, cmd: number): number {
  ports.write(cmd, 1, 0x0B); // OCW3: read ISR
  const isr = ports.read(cmd, 1);
  ports.write(cmd, 1, 0x0A); // back to IRR
  return isr;
}

Deno.test("Pic8259Pair passes Linux's probe_8259A: the IMR reads back", () => {
  const { ports } = setup();
  ports.write(PIC_SLAVE_IMR, 1, 0xFF);
  ports.write(PIC_MASTER_IMR, 1, 0xFB);
  assertEquals(ports.read(PIC_MASTER_IMR, 1), 0xFB);
  assertEquals(ports.read(PIC_SLAVE_IMR, 1), 0xFF);
});

Deno.test("Pic8259Pair delivers ISA_IRQ_VECTOR(n) after Linux's init sequence", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xFA);
  assert(!pic.hasInterrupt());
  pic.setIrq(0, true);
  assert(pic.hasInterrupt());
  assertEquals(pic.acknowledge(), IRQ0_VECTOR);
  assert(!pic.hasInterrupt());
  assertEquals(readIsr(ports, PIC_MASTER_CMD), 0x01);
  linuxEoi(ports, 0);
  assertEquals(readIsr(ports, PIC_MASTER_CMD), 0x00);
});

Deno.test("Pic8259Pair orders by priority and holds lower priorities until EOI", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0x00);
  pic.setIrq(4, true);
  pic.setIrq(1, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 1);
  assert(!pic.hasInterrupt(), "IRQ4 must wait while IRQ1 is in service");
  pic.setIrq(0, true);
  assert(pic.hasInterrupt(), "IRQ0 outranks the in-service IRQ1");
  assertEquals(pic.acknowledge(), IRQ0_VECTOR);
  linuxEoi(ports, 0);
  assert(!pic.hasInterrupt());
  linuxEoi(ports, 1);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 4);
});

Deno.test("Pic8259Pair non-specific EOI ends the highest-priority in-service IRQ", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0x00);
  pic.setIrq(3, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 3);
  pic.setIrq(1, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 1);
  assertEquals(readIsr(ports, PIC_MASTER_CMD), 0x0A);
  ports.write(PIC_MASTER_CMD, 1, 0x20);
  assertEquals(readIsr(ports, PIC_MASTER_CMD), 0x08);
});

Deno.test("Pic8259Pair masks with OCW1 and delivers a latched edge once unmasked", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xFB);
  pic.setIrq(1, true);
  pic.setIrq(1, false);
  assert(!pic.hasInterrupt());
  assertEquals(ports.read(PIC_MASTER_CMD, 1) & 0x02, 0x02, "IRR shows the request");
  ports.write(PIC_MASTER_IMR, 1, 0xF9);
  assert(pic.hasInterrupt());
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 1);
});

Deno.test("Pic8259Pair routes the slave through IRQ2 and needs both EOIs", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xFB, 0xFE); // RTC (IRQ8) unmasked
  pic.setIrq(8, true);
  assert(pic.hasInterrupt());
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 8);
  assertEquals(readIsr(ports, PIC_MASTER_CMD), 0x04);
  assertEquals(readIsr(ports, PIC_SLAVE_CMD), 0x01);
  pic.setIrq(8, false);
  pic.setIrq(8, true);
  assert(!pic.hasInterrupt(), "still in service");
  linuxEoi(ports, 8);
  assert(pic.hasInterrupt(), "the second edge was latched");
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 8);
});

Deno.test("Pic8259Pair edge-triggered lines interrupt once per rising edge", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xEB); // IRQ4 unmasked
  pic.setIrq(4, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 4);
  linuxEoi(ports, 4);
  assert(!pic.hasInterrupt(), "a line held high is not a new edge");
  pic.setIrq(4, true);
  assert(!pic.hasInterrupt());
  pic.setIrq(4, false);
  pic.setIrq(4, true);
  assert(pic.hasInterrupt());
});

Deno.test("Pic8259Pair level-triggered lines (ELCR) interrupt while high", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xFB, 0xFB); // IRQ10 unmasked
  // elcr_set_level_irq(10), as Linux's PCI IRQ router does.
  ports.write(0x4D1, 1, ports.read(0x4D1, 1) | 0x04);
  assertEquals(ports.read(0x4D1, 1), 0x04);
  pic.setIrq(10, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 10);
  linuxEoi(ports, 10);
  assert(pic.hasInterrupt(), "still asserted after EOI: interrupt again");
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 10);
  pic.setIrq(10, false);
  linuxEoi(ports, 10);
  assert(!pic.hasInterrupt());
});

Deno.test("Pic8259Pair answers a vanished request with spurious IRQ7 or IRQ15, ISR untouched", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xFB, 0xFB);
  ports.write(0x4D1, 1, 0x04);
  pic.setIrq(10, true);
  assert(pic.hasInterrupt());
  pic.setIrq(10, false); // the device deasserted before INTA
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 8 + 7);
  assertEquals(readIsr(ports, PIC_SLAVE_CMD), 0x00);

  pic.setIrq(3, true);
  ports.write(PIC_MASTER_IMR, 1, 0xFF); // masked between INT and INTA
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 7);
  assertEquals(readIsr(ports, PIC_MASTER_CMD) & 0x80, 0);
});

Deno.test("Pic8259Pair ELCR keeps IRQ0-2, IRQ8 and IRQ13 edge-triggered", () => {
  const { ports } = setup();
  ports.write(0x4D0, 1, 0xFF);
  ports.write(0x4D1, 1, 0xFF);
  assertEquals(ports.read(0x4D0, 1), 0xF8);
  assertEquals(ports.read(0x4D1, 1), 0xDE);
  assertEquals(ports.read(0x4D0, 2), 0xDEF8);
});

Deno.test("Pic8259Pair auto-EOI leaves nothing in service", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xFA, 0xFF, true);
  pic.setIrq(0, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR);
  assertEquals(readIsr(ports, PIC_MASTER_CMD), 0);
  pic.setIrq(0, false);
  pic.setIrq(0, true);
  assert(pic.hasInterrupt(), "no EOI needed");
});

Deno.test("Pic8259Pair poll mode acknowledges on read", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0x00);
  pic.setIrq(5, true);
  ports.write(PIC_MASTER_CMD, 1, 0x0C); // OCW3 poll
  assertEquals(ports.read(PIC_MASTER_CMD, 1), 0x85);
  assertEquals(readIsr(ports, PIC_MASTER_CMD), 0x20);
  ports.write(PIC_MASTER_CMD, 1, 0x0C);
  assertEquals(ports.read(PIC_MASTER_CMD, 1), 0x00, "nothing pending");
});

Deno.test("Pic8259Pair calls onChange when an interrupt becomes deliverable", () => {
  const { pic, ports } = setup();
  let changes = 0;
  pic.onChange = () => changes++;
  linuxInit(ports, 0xFF);
  pic.setIrq(0, true);
  assertEquals(changes, 0, "masked");
  ports.write(PIC_MASTER_IMR, 1, 0xFE);
  assertEquals(changes, 1, "unmasking made it deliverable");
  pic.setIrq(1, true);
  assertEquals(changes, 1, "already signalled");
  pic.acknowledge();
  linuxEoi(ports, 0);
  assertEquals(changes, 1, "IRQ1 is masked");
});

Deno.test("Pic8259Pair wires an ISA device on IRQ2 to IRQ9, as a PC/AT does", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0xFB, 0xFD);
  pic.setIrq(2, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 9);
});

Deno.test("Pic8259Pair rotates priorities on OCW2 rotate-on-EOI", () => {
  const { pic, ports } = setup();
  linuxInit(ports, 0x00);
  pic.setIrq(0, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR);
  ports.write(PIC_MASTER_CMD, 1, 0xA0); // rotate on non-specific EOI: IRQ0 becomes lowest
  pic.setIrq(0, false);
  pic.setIrq(0, true);
  pic.setIrq(1, true);
  assertEquals(pic.acknowledge(), IRQ0_VECTOR + 1);
});

Deno.test("Pic8259Pair at power-on requests nothing until ICW1-ICW4 are written", () => {
  const ports = new PortBus();
  const pic = new Pic8259Pair({ powerOn: true });
  pic.register(ports);
  pic.setIrq(0, true);
  assertEquals(pic.hasInterrupt(), false, "uninitialized: IRQ0 latched but not requested");
  ports.write(PIC_MASTER_CMD, 1, 0x11);
  ports.write(PIC_MASTER_IMR, 1, 0x08);
  ports.write(PIC_MASTER_IMR, 1, 1 << 2);
  assertEquals(pic.hasInterrupt(), false, "still expecting ICW4");
  ports.write(PIC_MASTER_IMR, 1, 0x01);
  pic.setIrq(0, false);
  pic.setIrq(0, true);
  assertEquals(pic.hasInterrupt(), true);
  assertEquals(pic.acknowledge(), 0x08);
});
