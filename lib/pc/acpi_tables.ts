/**
 * The ACPI tables a PC BIOS leaves in the 0xE0000 segment (ACPI 6.5 ch. 5): an RSDP (revision 2)
 * pointing at an RSDT and an XSDT, a FADT (6.5) describing AcpiPm's fixed registers, a FACS, and a
 * DSDT whose AML names the PCI host bridge (bus range, windows and a _PRT of 8259 lines: with ACPI
 * on, Linux scans PCI only below a PNP0A03 device) and \_S5 for soft-off. Left out on purpose: a
 * MADT (no local or I/O APIC, so Linux stays in PIC mode), HPET, MCFG, processor objects, S1-S4.
 */
import type { GuestMemory } from "../machine/guest_memory.ts";
import {
  type Aml,
  amlBuffer,
  amlDevice,
  amlEisaId,
  amlInteger,
  amlName,
  amlPackage,
  amlScope,
} from "./acpi_aml.ts";
import {
  ACPI_PM1_CNT_LEN,
  ACPI_PM1_EVT_LEN,
  ACPI_PM1A_CNT_BLK,
  ACPI_PM1A_EVT_BLK,
  ACPI_PM_TMR_BLK,
  ACPI_PM_TMR_LEN,
  ACPI_SCI_IRQ,
  ACPI_SLP_TYP_S5,
} from "./acpi_pm.ts";

/** Where the tables go: the E segment, reserved in our e820 map and scanned by Linux for the RSDP. */
export const ACPI_TABLES_PHYS_ADDR = 0xE0000;
/** The RSDP comes first, 16-byte aligned as §5.2.5.1 requires of the BIOS read-only area. */
export const ACPI_RSDP_PHYS_ADDR = ACPI_TABLES_PHYS_ADDR;
const ACPI_TABLES_MAX_BYTES = 0x10000;

const OEM_ID = "LGUEST";
const OEM_TABLE_ID = "LGUESTTS";
const OEM_REVISION = 1;
const CREATOR_ID = "LGTS";
const CREATOR_REVISION = 1;

/** Common table header (§5.2.6). */
export const HEADER_SIZE = 36;
export const RSDP_SIZE = 36;
export const FADT_SIZE = 276;
export const FACS_SIZE = 64;
const FADT_REVISION = 6;
const FADT_MINOR_REVISION = 5;
/** FACS version 2 (§5.2.10); DSDT revision 2 means 64-bit AML integers (§5.2.11.1). */
const FACS_VERSION = 2;
const DSDT_REVISION = 2;

/** RSDP field offsets (§5.2.5.3). */
export const RSDP_OFFSETS = Object.freeze({
  Signature: 0,
  Checksum: 8,
  OEMID: 9,
  Revision: 15,
  RsdtAddress: 16,
  Length: 20,
  XsdtAddress: 24,
  ExtendedChecksum: 32,
});

/** Table header field offsets (§5.2.6, table 5.4). */
export const HEADER_OFFSETS = Object.freeze({
  Signature: 0,
  Length: 4,
  Revision: 8,
  Checksum: 9,
  OEMID: 10,
  OEM_Table_ID: 16,
  OEM_Revision: 24,
  Creator_ID: 28,
  Creator_Revision: 32,
});

/** FADT field offsets (§5.2.9, table 5.9), with the spec's names. */
export const FADT_OFFSETS = Object.freeze({
  FIRMWARE_CTRL: 36,
  DSDT: 40,
  Preferred_PM_Profile: 45,
  SCI_INT: 46,
  SMI_CMD: 48,
  ACPI_ENABLE: 52,
  ACPI_DISABLE: 53,
  S4BIOS_REQ: 54,
  PSTATE_CNT: 55,
  PM1a_EVT_BLK: 56,
  PM1b_EVT_BLK: 60,
  PM1a_CNT_BLK: 64,
  PM1b_CNT_BLK: 68,
  PM2_CNT_BLK: 72,
  PM_TMR_BLK: 76,
  GPE0_BLK: 80,
  GPE1_BLK: 84,
  PM1_EVT_LEN: 88,
  PM1_CNT_LEN: 89,
  PM2_CNT_LEN: 90,
  PM_TMR_LEN: 91,
  GPE0_BLK_LEN: 92,
  GPE1_BLK_LEN: 93,
  GPE1_BASE: 94,
  CST_CNT: 95,
  P_LVL2_LAT: 96,
  P_LVL3_LAT: 98,
  FLUSH_SIZE: 100,
  FLUSH_STRIDE: 102,
  DUTY_OFFSET: 104,
  DUTY_WIDTH: 105,
  DAY_ALRM: 106,
  MON_ALRM: 107,
  CENTURY: 108,
  IAPC_BOOT_ARCH: 109,
  Flags: 112,
  RESET_REG: 116,
  RESET_VALUE: 128,
  ARM_BOOT_ARCH: 129,
  FADT_Minor_Version: 131,
  X_FIRMWARE_CTRL: 132,
  X_DSDT: 140,
  X_PM1a_EVT_BLK: 148,
  X_PM1b_EVT_BLK: 160,
  X_PM1a_CNT_BLK: 172,
  X_PM1b_CNT_BLK: 184,
  X_PM2_CNT_BLK: 196,
  X_PM_TMR_BLK: 208,
  X_GPE0_BLK: 220,
  X_GPE1_BLK: 232,
  SLEEP_CONTROL_REG: 244,
  SLEEP_STATUS_REG: 256,
  Hypervisor_Vendor_Identity: 268,
});

/** FACS field offsets (§5.2.10, table 5.14). */
export const FACS_OFFSETS = Object.freeze({
  Signature: 0,
  Length: 4,
  Hardware_Signature: 8,
  Firmware_Waking_Vector: 12,
  Global_Lock: 16,
  Flags: 20,
  X_Firmware_Waking_Vector: 24,
  Version: 32,
  OSPM_Flags: 36,
});

// FADT Flags (table 5.10).
export const FADT_WBINVD = 1 << 0;
export const FADT_PROC_C1 = 1 << 2;
export const FADT_PWR_BUTTON = 1 << 4;
export const FADT_SLP_BUTTON = 1 << 5;
export const FADT_FIX_RTC = 1 << 6;
export const FADT_TMR_VAL_EXT = 1 << 8;
export const FADT_RESET_REG_SUP = 1 << 10;
export const FADT_HW_REDUCED_ACPI = 1 << 20;
// IA-PC boot architecture flags (table 5.11).
export const IAPC_LEGACY_DEVICES = 1 << 0;
export const IAPC_8042 = 1 << 1;
export const IAPC_VGA_NOT_PRESENT = 1 << 2;
export const IAPC_MSI_NOT_SUPPORTED = 1 << 3;
export const IAPC_PCIE_ASPM_CONTROLS = 1 << 4;

/** Generic Address Structure (§5.2.3.2) fields: address space and access size. */
const GAS_SYSTEM_IO = 1;
/** Access sizes: 1 byte, 2 word, 3 dword. */
const GAS_ACCESS_BYTE = 1;
const GAS_ACCESS_WORD = 2;
const GAS_ACCESS_DWORD = 3;

/** C2/C3 latencies above these say "not supported" (table 5.9). */
const P_LVL2_LAT_NONE = 101;
const P_LVL3_LAT_NONE = 1001;
/** The IBM CMOS century byte, which RtcCmos keeps. */
const RTC_CENTURY_INDEX = 0x32;

/** One _PRT entry: INTx `pin` (0 = INTA#) of PCI device `slot` on bus 0 drives 8259 line `irq`. */
export interface PciIrqRoute {
  slot: number;
  pin: number;
  irq: number;
}

/** The PCI host bridge as the DSDT describes it: bus 0, ports, a memory window for BARs, INTx. */
export interface AcpiPciHostBridge {
  /** The window BARs are placed in: [memWindowBase, memWindowEnd). */
  memWindowBase: number;
  memWindowEnd: number;
  routes: PciIrqRoute[];
}

export interface AcpiTablesOptions {
  /** The SCI's 8259 line (default ACPI_SCI_IRQ, which AcpiPm drives). */
  sciIrq?: number;
  /** A byte port whose write of `value` resets the machine (FADT RESET_REG), e.g. 0xCF9 and 0x06. */
  reset?: { port: number; value: number };
  /** Describe the PCI host bridge; without it Linux with ACPI finds no PCI bus at all. */
  pciHostBridge?: AcpiPciHostBridge;
}

/** Where each table went, for --verbose and tests. */
export interface AcpiTables {
  /** The whole area, to be copied to `basePhysAddr`. */
  bytes: Uint8Array;
  basePhysAddr: number;
  rsdpPhysAddr: number;
  /** Physical address of each table by signature (RSDT, XSDT, FACP, FACS, DSDT). */
  tablePhysAddrs: Record<string, number>;
}

/** Builds the tables to live at `basePhysAddr` (16-byte aligned, below 4 GiB). */
export function buildAcpiTables(basePhysAddr: number, options: AcpiTablesOptions = {}): AcpiTables {
  if (basePhysAddr % 16 !== 0 || basePhysAddr < 0 || basePhysAddr > 0xFFFF_FFFF - ACPI_TABLES_MAX_BYTES) {
    throw new RangeError(`ACPI tables at 0x${basePhysAddr.toString(16)} must be 16-byte aligned below 4 GiB`);
  }
  const dsdt = buildDsdt(options.pciHostBridge);
  // Layout: RSDP, RSDT, XSDT, FACS (64-byte aligned, §5.2.10), FADT, DSDT.
  const at = { RSDP: 0, RSDT: 0, XSDT: 0, FACS: 0, FACP: 0, DSDT: 0 };
  let next = 0;
  const place = (name: keyof typeof at, size: number, align: number) => {
    next = Math.ceil(next / align) * align;
    at[name] = next;
    next += size;
  };
  place("RSDP", RSDP_SIZE, 16);
  place("RSDT", HEADER_SIZE + 4, 16);
  place("XSDT", HEADER_SIZE + 8, 16);
  place("FACS", FACS_SIZE, 64);
  place("FACP", FADT_SIZE, 16);
  place("DSDT", dsdt.length, 16);
  if (next > ACPI_TABLES_MAX_BYTES) throw new RangeError(`ACPI tables need ${next} bytes`);

  const bytes = new Uint8Array(next);
  const view = new DataView(bytes.buffer);
  const phys = (name: keyof typeof at) => basePhysAddr + at[name];

  // RSDT and XSDT: one entry each, the FADT (which leads to the FACS and DSDT).
  writeHeader(bytes, at.RSDT, "RSDT", HEADER_SIZE + 4, 1);
  view.setUint32(at.RSDT + HEADER_SIZE, phys("FACP"), true);
  finishTable(bytes, at.RSDT, HEADER_SIZE + 4);
  writeHeader(bytes, at.XSDT, "XSDT", HEADER_SIZE + 8, 1);
  view.setBigUint64(at.XSDT + HEADER_SIZE, BigInt(phys("FACP")), true);
  finishTable(bytes, at.XSDT, HEADER_SIZE + 8);

  writeFacs(bytes, at.FACS);
  writeFadt(bytes, at.FACP, phys("FACS"), phys("DSDT"), options);

  writeHeader(bytes, at.DSDT, "DSDT", dsdt.length, DSDT_REVISION);
  bytes.set(dsdt.subarray(HEADER_SIZE), at.DSDT + HEADER_SIZE);
  finishTable(bytes, at.DSDT, dsdt.length);

  // RSDP (§5.2.5.3): the first checksum covers the ACPI 1.0 part (20 bytes), the second all 36.
  writeAscii(bytes, at.RSDP + RSDP_OFFSETS.Signature, "RSD PTR ");
  writeAscii(bytes, at.RSDP + RSDP_OFFSETS.OEMID, OEM_ID);
  bytes[at.RSDP + RSDP_OFFSETS.Revision] = 2;
  view.setUint32(at.RSDP + RSDP_OFFSETS.RsdtAddress, phys("RSDT"), true);
  view.setUint32(at.RSDP + RSDP_OFFSETS.Length, RSDP_SIZE, true);
  view.setBigUint64(at.RSDP + RSDP_OFFSETS.XsdtAddress, BigInt(phys("XSDT")), true);
  bytes[at.RSDP + RSDP_OFFSETS.Checksum] = checksumByte(bytes.subarray(at.RSDP, at.RSDP + 20));
  bytes[at.RSDP + RSDP_OFFSETS.ExtendedChecksum] = checksumByte(bytes.subarray(at.RSDP, at.RSDP + RSDP_SIZE));

  const tablePhysAddrs: Record<string, number> = {};
  for (const name of ["RSDT", "XSDT", "FACS", "FACP", "DSDT"] as const) tablePhysAddrs[name] = phys(name);
  return { bytes, basePhysAddr, rsdpPhysAddr: phys("RSDP"), tablePhysAddrs };
}

/** Builds the tables and copies them into guest RAM at `basePhysAddr` (default the E segment). */
export function writeAcpiTables(
  mem: GuestMemory,
  options: AcpiTablesOptions = {},
  basePhysAddr = ACPI_TABLES_PHYS_ADDR,
): AcpiTables {
  const tables = buildAcpiTables(basePhysAddr, options);
  mem.write(basePhysAddr, tables.bytes, "ACPI tables");
  return tables;
}

/** The byte that makes `bytes` sum to zero mod 256, given that it is currently zero. */
function checksumByte(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum += b;
  return (256 - (sum & 0xFF)) & 0xFF;
}

function writeAscii(bytes: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
}

function writeHeader(
  bytes: Uint8Array,
  at: number,
  signature: string,
  length: number,
  revision: number,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const H = HEADER_OFFSETS;
  writeAscii(bytes, at + H.Signature, signature);
  view.setUint32(at + H.Length, length, true);
  bytes[at + H.Revision] = revision;
  writeAscii(bytes, at + H.OEMID, OEM_ID);
  writeAscii(bytes, at + H.OEM_Table_ID, OEM_TABLE_ID);
  view.setUint32(at + H.OEM_Revision, OEM_REVISION, true);
  writeAscii(bytes, at + H.Creator_ID, CREATOR_ID);
  view.setUint32(at + H.Creator_Revision, CREATOR_REVISION, true);
}

/** Sets the header checksum so the whole table sums to zero (§5.2.6). */
function finishTable(bytes: Uint8Array, at: number, length: number): void {
  bytes[at + HEADER_OFFSETS.Checksum] = 0;
  bytes[at + HEADER_OFFSETS.Checksum] = checksumByte(bytes.subarray(at, at + length));
}

/** A system I/O port register block of `widthBytes`, accessed `accessBytes` at a time (§5.2.3.2). */
function writeIoGas(
  view: DataView,
  at: number,
  port: number,
  widthBytes: number,
  accessBytes = widthBytes,
): void {
  view.setUint8(at, GAS_SYSTEM_IO);
  view.setUint8(at + 1, widthBytes * 8);
  view.setUint8(at + 2, 0);
  view.setUint8(
    at + 3,
    accessBytes === 1 ? GAS_ACCESS_BYTE : accessBytes === 2 ? GAS_ACCESS_WORD : GAS_ACCESS_DWORD,
  );
  view.setBigUint64(at + 4, BigInt(port), true);
}

/**
 * The FADT. The register blocks are given both ways, 32-bit port and X_ GAS, equal, as ACPICA likes
 * them; the FACS and DSDT only through X_ fields, as §5.2.9 requires when those are set. The GAS
 * for PM1a_EVT_BLK covers the whole block, accessed a word at a time: its status and enable halves
 * are 16-bit registers (ACPICA splits the block itself, from its bit width).
 */
function writeFadt(
  bytes: Uint8Array,
  at: number,
  facsPhysAddr: number,
  dsdtPhysAddr: number,
  options: AcpiTablesOptions,
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const F = FADT_OFFSETS;
  writeHeader(bytes, at, "FACP", FADT_SIZE, FADT_REVISION);
  view.setUint16(at + F.SCI_INT, options.sciIrq ?? ACPI_SCI_IRQ, true);
  // SMI_CMD = 0: no SMI mode switch, the hardware is always in ACPI mode (SCI_EN reads 1).
  view.setUint32(at + F.PM1a_EVT_BLK, ACPI_PM1A_EVT_BLK, true);
  view.setUint32(at + F.PM1a_CNT_BLK, ACPI_PM1A_CNT_BLK, true);
  view.setUint32(at + F.PM_TMR_BLK, ACPI_PM_TMR_BLK, true);
  bytes[at + F.PM1_EVT_LEN] = ACPI_PM1_EVT_LEN;
  bytes[at + F.PM1_CNT_LEN] = ACPI_PM1_CNT_LEN;
  bytes[at + F.PM_TMR_LEN] = ACPI_PM_TMR_LEN;
  view.setUint16(at + F.P_LVL2_LAT, P_LVL2_LAT_NONE, true);
  view.setUint16(at + F.P_LVL3_LAT, P_LVL3_LAT_NONE, true);
  bytes[at + F.CENTURY] = RTC_CENTURY_INDEX;
  // Legacy devices (UART, RTC, PIT) and an 8042 are there; VGA, MSI (no APIC) and PCIe are not.
  view.setUint16(
    at + F.IAPC_BOOT_ARCH,
    IAPC_LEGACY_DEVICES | IAPC_8042 | IAPC_VGA_NOT_PRESENT | IAPC_MSI_NOT_SUPPORTED | IAPC_PCIE_ASPM_CONTROLS,
    true,
  );
  // A fixed-feature power button (PWR_BUTTON clear), no sleep button, no RTC wake status.
  let flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_FIX_RTC;
  if (options.reset) {
    flags |= FADT_RESET_REG_SUP;
    writeIoGas(view, at + F.RESET_REG, options.reset.port, 1);
    bytes[at + F.RESET_VALUE] = options.reset.value;
  }
  view.setUint32(at + F.Flags, flags, true);
  bytes[at + F.FADT_Minor_Version] = FADT_MINOR_REVISION;
  view.setBigUint64(at + F.X_FIRMWARE_CTRL, BigInt(facsPhysAddr), true);
  view.setBigUint64(at + F.X_DSDT, BigInt(dsdtPhysAddr), true);
  writeIoGas(view, at + F.X_PM1a_EVT_BLK, ACPI_PM1A_EVT_BLK, ACPI_PM1_EVT_LEN, 2);
  writeIoGas(view, at + F.X_PM1a_CNT_BLK, ACPI_PM1A_CNT_BLK, ACPI_PM1_CNT_LEN);
  writeIoGas(view, at + F.X_PM_TMR_BLK, ACPI_PM_TMR_BLK, ACPI_PM_TMR_LEN);
  finishTable(bytes, at, FADT_SIZE);
}

/** The FACS: no waking vector (no S1-S4) and an unowned global lock; it has no checksum. */
function writeFacs(bytes: Uint8Array, at: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  writeAscii(bytes, at + FACS_OFFSETS.Signature, "FACS");
  view.setUint32(at + FACS_OFFSETS.Length, FACS_SIZE, true);
  bytes[at + FACS_OFFSETS.Version] = FACS_VERSION;
}

// Address space resource descriptors (§6.4.3.5), the large items a _CRS of bridge windows uses.
const WORD_ADDRESS_SPACE = 0x88;
const DWORD_ADDRESS_SPACE = 0x87;
/** Small item 0xF with one byte of data (the checksum): 0x0F << 3 | 1. */
const END_TAG = 0x79;
const RESOURCE_MEMORY = 0;
const RESOURCE_IO = 1;
const RESOURCE_BUS_NUMBER = 2;
/** General flags: _MIF and _MAF set (a fixed window), positive decode, bit 0 clear = producer. */
const FIXED_WINDOW = (1 << 3) | (1 << 2);
/** I/O type-specific flags: _RNG = ISA and non-ISA ports. Memory: read-write, non-cacheable. */
const IO_ENTIRE_RANGE = 3;
const MEMORY_READ_WRITE = 1;

function le(value: number, size: number): Aml {
  const bytes: Aml = [];
  for (let i = 0; i < size; i++) bytes.push(Math.floor(value / 2 ** (8 * i)) & 0xFF);
  return bytes;
}

/** A fixed window [min, max] (inclusive), 16-bit (Word) or 32-bit (DWord) form. */
function addressSpace(size: 2 | 4, type: number, typeFlags: number, min: number, max: number): Aml {
  const fields = [0, min, max, 0, max - min + 1].flatMap((v) => le(v, size)); // _GRA _MIN _MAX _TRA _LEN
  const body = [type, FIXED_WINDOW, typeFlags, ...fields];
  return [size === 2 ? WORD_ADDRESS_SPACE : DWORD_ADDRESS_SPACE, ...le(body.length, 2), ...body];
}

/** The DSDT (header left blank for the caller): the PCI root bridge if any, and \_S5. */
function buildDsdt(pci: AcpiPciHostBridge | undefined): Uint8Array {
  const terms: Aml[] = [];
  if (pci) terms.push(amlScope("\\_SB", [pciRootBridge(pci)]));
  // \_S5: SLP_TYPa, SLP_TYPb, two reserved (§7.4.2); there is no PM1b, so SLP_TYPb is never used.
  const s5 = amlInteger(ACPI_SLP_TYP_S5);
  terms.push(amlName("\\_S5", amlPackage([s5, s5, amlInteger(0), amlInteger(0)])));
  const aml = terms.flat();
  const bytes = new Uint8Array(HEADER_SIZE + aml.length);
  bytes.set(aml, HEADER_SIZE);
  return bytes;
}

/**
 * `Device (PCI0)`: a PNP0A03 host bridge. _CRS gives bus 0-255, the I/O ports around the 0xCF8
 * configuration ports and the BAR window; _PRT maps each occupied slot's INTx to its 8259 line
 * (Source 0, so SourceIndex is the interrupt itself, §6.2.13), which Linux then makes level-triggered.
 */
function pciRootBridge(pci: AcpiPciHostBridge): Aml {
  const crs = [
    ...addressSpace(2, RESOURCE_BUS_NUMBER, 0, 0x00, 0xFF),
    ...addressSpace(2, RESOURCE_IO, IO_ENTIRE_RANGE, 0x0000, 0x0CF7),
    ...addressSpace(2, RESOURCE_IO, IO_ENTIRE_RANGE, 0x0D00, 0xFFFF),
    ...addressSpace(4, RESOURCE_MEMORY, MEMORY_READ_WRITE, pci.memWindowBase, pci.memWindowEnd - 1),
    END_TAG,
    0, // checksum 0: "treat as correct" (§6.4.2.9)
  ];
  const prt = pci.routes.map((r) => {
    if (r.slot < 0 || r.slot > 31 || r.pin < 0 || r.pin > 3 || r.irq < 0 || r.irq > 15) {
      throw new RangeError(`bad PCI IRQ route: slot ${r.slot} pin ${r.pin} irq ${r.irq}`);
    }
    // Address: device in the high word, 0xFFFF = any function.
    return amlPackage([
      amlInteger(r.slot * 0x10000 + 0xFFFF),
      amlInteger(r.pin),
      amlInteger(0),
      amlInteger(r.irq),
    ]);
  });
  return amlDevice("PCI0", [
    amlName("_HID", amlEisaId("PNP0A03")),
    amlName("_CRS", amlBuffer(crs)),
    amlName("_PRT", amlPackage(prt)),
  ]);
}
