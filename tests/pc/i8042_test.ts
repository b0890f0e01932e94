/** The 8042 as Linux's i8042 driver (drivers/input/serio/i8042.c) and libps2/atkbd talk to it. */
import { assert, assertEquals } from "../assert.ts";
import { PortBus } from "../../lib/machine/bus.ts";
import { I8042 } from "../../lib/pc/i8042.ts";
import { FakeIrqSink } from "./fake_irq_sink.ts";

const I8042_STR_OBF = 0x01;
const I8042_STR_IBF = 0x02;
const I8042_STR_AUXDATA = 0x20;
const I8042_STR_TIMEOUT = 0x40;
const I8042_CTL_TIMEOUT = 10_000;

function setup() {
  const irq = new FakeIrqSink();
  const ports = new PortBus();
  let resets = 0;
  new I8042(irq, () => resets++).register(ports);
  return { irq, ports, resets: () => resets };
}

/** __i8042_command(): `command` packs the return count in bits 11-8 and the parameter count in 15-12. */
function i8042Command(ports: PortBus, command: number, params: number[] = []): number[] {
  const waitWrite = () => {
    for (let i = 0; i < I8042_CTL_TIMEOUT; i++) if (!(ports.read(0x64, 1) & I8042_STR_IBF)) return;
    throw new Error("i8042 write timeout");
  };
  const waitRead = () => {
    for (let i = 0; i < I8042_CTL_TIMEOUT; i++) if (ports.read(0x64, 1) & I8042_STR_OBF) return;
    throw new Error("i8042 read timeout");
  };
  waitWrite();
  ports.write(0x64, 1, command & 0xFF);
  for (let i = 0; i < ((command >> 12) & 0xF); i++) {
    waitWrite();
    ports.write(0x60, 1, params[i]);
  }
  const result: number[] = [];
  for (let i = 0; i < ((command >> 8) & 0xF); i++) {
    waitRead();
    if (command === 0x11D3 && !(ports.read(0x64, 1) & I8042_STR_AUXDATA)) throw new Error("auxerr");
    result.push(ports.read(0x60, 1));
  }
  return result;
}

/** i8042_flush(): drain the output buffer; false if it never empties. */
function i8042Flush(ports: PortBus): boolean {
  for (let count = 0; count < 16; count++) {
    if (!(ports.read(0x64, 1) & I8042_STR_OBF)) return true;
    ports.read(0x60, 1);
  }
  return false;
}

/** Reads one byte the keyboard or mouse sent, as i8042_interrupt() does. */
function readDeviceByte(ports: PortBus): { status: number; data: number } {
  const status = ports.read(0x64, 1);
  assert(status & I8042_STR_OBF, "a byte is waiting");
  return { status, data: ports.read(0x60, 1) };
}

Deno.test("I8042 passes i8042_controller_check and i8042_controller_selftest", () => {
  const { ports } = setup();
  assert(ports.read(0x64, 1) !== 0xFF, "a controller is present");
  assert(i8042Flush(ports));
  assertEquals(i8042Command(ports, 0x01AA), [0x55]);
  assertEquals(i8042Command(ports, 0x01AB), [0x00], "keyboard interface test");
});

Deno.test("I8042 reads and writes the CTR as i8042_controller_init does", () => {
  const { ports } = setup();
  const ctr = i8042Command(ports, 0x0120);
  assertEquals(i8042Command(ports, 0x0120), ctr, "a stable CTR read");
  assertEquals(ctr[0] & 0x40, 0x40, "translated, as the BIOS left it");
  const newCtr = (ctr[0] | 0x10) & ~0x01; // I8042_CTR_KBDDIS, no KBDINT
  i8042Command(ports, 0x1060, [newCtr]);
  assertEquals(i8042Command(ports, 0x0120), [newCtr]);
  assert(ports.read(0x64, 1) & 0x10, "keylock bit says unlocked");
});

Deno.test("I8042 AUX loopback works and i8042_check_aux's IRQ12 test sees the byte", () => {
  const { ports, irq } = setup();
  assertEquals(i8042Command(ports, 0x11D3, [0x5A]), [0x5A]);
  // Bit assignment test: AUX disable/enable show in the CTR.
  i8042Command(ports, 0x00A7);
  assertEquals(i8042Command(ports, 0x0120)[0] & 0x20, 0x20);
  i8042Command(ports, 0x00A8);
  assertEquals(i8042Command(ports, 0x0120)[0] & 0x20, 0x00);
  // i8042_enable_aux_port, then the loop with the interrupt enabled.
  const ctr = i8042Command(ports, 0x0120)[0];
  i8042Command(ports, 0x1060, [ctr | 0x02]);
  const edges = irq.risingEdges[12];
  ports.write(0x64, 1, 0xD3);
  ports.write(0x60, 1, 0xA5);
  assertEquals(irq.risingEdges[12], edges + 1);
  const { status, data } = readDeviceByte(ports);
  assertEquals(status & I8042_STR_AUXDATA, I8042_STR_AUXDATA);
  assertEquals(data, 0xA5);
  assertEquals(irq.levels[12], false);
});

Deno.test("I8042 has no MUX: the third loop byte comes back unchanged", () => {
  const { ports } = setup();
  assertEquals(i8042Command(ports, 0x11D3, [0xF0]), [0xF0]);
  assertEquals(i8042Command(ports, 0x11D3, [0x56]), [0x56]);
  assertEquals(i8042Command(ports, 0x11D3, [0xA4]), [0xA4], "a MUX would answer with its version");
});

Deno.test("I8042 keyboard answers atkbd_probe's GET ID on IRQ1, one edge per byte", () => {
  const { ports, irq } = setup();
  const ctr = i8042Command(ports, 0x0120)[0];
  i8042Command(ports, 0x1060, [(ctr & ~0x10) | 0x01]); // i8042_enable_kbd_port
  const edges = irq.risingEdges[1];
  ports.write(0x60, 1, 0xF2); // ATKBD_CMD_GETID via i8042_kbd_write
  const bytes = [readDeviceByte(ports).data, readDeviceByte(ports).data, readDeviceByte(ports).data];
  assertEquals(bytes, [0xFA, 0xAB, 0x41], "ACK, then an MF2 id as translation presents it");
  assertEquals(irq.risingEdges[1], edges + 3);
  assertEquals(ports.read(0x64, 1) & I8042_STR_OBF, 0);
  ports.write(0x60, 1, 0xED); // SETLEDS + parameter
  assertEquals(readDeviceByte(ports).data, 0xFA);
  ports.write(0x60, 1, 0x00);
  assertEquals(readDeviceByte(ports).data, 0xFA);
  ports.write(0x60, 1, 0xFF); // reset
  assertEquals([readDeviceByte(ports).data, readDeviceByte(ports).data], [0xFA, 0xAA]);
});

Deno.test("I8042 answers a byte for the absent mouse at once, with the timeout bit", () => {
  const { ports } = setup();
  ports.write(0x64, 1, 0xD4);
  ports.write(0x60, 1, 0xF2); // PSMOUSE_CMD_GETID
  const { status, data } = readDeviceByte(ports);
  assertEquals(status & (I8042_STR_AUXDATA | I8042_STR_TIMEOUT), I8042_STR_AUXDATA | I8042_STR_TIMEOUT);
  assertEquals(data, 0xFE);
});

Deno.test("I8042 pulses reset on command 0xFE, as Linux's keyboard-controller reboot does", () => {
  const { ports, resets } = setup();
  // kb_wait(); outb(0xfe, 0x64);
  assertEquals(ports.read(0x64, 1) & I8042_STR_IBF, 0);
  ports.write(0x64, 1, 0xFE);
  assertEquals(resets(), 1);
  ports.write(0x64, 1, 0xFF); // pulse nothing
  assertEquals(resets(), 1);
  ports.write(0x64, 1, 0xD1); // write output port with the reset bit low
  ports.write(0x60, 1, 0x02);
  assertEquals(resets(), 2);
});
