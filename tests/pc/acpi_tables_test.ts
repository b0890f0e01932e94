/**
 * The ACPI tables against ACPI 6.5 ch. 5 as ACPICA reads them: signatures, lengths and checksums
 * (§5.2.5.3, §5.2.6), FADT fields at the offsets of table 5.9 (typed in from the spec, not from
 * our constants), and the DSDT's AML decoded by a small independent decoder written from ch. 20.
 */
import { assert, assertEquals, assertThrows } from "../assert.ts";
import { GuestMemory } from "../../lib/machine/guest_memory.ts";
import {
  amlEisaId,
  amlInteger,
  amlName,
  amlNameString,
  amlPackage,
  amlPkgLength,
} from "../../lib/pc/acpi_aml.ts";
import { ACPI_SCI_IRQ, ACPI_SLP_TYP_S5 } from "../../lib/pc/acpi_pm.ts";
import {
  ACPI_RSDP_PHYS_ADDR,
  type AcpiTables,
  buildAcpiTables,
  FADT_OFFSETS,
  writeAcpiTables,
} from "../../lib/pc/acpi_tables.ts";

const BASE = 0xE0000;
const PCI = {
  memWindowBase: 0xE000_0000,
  memWindowEnd: 0xFEC0_0000,
  routes: [{ slot: 1, pin: 0, irq: 5 }, { slot: 2, pin: 0, irq: 9 }, { slot: 3, pin: 0, irq: 10 }],
};

function tables(): AcpiTables {
  return buildAcpiTables(BASE, { reset: { port: 0xCF9, value: 0x06 }, pciHostBridge: PCI });
}

/** Reads the area back the way the OS does: by physical address. */
class Area {
  readonly view: DataView;
  constructor(readonly t: AcpiTables) {
    this.view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  }
  off(phys: number | bigint): number {
    const o = Number(phys) - this.t.basePhysAddr;
    assert(o >= 0 && o < this.t.bytes.length, `0x${phys.toString(16)} outside the ACPI area`);
    return o;
  }
  u8(phys: number): number {
    return this.view.getUint8(this.off(phys));
  }
  u16(phys: number): number {
    return this.view.getUint16(this.off(phys), true);
  }
  u32(phys: number): number {
    return this.view.getUint32(this.off(phys), true);
  }
  u64(phys: number): bigint {
    return this.view.getBigUint64(this.off(phys), true);
  }
  ascii(phys: number, len: number): string {
    return String.fromCharCode(...this.t.bytes.subarray(this.off(phys), this.off(phys) + len));
  }
  bytes(phys: number, len: number): Uint8Array {
    return this.t.bytes.subarray(this.off(phys), this.off(phys) + len);
  }
  /** A table with the common header: its Length, and its bytes summing to zero. */
  table(phys: number, signature: string): Uint8Array {
    assertEquals(this.ascii(phys, 4), signature);
    const len = this.u32(phys + 4);
    assert(len >= 36, `${signature} length ${len}`);
    const bytes = this.bytes(phys, len);
    assertEquals(sum(bytes), 0, `${signature} checksum`);
    return bytes;
  }
}

function ascii(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

function sum(bytes: Uint8Array): number {
  return bytes.reduce((a, b) => (a + b) & 0xFF, 0);
}

Deno.test("buildAcpiTables RSDP: signature, revision 2, both checksums, RSDT and XSDT (§5.2.5.3)", () => {
  const a = new Area(tables());
  const rsdp = a.t.rsdpPhysAddr;
  assertEquals(rsdp, BASE);
  assertEquals(a.ascii(rsdp, 8), "RSD PTR ");
  assertEquals(sum(a.bytes(rsdp, 20)), 0, "ACPI 1.0 checksum over 20 bytes");
  assertEquals(a.u8(rsdp + 15), 2, "Revision");
  assertEquals(a.u32(rsdp + 20), 36, "Length");
  assertEquals(sum(a.bytes(rsdp, 36)), 0, "extended checksum over Length bytes");
  assertEquals(a.ascii(rsdp + 9, 6), "LGUEST");
  const rsdt = a.table(a.u32(rsdp + 16), "RSDT");
  const xsdt = a.table(Number(a.u64(rsdp + 24)), "XSDT");
  assertEquals(rsdt.length, 36 + 4);
  assertEquals(xsdt.length, 36 + 8);
  const fadtViaRsdt = new DataView(rsdt.buffer, rsdt.byteOffset).getUint32(36, true);
  const fadtViaXsdt = new DataView(xsdt.buffer, xsdt.byteOffset).getBigUint64(36, true);
  assertEquals(BigInt(fadtViaRsdt), fadtViaXsdt);
  assertEquals(fadtViaRsdt, a.t.tablePhysAddrs.FACP);
});

Deno.test("buildAcpiTables FADT: 276 bytes, revision 6.5, fields at table 5.9's offsets", () => {
  const a = new Area(tables());
  const f = a.t.tablePhysAddrs.FACP;
  assertEquals(a.table(f, "FACP").length, 276);
  assertEquals(a.u8(f + 8), 6, "FADT Major Version");
  assertEquals(a.u8(f + 131), 5, "FADT Minor Version");
  // Offsets typed in from ACPI 6.5 table 5.9.
  assertEquals(a.u32(f + 36), 0, "FIRMWARE_CTRL: zero, X_FIRMWARE_CTRL is used");
  assertEquals(a.u32(f + 40), 0, "DSDT: zero, X_DSDT is used");
  assertEquals(a.u16(f + 46), ACPI_SCI_IRQ, "SCI_INT");
  assertEquals(a.u32(f + 48), 0, "SMI_CMD: none, ACPI mode is fixed");
  assertEquals([a.u8(f + 52), a.u8(f + 53)], [0, 0], "ACPI_ENABLE/ACPI_DISABLE");
  assertEquals(a.u32(f + 56), 0x600, "PM1a_EVT_BLK");
  assertEquals(a.u32(f + 60), 0, "PM1b_EVT_BLK");
  assertEquals(a.u32(f + 64), 0x604, "PM1a_CNT_BLK");
  assertEquals(a.u32(f + 68), 0, "PM1b_CNT_BLK");
  assertEquals(a.u32(f + 72), 0, "PM2_CNT_BLK");
  assertEquals(a.u32(f + 76), 0x608, "PM_TMR_BLK");
  assertEquals([a.u32(f + 80), a.u32(f + 84)], [0, 0], "GPE0_BLK/GPE1_BLK");
  assertEquals([a.u8(f + 88), a.u8(f + 89), a.u8(f + 90), a.u8(f + 91)], [4, 2, 0, 4], "block lengths");
  assertEquals([a.u8(f + 92), a.u8(f + 93)], [0, 0], "GPE0_BLK_LEN/GPE1_BLK_LEN");
  assert(a.u16(f + 96) > 100 && a.u16(f + 98) > 1000, "P_LVL2_LAT/P_LVL3_LAT say no C2/C3");
  assertEquals(a.u8(f + 108), 0x32, "CENTURY");
  // IAPC_BOOT_ARCH: LEGACY_DEVICES | 8042 | VGA Not Present | MSI Not Supported | PCIe ASPM Controls.
  assertEquals(a.u16(f + 109), 0b11111);
  // Flags: WBINVD | PROC_C1 | SLP_BUTTON | FIX_RTC | RESET_REG_SUP; PWR_BUTTON clear (fixed button).
  assertEquals(a.u32(f + 112), (1 << 0) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 10));
  // RESET_REG: system I/O, 8 bits at offset 0, byte access, port 0xCF9; RESET_VALUE 6.
  assertEquals([...a.bytes(f + 116, 4)], [1, 8, 0, 1]);
  assertEquals(a.u64(f + 120), 0xCF9n);
  assertEquals(a.u8(f + 128), 0x06);
  assertEquals(a.u64(f + 132), BigInt(a.t.tablePhysAddrs.FACS), "X_FIRMWARE_CTRL");
  assertEquals(a.u64(f + 140), BigInt(a.t.tablePhysAddrs.DSDT), "X_DSDT");
  // X_ blocks: {space 1, bit width, offset 0, access size} then the port, equal to the 32-bit fields.
  const gas = (at: number) => [...a.bytes(f + at, 4), a.u64(f + at + 4)];
  assertEquals(gas(148), [1, 32, 0, 2, 0x600n], "X_PM1a_EVT_BLK: two 16-bit registers");
  assertEquals(gas(160), [0, 0, 0, 0, 0n], "X_PM1b_EVT_BLK");
  assertEquals(gas(172), [1, 16, 0, 2, 0x604n], "X_PM1a_CNT_BLK");
  assertEquals(gas(208), [1, 32, 0, 3, 0x608n], "X_PM_TMR_BLK");
  assertEquals(gas(220), [0, 0, 0, 0, 0n], "X_GPE0_BLK");
  assertEquals(gas(244), [0, 0, 0, 0, 0n], "SLEEP_CONTROL_REG (hardware-reduced only)");
  assertEquals(a.u64(f + 268), 0n, "Hypervisor Vendor Identity");
});

Deno.test("FADT_OFFSETS match ACPI 6.5 table 5.9", () => {
  // The running offset of each field, from the spec's field lengths in order.
  const lengths: [keyof typeof FADT_OFFSETS | null, number][] = [
    [null, 36],
    ["FIRMWARE_CTRL", 4],
    ["DSDT", 4],
    [null, 1],
    ["Preferred_PM_Profile", 1],
    ["SCI_INT", 2],
    ["SMI_CMD", 4],
    ["ACPI_ENABLE", 1],
    ["ACPI_DISABLE", 1],
    ["S4BIOS_REQ", 1],
    ["PSTATE_CNT", 1],
    ["PM1a_EVT_BLK", 4],
    ["PM1b_EVT_BLK", 4],
    ["PM1a_CNT_BLK", 4],
    ["PM1b_CNT_BLK", 4],
    ["PM2_CNT_BLK", 4],
    ["PM_TMR_BLK", 4],
    ["GPE0_BLK", 4],
    ["GPE1_BLK", 4],
    ["PM1_EVT_LEN", 1],
    ["PM1_CNT_LEN", 1],
    ["PM2_CNT_LEN", 1],
    ["PM_TMR_LEN", 1],
    ["GPE0_BLK_LEN", 1],
    ["GPE1_BLK_LEN", 1],
    ["GPE1_BASE", 1],
    ["CST_CNT", 1],
    ["P_LVL2_LAT", 2],
    ["P_LVL3_LAT", 2],
    ["FLUSH_SIZE", 2],
    ["FLUSH_STRIDE", 2],
    ["DUTY_OFFSET", 1],
    ["DUTY_WIDTH", 1],
    ["DAY_ALRM", 1],
    ["MON_ALRM", 1],
    ["CENTURY", 1],
    ["IAPC_BOOT_ARCH", 2],
    [null, 1],
    ["Flags", 4],
    ["RESET_REG", 12],
    ["RESET_VALUE", 1],
    ["ARM_BOOT_ARCH", 2],
    ["FADT_Minor_Version", 1],
    ["X_FIRMWARE_CTRL", 8],
    ["X_DSDT", 8],
    ["X_PM1a_EVT_BLK", 12],
    ["X_PM1b_EVT_BLK", 12],
    ["X_PM1a_CNT_BLK", 12],
    ["X_PM1b_CNT_BLK", 12],
    ["X_PM2_CNT_BLK", 12],
    ["X_PM_TMR_BLK", 12],
    ["X_GPE0_BLK", 12],
    ["X_GPE1_BLK", 12],
    ["SLEEP_CONTROL_REG", 12],
    ["SLEEP_STATUS_REG", 12],
    ["Hypervisor_Vendor_Identity", 8],
  ];
  const expected: Record<string, number> = {};
  let at = 0;
  for (const [name, len] of lengths) {
    if (name) expected[name] = at;
    at += len;
  }
  assertEquals(at, 276);
  assertEquals({ ...FADT_OFFSETS }, expected);
});

Deno.test("buildAcpiTables FACS: 64 bytes, 64-byte aligned, version 2, global lock free (§5.2.10)", () => {
  const a = new Area(tables());
  const facs = a.t.tablePhysAddrs.FACS;
  assertEquals(facs % 64, 0);
  assertEquals(a.ascii(facs, 4), "FACS");
  assertEquals(a.u32(facs + 4), 64);
  assertEquals(a.u32(facs + 12), 0, "Firmware_Waking_Vector");
  assertEquals(a.u32(facs + 16), 0, "Global_Lock");
  assertEquals(a.u8(facs + 32), 2, "Version");
});

Deno.test("buildAcpiTables places every table inside the area without overlap", () => {
  const t = tables();
  const a = new Area(t);
  const spans = [[t.rsdpPhysAddr, 36]];
  for (const [sig, phys] of Object.entries(t.tablePhysAddrs)) {
    spans.push([phys, sig === "FACS" ? 64 : a.u32(phys + 4)]);
    a.off(phys + spans[spans.length - 1][1] - 1);
  }
  spans.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) assert(spans[i - 1][0] + spans[i - 1][1] <= spans[i][0], "overlap");
});

// ---- A small AML decoder, written from ACPI 6.5 ch. 20, for the subset a DSDT of data uses. ----

type AmlValue = bigint | AmlValue[] | { buffer: Uint8Array };

class AmlDecoder {
  at = 0;
  readonly names = new Map<string, AmlValue>();
  constructor(readonly aml: Uint8Array) {}

  /** PkgLength: returns the end offset of the package that starts at the PkgLength byte. */
  pkgEnd(): number {
    const start = this.at;
    const lead = this.aml[this.at++];
    const follow = lead >> 6;
    if (follow === 0) return start + (lead & 0x3F);
    assertEquals(lead & 0x30, 0, "PkgLength bits 5-4 must be zero");
    let len = lead & 0x0F;
    for (let i = 0; i < follow; i++) len |= this.aml[this.at++] << (4 + 8 * i);
    return start + len;
  }

  nameString(scope: string): string {
    let prefix = scope;
    if (this.aml[this.at] === 0x5C) {
      prefix = "";
      this.at++;
    }
    let count = 1;
    if (this.aml[this.at] === 0x2E) {
      count = 2;
      this.at++;
    } else if (this.aml[this.at] === 0x2F) {
      count = this.aml[this.at + 1];
      this.at += 2;
    }
    const segs: string[] = [];
    for (let i = 0; i < count; i++) {
      const seg = String.fromCharCode(...this.aml.subarray(this.at, this.at + 4));
      assert(/^[A-Z_][A-Z0-9_]{3}$/.test(seg), `NameSeg ${JSON.stringify(seg)}`);
      segs.push(seg);
      this.at += 4;
    }
    return "\\" + [prefix.replace(/^\\/, ""), ...segs].filter((s) => s).join(".");
  }

  integer(bytes: number): bigint {
    let v = 0n;
    for (let i = 0; i < bytes; i++) v |= BigInt(this.aml[this.at++]) << BigInt(8 * i);
    return v;
  }

  dataObject(): AmlValue {
    const op = this.aml[this.at++];
    switch (op) {
      case 0x00:
        return 0n;
      case 0x01:
        return 1n;
      case 0xFF:
        return 0xFFFF_FFFF_FFFF_FFFFn;
      case 0x0A:
        return this.integer(1);
      case 0x0B:
        return this.integer(2);
      case 0x0C:
        return this.integer(4);
      case 0x0E:
        return this.integer(8);
      case 0x12: {
        const end = this.pkgEnd();
        const count = this.aml[this.at++];
        const elements: AmlValue[] = [];
        while (this.at < end) elements.push(this.dataObject());
        assertEquals(this.at, end, "package ends where its PkgLength says");
        assertEquals(elements.length, count, "NumElements");
        return elements;
      }
      case 0x11: {
        const end = this.pkgEnd();
        const size = Number(this.dataObject() as bigint);
        const buffer = this.aml.slice(this.at, end);
        assertEquals(buffer.length, size, "BufferSize");
        this.at = end;
        return { buffer };
      }
    }
    throw new Error(`unexpected data opcode 0x${op.toString(16)} at ${this.at - 1}`);
  }

  termList(end: number, scope: string): void {
    while (this.at < end) {
      const op = this.aml[this.at++];
      if (op === 0x08) {
        const name = this.nameString(scope);
        this.names.set(name, this.dataObject());
      } else if (op === 0x10 || (op === 0x5B && this.aml[this.at] === 0x82)) {
        if (op === 0x5B) this.at++;
        const pkgEnd = this.pkgEnd();
        const name = this.nameString(scope);
        if (op !== 0x10) this.names.set(name, "device" as unknown as AmlValue);
        this.termList(pkgEnd, name);
        assertEquals(this.at, pkgEnd);
      } else {
        throw new Error(`unexpected opcode 0x${op.toString(16)} at ${this.at - 1}`);
      }
    }
  }
}

function decodeDsdt(t: AcpiTables): Map<string, AmlValue> {
  const a = new Area(t);
  const dsdt = a.table(t.tablePhysAddrs.DSDT, "DSDT");
  assertEquals(dsdt[8], 2, "DSDT revision 2: 64-bit integers");
  const decoder = new AmlDecoder(dsdt.subarray(36));
  decoder.termList(dsdt.length - 36, "\\");
  return decoder.names;
}

Deno.test("buildAcpiTables DSDT: \\_S5 is Package {5, 5, 0, 0}, hand-encoded bytes included", () => {
  const bare = buildAcpiTables(BASE);
  const names = decodeDsdt(bare);
  assertEquals(names.get("\\_S5_"), [BigInt(ACPI_SLP_TYP_S5), BigInt(ACPI_SLP_TYP_S5), 0n, 0n]);
  // NameOp, \_S5_, PackageOp, PkgLength 8 (itself + NumElements + 6 bytes), 4 elements:
  // BytePrefix 5, BytePrefix 5, Zero, Zero.
  const expected = [0x08, 0x5C, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00];
  const a = new Area(bare);
  assertEquals([...a.bytes(bare.tablePhysAddrs.DSDT + 36, expected.length)], expected);
  assertEquals(a.u32(bare.tablePhysAddrs.DSDT + 4), 36 + expected.length);
});

Deno.test("buildAcpiTables DSDT: \\_SB.PCI0 is a PNP0A03 bridge with a _PRT of 8259 lines", () => {
  const names = decodeDsdt(tables());
  assertEquals(names.get("\\_SB_.PCI0"), "device" as unknown as AmlValue);
  assertEquals(names.get("\\_SB_.PCI0._HID"), 0x030AD041n, 'EisaId("PNP0A03")');
  // Package {Address (slot << 16 | 0xFFFF), Pin, Source 0, SourceIndex = the IRQ} (§6.2.13).
  assertEquals(names.get("\\_SB_.PCI0._PRT"), [
    [0x1FFFFn, 0n, 0n, 5n],
    [0x2FFFFn, 0n, 0n, 9n],
    [0x3FFFFn, 0n, 0n, 10n],
  ]);
  assertEquals(names.get("\\_S5_"), [5n, 5n, 0n, 0n]);
});

Deno.test("buildAcpiTables DSDT: _CRS lists bus 0-255, I/O around 0xCF8 and the BAR window (§6.4.3.5)", () => {
  const crs = decodeDsdt(tables()).get("\\_SB_.PCI0._CRS") as { buffer: Uint8Array };
  const b = crs.buffer;
  const view = new DataView(b.buffer, b.byteOffset);
  const windows: { type: number; flags: number; min: number; max: number; len: number }[] = [];
  let at = 0;
  for (;;) {
    const tag = b[at];
    if (tag === 0x79) {
      assertEquals(at + 2, b.length, "End Tag is last");
      break;
    }
    const len = view.getUint16(at + 1, true);
    const size = tag === 0x88 ? 2 : 4;
    assert(tag === 0x88 || tag === 0x87, `descriptor 0x${tag.toString(16)}`);
    assertEquals(len, size === 2 ? 0x0D : 0x17, "descriptor length");
    const field = (i: number) =>
      size === 2 ? view.getUint16(at + 6 + 2 * i, true) : view.getUint32(at + 6 + 4 * i, true);
    assertEquals(b[at + 4], 0x0C, "producer, positive decode, min and max fixed");
    assertEquals(field(0), 0, "_GRA");
    assertEquals(field(3), 0, "_TRA");
    windows.push({ type: b[at + 3], flags: b[at + 5], min: field(1), max: field(2), len: field(4) });
    at += 3 + len;
  }
  assertEquals(windows, [
    { type: 2, flags: 0, min: 0, max: 0xFF, len: 0x100 },
    { type: 1, flags: 3, min: 0, max: 0xCF7, len: 0xCF8 },
    { type: 1, flags: 3, min: 0xD00, max: 0xFFFF, len: 0xF300 },
    { type: 0, flags: 1, min: 0xE000_0000, max: 0xFEBF_FFFF, len: 0x1EC0_0000 },
  ]);
});

Deno.test("amlPkgLength uses one byte up to 63 and counts its own bytes (§20.2.4)", () => {
  assertEquals(amlPkgLength(0), [1]);
  assertEquals(amlPkgLength(62), [63]);
  assertEquals(amlPkgLength(63), [0x40 | (65 & 0xF), 65 >> 4]);
  assertEquals(amlPkgLength(4093), [0x40 | 0xF, 0xFF]); // 4095 in two bytes
  assertEquals(amlPkgLength(4094), [0x80 | (4097 & 0xF), (4097 >> 4) & 0xFF, 4097 >> 12]);
});

Deno.test("amlInteger, amlNameString and amlEisaId encode as ASL compilers do", () => {
  assertEquals(amlInteger(0), [0x00]);
  assertEquals(amlInteger(1), [0x01]);
  assertEquals(amlInteger(5), [0x0A, 5]);
  assertEquals(amlInteger(0x1234), [0x0B, 0x34, 0x12]);
  assertEquals(amlInteger(0x1FFFF), [0x0C, 0xFF, 0xFF, 0x01, 0x00]);
  assertEquals(amlInteger(2n ** 40n), [0x0E, 0, 0, 0, 0, 0, 1, 0, 0]);
  assertEquals(amlNameString("\\_SB"), [0x5C, 0x5F, 0x53, 0x42, 0x5F]);
  assertEquals(amlNameString("\\_SB.PCI0"), [0x5C, 0x2E, ...ascii("_SB_PCI0")]);
  assertEquals(amlNameString("A.B.C").slice(0, 2), [0x2F, 3]);
  assertThrows(() => amlNameString("pci0"));
  assertThrows(() => amlNameString("TOOLONG"));
  // EisaId("PNP0A03") compiles to DWordConst 0x030AD041 (bytes 41 D0 0A 03).
  assertEquals(amlEisaId("PNP0A03"), [0x0C, 0x41, 0xD0, 0x0A, 0x03]);
  assertEquals(amlName("_S5", amlPackage([amlInteger(5)])), [
    0x08,
    ...ascii("_S5_"),
    0x12,
    0x04,
    0x01,
    0x0A,
    0x05,
  ]);
});

Deno.test("writeAcpiTables puts the RSDP where Linux's scan of 0xE0000-0xFFFFF finds it", () => {
  const mem = new GuestMemory(2 * 1024 * 1024);
  writeAcpiTables(mem, { pciHostBridge: PCI });
  // acpi_tb_scan_memory_for_rsdp: 16-byte steps, signature, then the 20-byte checksum (and 36 for v2).
  let found = -1;
  for (let p = 0xE0000; p < 0x100000 && found < 0; p += 16) {
    if (String.fromCharCode(...mem.u8.subarray(p, p + 8)) !== "RSD PTR ") continue;
    if (sum(mem.u8.subarray(p, p + 20)) === 0 && sum(mem.u8.subarray(p, p + 36)) === 0) found = p;
  }
  assertEquals(found, ACPI_RSDP_PHYS_ADDR);
});

Deno.test("buildAcpiTables refuses a misaligned base and a bad _PRT route", () => {
  assertThrows(() => buildAcpiTables(0xE0008));
  assertThrows(() =>
    buildAcpiTables(BASE, { pciHostBridge: { ...PCI, routes: [{ slot: 32, pin: 0, irq: 5 }] } })
  );
  assertThrows(() =>
    buildAcpiTables(BASE, { pciHostBridge: { ...PCI, routes: [{ slot: 1, pin: 4, irq: 5 }] } })
  );
});
