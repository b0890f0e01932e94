/**
 * Tests for PciFunction: write masks, BAR sizing by writing all ones, BARs mapping and unmapping
 * on the MmioBus with COMMAND.MEMORY and BAR writes, the capability list, and INTx with
 * STATUS.INTERRUPT and COMMAND.INTX_DISABLE (PCI Local Bus Spec 3.0 ch. 6).
 */
import { assert, assertEquals } from "../assert.ts";
import { MmioBus } from "../../lib/machine/bus.ts";
import {
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MEMORY,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PciFunction,
} from "../../lib/pci/pci_function.ts";
import { captureLog, TestIrq } from "../virtio/virtio_driver.ts";

function make(mmio = new MmioBus(), irq = new TestIrq()) {
  const fn = new PciFunction("dev", mmio, {
    vendorId: 0x1AF4,
    deviceId: 0x1042,
    revisionId: 1,
    classCode: 0x010000,
    subsystemVendorId: 0x1AF4,
    subsystemId: 0x40,
  }, { sink: irq, line: 11 });
  const handler = { read: () => 0x5A, write: () => {} };
  fn.addMemoryBar(0, 0x4000, handler);
  return { fn, mmio, irq };
}

Deno.test("PciFunction exposes identity registers read-only", () => {
  const { fn } = make();
  assertEquals(fn.configRead(0, 4), 0x1042_1AF4);
  assertEquals(fn.configRead(0x08, 4), 0x0100_0001);
  assertEquals(fn.configRead(0x2C, 4), 0x0040_1AF4);
  fn.configWrite(0, 4, 0);
  fn.configWrite(0x08, 4, 0xFFFF_FFFF);
  assertEquals(fn.configRead(0, 4), 0x1042_1AF4);
  assertEquals(fn.configRead(0x08, 4), 0x0100_0001);
  assertEquals(fn.configRead(0x3C, 2), 0x010B, "INTERRUPT_LINE preset to the IRQ line, pin INTA#");
});

Deno.test("PciFunction BAR sizing returns the size mask and restores", () => {
  const { fn } = make();
  fn.setBarAddress(0, 0xE000_0000);
  fn.configWrite(0x10, 4, 0xFFFF_FFFF);
  assertEquals(fn.configRead(0x10, 4), 0xFFFF_C000);
  fn.configWrite(0x10, 4, 0xE000_0000);
  assertEquals(fn.configRead(0x10, 4), 0xE000_0000);
  assertEquals(fn.configRead(0x14, 4), 0, "unimplemented BARs read 0");
  fn.configWrite(0x14, 4, 0xFFFF_FFFF);
  assertEquals(fn.configRead(0x14, 4), 0);
});

Deno.test("PciFunction maps its BAR only while COMMAND.MEMORY is set and follows BAR moves", () => {
  const { fn, mmio } = make();
  fn.setBarAddress(0, 0xE000_0000);
  assertEquals(mmio.read(0xE000_0000, 1), 0xFF, "decoding off after reset");
  fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
  assertEquals(mmio.read(0xE000_0000, 1), 0x5A);
  fn.configWrite(0x10, 4, 0xFFFF_FFFF); // sizing while decoding: the probe address decodes nothing
  assertEquals(mmio.read(0xE000_0000, 1), 0xFF);
  assertEquals(mmio.read(0xFFFF_C000, 1), 0xFF);
  fn.configWrite(0x10, 4, 0xE010_0000);
  assertEquals(mmio.read(0xE010_3FFF, 1), 0x5A);
  fn.configWrite(PCI_COMMAND, 2, 0);
  assertEquals(mmio.read(0xE010_0000, 1), 0xFF);
});

Deno.test("PciFunction refuses a guest BAR placement over another range with a warning", async () => {
  const mmio = new MmioBus();
  mmio.register(0xE000_0000, 0x1000, "other", { read: () => 0x11, write: () => {} });
  const { fn } = make(mmio);
  const { lines } = await captureLog(() => {
    fn.configWrite(0x10, 4, 0xE000_0000);
    fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
  });
  assertEquals(lines.length, 1);
  assertEquals(mmio.read(0xE000_0000, 1), 0x11);
  fn.configWrite(0x10, 4, 0xE000_4000);
  assertEquals(mmio.read(0xE000_4000, 1), 0x5A);
});

Deno.test("PciFunction builds a capability list", () => {
  const { fn } = make();
  const a = fn.addCapability(0x09, 16);
  const b = fn.addCapability(0x09, 19);
  const c = fn.addCapability(0x05, 4);
  assertEquals(fn.configRead(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
  assertEquals(fn.configRead(0x34, 1), a);
  assertEquals([a, b, c], [0x40, 0x50, 0x64]);
  assertEquals(fn.configRead(a + 1, 1), b);
  assertEquals(fn.configRead(b + 1, 1), c);
  assertEquals(fn.configRead(c + 1, 1), 0);
});

Deno.test("PciFunction INTx drives the line and STATUS.INTERRUPT, masked by INTX_DISABLE", () => {
  const { fn, irq } = make();
  fn.setIntx(true);
  assert(irq.level(11));
  assertEquals(fn.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
  fn.configWrite(PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE);
  assert(!irq.level(11));
  assertEquals(fn.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, PCI_STATUS_INTERRUPT);
  fn.configWrite(PCI_COMMAND, 2, 0);
  assert(irq.level(11));
  fn.setIntx(false);
  assert(!irq.level(11));
  assertEquals(fn.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT, 0);
  fn.configWrite(PCI_STATUS, 2, 0xFFFF);
  assertEquals(fn.configRead(PCI_STATUS, 2), 0, "STATUS is read-only");
});
