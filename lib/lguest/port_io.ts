/**
 * Port I/O from the ring-1 Guest kernel, emulated as lguest's launcher did (LGUEST-ABI 4b): at CPL 1
 * with IOPL 0, IN/OUT raise #GP(0); we decode the instruction (E4-E7, EC-EF, with an optional 66
 * prefix) and perform it: PCI configuration mechanism #1 (0xCF8-0xCFF) goes to the bus, a read of port
 * 0x64 returns 1 (an i8042 status that makes probes give up), every other read is all ones and every
 * other write is dropped (but for our exit-status port). A raw CLI (FA) is skipped. String I/O and anything else is not emulated.
 */
import type { PortBus } from "../machine/bus.ts";
import { EXIT_STATUS_PORT } from "../pc/debug_ports.ts";
import type { Cpu } from "../x86/cpu.ts";
import { EAX, EDX } from "../x86/registers.ts";
import { fetch8 } from "../x86/mmu.ts";
import { CS } from "../x86/registers.ts";

const PCI_CONF1_FIRST = 0xCF8;
const PCI_CONF1_LAST = 0xCFF;
const I8042_STATUS_PORT = 0x64;

/** What an emulated port read returns (lguest's rules). */
export function lguestPortRead(ports: PortBus, port: number, size: number): number {
  if (port >= PCI_CONF1_FIRST && port + size - 1 <= PCI_CONF1_LAST) return ports.read(port, size);
  const mask = size === 4 ? 0xFFFFFFFF : (1 << (size * 8)) - 1;
  if (port === I8042_STATUS_PORT) return 1 & mask;
  return mask;
}

/**
 * An emulated port write: PCI configuration space is listening, and (our one addition to lguest's
 * rules) a byte to the exit-status port, so the reference guest's `lguest_run=` status reaches the
 * Launcher's exit code as it does on a PC (lib/pc/debug_ports.ts).
 */
export function lguestPortWrite(ports: PortBus, port: number, size: number, value: number): void {
  if (port >= PCI_CONF1_FIRST && port + size - 1 <= PCI_CONF1_LAST) ports.write(port, size, value);
  else if (port === EXIT_STATUS_PORT && size === 1) ports.write(port, size, value);
}

/**
 * Emulates the instruction at CS:EIP that raised #GP(0), if it is one lguest's launcher handled;
 * returns false to have the fault reflected into the Guest. May raise a CPU fault (fetch).
 */
export function emulateGpInstruction(cpu: Cpu, ports: PortBus): boolean {
  const base = cpu.segBase[CS];
  let eip = cpu.st[0];
  let op = fetch8(cpu, (base + eip) | 0);
  let size = 4;
  let len = 1;
  if (op === 0x66) {
    size = 2;
    op = fetch8(cpu, (base + eip + 1) | 0);
    len = 2;
  }
  if (op === 0xFA && len === 1) {
    cpu.st[0] = (eip + 1) | 0;
    return true;
  }
  let port: number;
  switch (op) {
    case 0xE4:
    case 0xE5:
    case 0xE6:
    case 0xE7:
      port = fetch8(cpu, (base + eip + len) | 0);
      len++;
      break;
    case 0xEC:
    case 0xED:
    case 0xEE:
    case 0xEF:
      port = cpu.r16[EDX << 1];
      break;
    default:
      return false;
  }
  if ((op & 1) === 0) size = 1;
  if ((op & 2) === 0) {
    const v = lguestPortRead(ports, port, size);
    if (size === 1) cpu.r8[0] = v;
    else if (size === 2) cpu.r16[EAX << 1] = v;
    else cpu.regs[EAX] = v | 0;
  } else {
    const v = size === 1 ? cpu.r8[0] : size === 2 ? cpu.r16[EAX << 1] : cpu.regs[EAX] >>> 0;
    lguestPortWrite(ports, port, size, v);
  }
  eip = (eip + len) | 0;
  cpu.st[0] = eip;
  return true;
}
