/**
 * Tests for the PCI host bridge: configuration mechanism #1 as Linux probes it (pci_check_type1,
 * pci_sanity_check), all-ones for absent functions, byte and word accesses anywhere in the window,
 * and firmware-style BAR placement.
 */
import { assertEquals, assertThrows } from "../assert.ts";
import { MmioBus, PortBus } from "../../lib/machine/bus.ts";
import { DEFAULT_BAR_BASE, PciHostBridge } from "../../lib/pci/pci_host_bridge.ts";
import { PciFunction } from "../../lib/pci/pci_function.ts";

function setup() {
  const ports = new PortBus();
  const mmio = new MmioBus();
  let resets = 0;
  const bridge = new PciHostBridge(ports, mmio, { onResetRequest: () => resets++ });
  return { ports, mmio, bridge, resets: () => resets };
}

function addr(dev: number, reg: number, fn = 0, bus = 0): number {
  return (0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | reg) >>> 0;
}

Deno.test("PciHostBridge latches the address register as Linux's type-1 probe expects", () => {
  const { ports } = setup();
  ports.write(0xCFB, 1, 0x01); // the type-2 probe's byte write is not a configuration cycle
  ports.write(0xCF8, 4, 0x8000_0000);
  assertEquals(ports.read(0xCF8, 4), 0x8000_0000);
  ports.write(0xCF8, 4, 0xFFFF_FFFF);
  assertEquals(ports.read(0xCF8, 4), 0x80FF_FFFC, "reserved bits 30:24 and 1:0 read as zero");
});

Deno.test("PciHostBridge presents an i440FX-like host bridge at 00:00.0", () => {
  const { ports } = setup();
  ports.write(0xCF8, 4, addr(0, 0));
  assertEquals(ports.read(0xCFC, 4), 0x1237_8086);
  ports.write(0xCF8, 4, addr(0, 0x08));
  assertEquals(ports.read(0xCFE, 2), 0x0600, "class: host bridge (what pci_sanity_check looks for)");
  assertEquals(ports.read(0xCFF, 1), 0x06);
  assertEquals(ports.read(0xCFE, 1), 0x00);
});

Deno.test("PciHostBridge reads all ones for absent slots, functions, buses and with enable clear", () => {
  const { ports } = setup();
  for (const a of [addr(5, 0), addr(0, 0, 1), addr(0, 0, 0, 1), addr(0, 0) & 0x7FFF_FFFF]) {
    ports.write(0xCF8, 4, a);
    assertEquals(ports.read(0xCFC, 4), 0xFFFF_FFFF);
    assertEquals(ports.read(0xCFD, 1), 0xFF);
    assertEquals(ports.read(0xCFE, 2), 0xFFFF);
    ports.write(0xCFC, 4, 0); // ignored
  }
});

Deno.test("PciHostBridge routes byte and word accesses at any data-port offset", () => {
  const { ports, mmio, bridge } = setup();
  const fn = new PciFunction("dev", mmio, {
    vendorId: 0x1234,
    deviceId: 0x5678,
    revisionId: 3,
    classCode: 0xFF0000,
  });
  const slot = bridge.attach(fn);
  assertEquals(slot, 1);
  ports.write(0xCF8, 4, addr(slot, 0x0C));
  ports.write(0xCFD, 1, 0x40); // LATENCY_TIMER at 0x0D
  ports.write(0xCFC, 1, 0x10); // CACHE_LINE_SIZE at 0x0C
  assertEquals(ports.read(0xCFC, 2), 0x4010);
  assertEquals(fn.config[0x0D], 0x40);
  ports.write(0xCF8, 4, addr(slot, 0x00));
  assertEquals(ports.read(0xCFE, 2), 0x5678);
  assertEquals(ports.read(0xCFE, 4), 0xFFFF_5678, "bytes past 0xCFF float high");
});

Deno.test("PciHostBridge attach places BARs from the BAR base and enables decoding", () => {
  const { mmio, bridge } = setup();
  const seen: number[] = [];
  const handler = { read: (o: number) => (seen.push(o), 0xAB), write: () => {} };
  const a = new PciFunction("a", mmio, { vendorId: 1, deviceId: 1, revisionId: 0, classCode: 0 });
  a.addMemoryBar(0, 0x4000, handler);
  const b = new PciFunction("b", mmio, { vendorId: 1, deviceId: 2, revisionId: 0, classCode: 0 });
  b.addMemoryBar(0, 0x1000, handler);
  b.addMemoryBar(1, 0x4000, handler);
  bridge.attach(a);
  bridge.attach(b);
  assertEquals(a.barAddress(0), DEFAULT_BAR_BASE);
  assertEquals(b.barAddress(0), DEFAULT_BAR_BASE + 0x4000);
  assertEquals(b.barAddress(1), DEFAULT_BAR_BASE + 0x8000, "aligned to its own size");
  assertEquals(mmio.read(DEFAULT_BAR_BASE + 0x8004, 1), 0xAB);
  assertEquals(seen, [4]);
});

Deno.test("PciHostBridge forwards a 0xCF9 reset request", () => {
  const { ports, resets } = setup();
  ports.write(0xCF9, 1, 0x02);
  assertEquals(resets(), 0);
  ports.write(0xCF9, 1, 0x06);
  assertEquals(resets(), 1);
});

Deno.test("PciHostBridge refuses two functions with one name (their MMIO ranges share it)", () => {
  const { mmio, bridge } = setup();
  const ids = { vendorId: 1, deviceId: 1, revisionId: 0, classCode: 0 };
  bridge.attach(new PciFunction("disk", mmio, ids));
  assertThrows(() => bridge.attach(new PciFunction("disk", mmio, ids)));
});
