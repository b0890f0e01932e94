/**
 * Virtual-8086 mode (SDM Vol. 3A, ch. 20) with CR4.VME off (CPUID reports no VME; CR4 refuses it):
 * entry by IRET from CPL 0 (or by a task switch, task_switch.ts), the segment caches of a VM86
 * task, and IRET inside VM86. In VM86 the CPU runs at CPL 3 with real-mode addressing (segment *
 * 16, 64 KiB limits) under paging; CLI, STI, PUSHF, POPF, INT n and IRET raise #GP(0) unless
 * IOPL = 3, and IN/OUT always consult the TSS I/O bitmap. Interrupts and exceptions leave VM86 for
 * a CPL-0 handler in interrupts.ts. The checks are where the mode can change (IRET, task switch,
 * interrupt delivery) or in the IOPL-sensitive instructions themselves: nothing per instruction.
 */
import { type Cpu, CS, DS, ES, ESP, FS, GS, SS, ST_EIP } from "./cpu.ts";
import { faultCode, GP } from "./fault.ts";
import { CC_EFLAGS, CC_FLAGS, CC_OP, materialize } from "./lazy_flags.ts";
import { adjustSp, peek16, peek32 } from "./ops/stack.ts";

export const VM = 0x20000;
const IOPL = 0x3000, VIF = 0x80000, VIP = 0x100000;

/** A VM86 segment's cache: present, DPL 3, read/write data, accessed, 16-bit, as the SDM fixes it. */
const VM86_ATTR = 0xF3;

/** True when the CPU is in virtual-8086 mode. */
export function inVm86(cpu: Cpu): boolean {
  return (cpu.cc[CC_FLAGS] & VM) !== 0;
}

/** Loads a segment register as VM86 does: base = selector * 16, limit 0xFFFF, fixed attributes. */
export function loadSegmentVm86(cpu: Cpu, seg: number, sel: number): void {
  sel &= 0xFFFF;
  cpu.segSel[seg] = sel;
  cpu.segBase[seg] = sel << 4;
  cpu.segLimit[seg] = 0xFFFF;
  cpu.segAttr[seg] = VM86_ATTR;
  cpu.segCheck[seg] = 1; // a 64 KiB limit (#GP(0) beyond it, no type checks in VM86)
  if (seg === CS) cpu.code32 = false;
  else if (seg === SS) cpu.ss32 = false;
}

/**
 * IRETD at CPL 0 whose EFLAGS image has VM set (SDM IRET, "RETURN-TO-VIRTUAL-8086-MODE"): pops
 * EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS (nine dwords), loads them VM86-style and drops to
 * CPL 3. Every pop is read before anything changes.
 */
export function returnToVm86(cpu: Cpu): void {
  const eip = peek32(cpu, 0), cs = peek32(cpu, 4), eflags = peek32(cpu, 8);
  const esp = peek32(cpu, 12), ss = peek32(cpu, 16);
  const es = peek32(cpu, 20), ds = peek32(cpu, 24), fs = peek32(cpu, 28), gs = peek32(cpu, 32);
  cpu.cc[CC_FLAGS] = (eflags & 0x3F7FD5) | 2;
  cpu.cc[CC_OP] = CC_EFLAGS;
  loadSegmentVm86(cpu, CS, cs);
  loadSegmentVm86(cpu, SS, ss);
  loadSegmentVm86(cpu, ES, es);
  loadSegmentVm86(cpu, DS, ds);
  loadSegmentVm86(cpu, FS, fs);
  loadSegmentVm86(cpu, GS, gs);
  cpu.regs[ESP] = esp;
  cpu.st[ST_EIP] = eip & 0xFFFF;
  cpu.setCpl(3);
}

/**
 * IRET inside VM86 (SDM IRET, "RETURN-FROM-VIRTUAL-8086-MODE", VME off): #GP(0) unless IOPL = 3;
 * otherwise a real-mode style return that cannot change VM, IOPL, VIF or VIP.
 */
export function vm86InterruptReturn(cpu: Cpu, op32: boolean): void {
  const old = materialize(cpu.cc);
  if ((old & IOPL) !== IOPL) faultCode(GP, 0);
  const n = op32 ? 4 : 2;
  const eip = op32 ? peek32(cpu, 0) : peek16(cpu, 0);
  const cs = op32 ? peek32(cpu, 4) : peek16(cpu, 2);
  const flags = op32 ? peek32(cpu, 8) : peek16(cpu, 4);
  if ((eip >>> 0) > (cpu.segLimit[CS] >>> 0)) faultCode(GP, 0);
  const keep = VM | IOPL | VIF | VIP | (op32 ? 0 : 0xFFFF0000);
  adjustSp(cpu, 3 * n);
  loadSegmentVm86(cpu, CS, cs);
  cpu.st[ST_EIP] = eip;
  cpu.cc[CC_FLAGS] = (old & (keep | ~0x3F7FD5)) | (flags & 0x3F7FD5 & ~keep) | 2;
  cpu.cc[CC_OP] = CC_EFLAGS;
}
