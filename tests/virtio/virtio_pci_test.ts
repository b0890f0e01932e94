/**
 * Tests for the virtio-pci transport (virtio 1.x §4.1) driven through the PCI ports and the
 * MmioBus: identity and capabilities as Linux's vp_modern_probe reads them, feature negotiation,
 * reset, queue registers, ISR and INTx, the PCI_CFG access window, and DEVICE_NEEDS_RESET.
 */
import { assert, assertEquals } from "../assert.ts";
import { ConsoleDevice } from "../../lib/virtio/console.ts";
import { RngDevice } from "../../lib/virtio/rng.ts";
import { HostEntropy } from "../../lib/backends/entropy.ts";
import {
  bit,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_RING_EVENT_IDX,
  VIRTIO_F_RING_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
} from "../../lib/virtio/virtio_device.ts";
import {
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_PCI_CFG,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_ISR_CONFIG,
  VIRTIO_PCI_ISR_QUEUE,
} from "../../lib/virtio/virtio_pci.ts";
import { VIRTIO_CONSOLE_F_EMERG_WRITE } from "../../lib/virtio/console.ts";
import type { ConsoleBackend } from "../../lib/virtio/console.ts";
import { captureLog, TestMachine, VirtioDriver } from "./virtio_driver.ts";

class FakeTerminal implements ConsoleBackend {
  out: number[] = [];
  input: (b: Uint8Array) => void = () => {};
  write(bytes: Uint8Array): void {
    this.out.push(...bytes);
  }
  onInput(cb: (b: Uint8Array) => void): void {
    this.input = cb;
  }
  text(): string {
    return new TextDecoder().decode(new Uint8Array(this.out));
  }
}

function consoleSetup() {
  const m = new TestMachine();
  const term = new FakeTerminal();
  const { transport, slot } = m.plug(new ConsoleDevice(term), 9);
  return { m, term, transport, drv: new VirtioDriver(m, slot) };
}

const VERSION_1 = bit(VIRTIO_F_VERSION_1);

Deno.test("VirtioPci identifies as a modern virtio device with class, subsystem and revision", () => {
  const { m, drv } = consoleSetup();
  assertEquals(m.cfgRead(drv.slot, 0x00), 0x1043_1AF4, "vendor 0x1AF4, device 0x1040 + 3");
  assertEquals(m.cfgRead(drv.slot, 0x08), 0x0780_0001, "class 0x078000, revision 1");
  assertEquals(m.cfgRead(drv.slot, 0x2C), 0x0040_1AF4, "subsystem 0x1AF4:0x40");
  assertEquals(m.cfgRead(drv.slot, 0x3C, 2), 0x0109, "INTA# on IRQ 9");
  assertEquals(m.cfgRead(drv.slot, 0x04, 2) & 2, 2, "memory decoding on");
});

Deno.test("VirtioPci offers the five capabilities inside BAR0 as vp_modern_probe checks them", () => {
  const { drv } = consoleSetup();
  for (
    const t of [
      VIRTIO_PCI_CAP_COMMON_CFG,
      VIRTIO_PCI_CAP_NOTIFY_CFG,
      VIRTIO_PCI_CAP_ISR_CFG,
      VIRTIO_PCI_CAP_DEVICE_CFG,
    ]
  ) {
    const c = drv.cap(t);
    assertEquals(c.bar, 0);
    assert(c.length > 0 && c.offset % 4 === 0 && c.offset + c.length <= 0x4000, `cap ${t} inside BAR0`);
  }
  assert(drv.cap(VIRTIO_PCI_CAP_COMMON_CFG).length >= 0x38);
  assertEquals(drv.notifyMultiplier, 4);
  assert(drv.cap(VIRTIO_PCI_CAP_NOTIFY_CFG).length >= 4 + 2, "room for both queues' doorbells");
  assert(drv.caps.has(VIRTIO_PCI_CAP_PCI_CFG));
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_NUMQ, 2), 2);
});

Deno.test("VirtioPci without device configuration has no DEVICE_CFG capability", () => {
  const m = new TestMachine();
  const { slot } = m.plug(new RngDevice(new HostEntropy()));
  const drv = new VirtioDriver(m, slot);
  assert(!drv.caps.has(VIRTIO_PCI_CAP_DEVICE_CFG));
  assertEquals(m.cfgRead(slot, 0x00), 0x1044_1AF4);
});

Deno.test("VirtioPci offers VERSION_1, ring features and device features over two select words", () => {
  const { drv } = consoleSetup();
  const f = drv.deviceFeatures();
  for (
    const b of [
      VIRTIO_F_VERSION_1,
      VIRTIO_F_RING_INDIRECT_DESC,
      VIRTIO_F_RING_EVENT_IDX,
      VIRTIO_CONSOLE_F_EMERG_WRITE,
    ]
  ) {
    assert((f & bit(b)) !== 0n, `feature ${b}`);
  }
});

Deno.test("VirtioPci refuses FEATURES_OK without VERSION_1 or with features it did not offer", () => {
  const { drv } = consoleSetup();
  assert(!drv.negotiate(bit(VIRTIO_CONSOLE_F_EMERG_WRITE)), "legacy driver refused");
  drv.reset();
  assert(!drv.negotiate(VERSION_1 | bit(VIRTIO_CONSOLE_F_EMERG_WRITE) | bit(1)), "MULTIPORT was not offered");
  drv.reset();
  assert(drv.negotiate(VERSION_1), "a subset is fine");
});

Deno.test("VirtioPci ignores DRIVER_OK before FEATURES_OK", () => {
  const { drv } = consoleSetup();
  drv.setStatus(1 | 2 | VIRTIO_CONFIG_S_DRIVER_OK);
  assertEquals(drv.status(), 3);
});

Deno.test("VirtioPci reset clears status, features and queues", () => {
  const { drv } = consoleSetup();
  drv.start(2);
  drv.commonWrite(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
  drv.reset();
  assertEquals(drv.status(), 0);
  drv.commonWrite(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_SIZE, 2), 128, "back to the maximum");
  drv.commonWrite(0x08, 4, 0);
  assertEquals(drv.commonRead(0x0C, 4), 0, "driver features cleared");
  drv.start(2);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_DRIVER_OK);
});

Deno.test("VirtioPci queue registers read back, freeze once enabled, and report no MSI-X vector", () => {
  const { drv } = consoleSetup();
  drv.negotiate(drv.deviceFeatures());
  const q = drv.setupQueue(0, 32);
  drv.commonWrite(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_SIZE, 2), 32);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_DESCLO, 4), q.desc);
  drv.commonWrite(VIRTIO_PCI_COMMON_Q_SIZE, 2, 16);
  drv.commonWrite(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x1234_0000);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_SIZE, 2), 32, "frozen");
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_DESCLO, 4), q.desc);
  drv.commonWrite(VIRTIO_PCI_COMMON_Q_MSIX, 2, 1);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
  drv.commonWrite(VIRTIO_PCI_COMMON_MSIX, 2, 0);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
  drv.commonWrite(VIRTIO_PCI_COMMON_Q_SELECT, 2, 7);
  assertEquals(drv.commonRead(VIRTIO_PCI_COMMON_Q_SIZE, 2), 0, "no such queue");
});

Deno.test("VirtioPci composes odd-sized common configuration reads byte by byte", () => {
  const { drv } = consoleSetup();
  drv.setStatus(1);
  const v = drv.commonRead(VIRTIO_PCI_COMMON_NUMQ, 4);
  assertEquals(v & 0xFFFF, 2);
  assertEquals((v >>> 16) & 0xFF, 1, "device_status");
  assertEquals(v >>> 24, drv.commonRead(VIRTIO_PCI_COMMON_CFGGENERATION, 1));
});

Deno.test("VirtioPci raises INTx for used buffers and ISR read clears and lowers it", async () => {
  const { m, drv, term } = consoleSetup();
  drv.start(2);
  const tx = drv.queues[1];
  drv.submit(tx, [{ data: new TextEncoder().encode("hi") }]);
  assertEquals(term.text(), "hi");
  assert(m.irq.level(9));
  assertEquals(m.cfgRead(drv.slot, 0x06, 2) & 0x8, 0x8, "STATUS.INTERRUPT");
  assertEquals(drv.readIsr(), VIRTIO_PCI_ISR_QUEUE);
  assert(!m.irq.level(9));
  assertEquals(drv.readIsr(), 0);
  assertEquals(await drv.waitUsed(tx), { id: 0, len: 0 });
});

Deno.test("VirtioPci serves buffers made available before DRIVER_OK once it is set", () => {
  const { drv, term } = consoleSetup();
  drv.negotiate(drv.deviceFeatures());
  drv.setupQueue(0);
  const tx = drv.setupQueue(1);
  drv.submit(tx, [{ data: new TextEncoder().encode("early") }]);
  assertEquals(term.text(), "", "not before DRIVER_OK");
  drv.driverOk();
  assertEquals(term.text(), "early");
});

Deno.test("VirtioPci PCI_CFG window reads and writes BAR0 through configuration space", () => {
  const { m, drv, term } = consoleSetup();
  const at = drv.cap(VIRTIO_PCI_CAP_PCI_CFG).at;
  // Read num_queues (common cfg offset 0x12, 2 bytes) through the window.
  m.cfgWrite(drv.slot, at + 4, 1, 0);
  m.cfgWrite(drv.slot, at + 8, 4, drv.cap(VIRTIO_PCI_CAP_COMMON_CFG).offset + VIRTIO_PCI_COMMON_NUMQ);
  m.cfgWrite(drv.slot, at + 12, 4, 2);
  assertEquals(m.cfgRead(drv.slot, at + 16, 4) & 0xFFFF, 2);
  // The lguest early console: emerg_wr (device cfg offset 8), 4-byte writes of one character each.
  m.cfgWrite(drv.slot, at + 8, 4, drv.cap(VIRTIO_PCI_CAP_DEVICE_CFG).offset + 8);
  m.cfgWrite(drv.slot, at + 12, 4, 4);
  for (const c of "boot") m.cfgWrite(drv.slot, at + 16, 4, c.charCodeAt(0));
  assertEquals(term.text(), "boot");
  // A window the device cannot honour (misaligned) does nothing.
  m.cfgWrite(drv.slot, at + 8, 4, drv.cap(VIRTIO_PCI_CAP_DEVICE_CFG).offset + 9);
  m.cfgWrite(drv.slot, at + 16, 4, 0x41);
  assertEquals(term.text(), "boot");
});

Deno.test("VirtioPci goes to DEVICE_NEEDS_RESET with one warning and a config interrupt, then recovers", async () => {
  const { m, drv, term } = consoleSetup();
  drv.start(2);
  const tx = drv.queues[1];
  const { lines } = await captureLog(() => {
    drv.publish(tx, 500); // head index out of range
    drv.notify(tx);
    drv.notify(tx);
  });
  assertEquals(lines.length, 1);
  assert(lines[0].includes("needs reset"), lines[0]);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
  assertEquals(drv.readIsr(), VIRTIO_PCI_ISR_CONFIG);
  drv.setStatus(drv.status() & ~VIRTIO_CONFIG_S_NEEDS_RESET);
  assertEquals(
    drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_CONFIG_S_NEEDS_RESET,
    "only reset clears it",
  );
  drv.reset();
  drv.start(2);
  drv.submit(drv.queues[1], [{ data: new TextEncoder().encode("ok") }]);
  assertEquals(term.text(), "ok");
  assertEquals(m.irq.level(9), true);
});

Deno.test("VirtioPci enabling a queue whose size is not a power of two needs reset", async () => {
  const { drv } = consoleSetup();
  drv.negotiate(drv.deviceFeatures());
  const { lines } = await captureLog(() => drv.setupQueue(0, 100));
  assertEquals(lines.length, 1);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
  assertEquals(drv.status() & VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_FEATURES_OK);
  drv.driverOk();
  assertEquals(drv.status() & VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_CONFIG_S_NEEDS_RESET);
});

Deno.test("VirtioPci survives Linux's BAR sizing sequence and keeps working", () => {
  const { m, drv, term } = consoleSetup();
  const cmd = m.cfgRead(drv.slot, 0x04, 2);
  m.cfgWrite(drv.slot, 0x04, 2, cmd & ~0x3); // __pci_read_base: decoding off while sizing
  const bar = m.cfgRead(drv.slot, 0x10);
  m.cfgWrite(drv.slot, 0x10, 4, 0xFFFF_FFFF);
  assertEquals(m.cfgRead(drv.slot, 0x10), 0xFFFF_C000, "16 KiB, 32-bit, non-prefetchable memory");
  m.cfgWrite(drv.slot, 0x10, 4, bar);
  m.cfgWrite(drv.slot, 0x04, 2, cmd | 0x4); // back on, plus bus mastering (pci_set_master)
  drv.start(2);
  drv.submit(drv.queues[1], [{ data: new TextEncoder().encode("still here") }]);
  assertEquals(term.text(), "still here");
});
