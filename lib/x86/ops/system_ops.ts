/**
 * Less frequent instructions, dispatched from the interpreter's default case: group 3 (MUL/DIV),
 * POPF, bit tests, CMPXCHG/CMPXCHG8B, BCD adjust, segment-register moves and loads, far
 * transfers, INT/IRET, I/O with its permission checks, descriptor-table and control-register
 * instructions, MSRs, CPUID, RDTSC, SYSENTER/SYSEXIT and the x87 escapes (SDM Vol. 2).
 * `executeRare` finds EIP at the instruction in st[ST_EIP], leaves the new EIP there, and returns
 * true when the interpreter must reload its cached state (CS, paging, interrupts may have changed).
 */
import {
  type Cpu,
  CR0_EM,
  CR0_MP,
  CR0_NE,
  CR0_PE,
  CR0_PG,
  CR0_TS,
  CR0_WP,
  CR4_PAE,
  CR4_PGE,
  CR4_PSE,
  CR4_TSD,
  CS,
  DS,
  EAX,
  EBP,
  EBX,
  ECX,
  EDI,
  EDX,
  ES,
  ESI,
  ESP,
  FS,
  GS,
  LDTR,
  SS,
  ST_CPL,
  ST_CR0,
  ST_CR2,
  ST_CR3,
  ST_CR4,
  ST_EFER,
  ST_EIP,
  ST_GDT_BASE,
  ST_GDT_LIMIT,
  ST_IDT_BASE,
  ST_IDT_LIMIT,
  ST_SYSENTER_CS,
  ST_SYSENTER_EIP,
  ST_SYSENTER_ESP,
  TR,
} from "../cpu.ts";
import { cpuid } from "../cpuid.ts";
import {
  FPU_EFLAGS_MASK,
  FPU_INVALID_OPCODE,
  FPU_WROTE_AX,
  FPU_WROTE_EFLAGS,
  fpuInstructionWaits,
} from "../fpu/fpu.ts";
import { EA_ADDR16, PFX_REP, PFX_REPNE } from "../decode_cache.ts";
import { BR, DE, fault, faultCode, GP, MF, NM, OF_VEC, SS_VEC, UD } from "../fault.ts";
import { farCall, farJump, farReturn, interruptReturn, sysenter, sysexit } from "../far_transfer.ts";
import { deliverInterrupt, INT_SOFTWARE } from "../interrupts.ts";
import { CC_EFLAGS, CC_FLAGS, CC_OP, getCF, materialize, PARITY } from "../lazy_flags.ts";
import {
  flushTlb,
  invalidatePage,
  probeWrite,
  read16,
  read32,
  read8,
  readSys,
  write16,
  write32,
} from "../mmu.ts";
import { checkSegmentAccess, DESC, loadLdt, loadSegment, loadTr, readDescriptor } from "../segments.ts";
import {
  alu,
  ALU_CMP,
  DIV_RESULT,
  divideS64,
  divideU64,
  logic,
  mulFlags,
  mulHighS32,
  mulHighU32,
  neg,
  setCF,
} from "./alu.ts";
import { ea, eaOffset, readMem, readReg, readRm, REG8, writeMem, writeReg, writeRm } from "./operands.ts";
import { adjustSp, peek16, peek32, pop16, pop32, push16, push32 } from "./stack.ts";

const TF = 0x100, IF = 0x200, DF = 0x400, IOPL = 0x3000, VM = 0x20000, AC = 0x40000, ID = 0x200000;

const CPUID_OUT = new Int32Array(4);

// ---------------------------------------------------------------------------------------------
// Group 3: TEST NOT NEG MUL IMUL DIV IDIV
// ---------------------------------------------------------------------------------------------

export function group3(cpu: Cpu, slot: number, size: number): void {
  const m = cpu.decoded.modrm[slot];
  const op = (m >> 3) & 7;
  const cc = cpu.cc, regs = cpu.regs, r16 = cpu.r16, r8 = cpu.r8;
  switch (op) {
    case 0:
    case 1:
      logic(cc, readRm(cpu, slot, m, size) & cpu.decoded.imm[slot], size);
      return;
    case 2:
    case 3: {
      let a = -1;
      if (m < 0xC0) {
        a = ea(cpu, slot);
        probeWrite(cpu, a, 1 << size);
      }
      const v = a === -1 ? readRm(cpu, slot, m, size) : readMem(cpu, a, size);
      const r = op === 2 ? ~v : neg(cc, v, size);
      if (a === -1) writeRm(cpu, slot, m, size, r);
      else writeMem(cpu, a, size, r);
      return;
    }
    case 4: { // MUL
      const v = readRm(cpu, slot, m, size);
      if (size === 0) {
        const p = r8[0] * v;
        r16[0] = p;
        mulFlags(cc, p, (p >> 8) !== 0, 0);
      } else if (size === 1) {
        const p = r16[0] * v;
        r16[0] = p;
        r16[EDX << 1] = p >>> 16;
        mulFlags(cc, p, (p >>> 16) !== 0, 1);
      } else {
        const a = regs[EAX];
        const hi = mulHighU32(a, v);
        const lo = Math.imul(a, v);
        regs[EAX] = lo;
        regs[EDX] = hi;
        mulFlags(cc, lo, hi !== 0, 2);
      }
      return;
    }
    case 5: { // IMUL
      const v = readRm(cpu, slot, m, size);
      if (size === 0) {
        const p = ((r8[0] << 24) >> 24) * ((v << 24) >> 24);
        r16[0] = p;
        mulFlags(cc, p, p !== ((p << 24) >> 24), 0);
      } else if (size === 1) {
        const p = ((r16[0] << 16) >> 16) * ((v << 16) >> 16);
        r16[0] = p;
        r16[EDX << 1] = p >> 16;
        mulFlags(cc, p, p !== ((p << 16) >> 16), 1);
      } else {
        const a = regs[EAX];
        const hi = mulHighS32(a, v);
        const lo = Math.imul(a, v);
        regs[EAX] = lo;
        regs[EDX] = hi;
        mulFlags(cc, lo, hi !== (lo >> 31), 2);
      }
      return;
    }
    case 6: { // DIV
      const v = readRm(cpu, slot, m, size);
      if (size === 0) {
        const d = v & 0xFF;
        if (d === 0) fault(DE);
        const n = r16[0];
        const q = Math.floor(n / d);
        if (q > 0xFF) fault(DE);
        r8[0] = q;
        r8[1] = n % d;
      } else if (size === 1) {
        const d = v & 0xFFFF;
        if (d === 0) fault(DE);
        const n = (r16[EDX << 1] * 65536) + r16[0];
        const q = Math.floor(n / d);
        if (q > 0xFFFF) fault(DE);
        r16[0] = q;
        r16[EDX << 1] = n % d;
      } else {
        if (v === 0 || !divideU64(regs[EDX], regs[EAX], v)) fault(DE);
        regs[EAX] = DIV_RESULT[0];
        regs[EDX] = DIV_RESULT[1];
      }
      return;
    }
    default: { // IDIV
      const v = readRm(cpu, slot, m, size);
      if (size === 0) {
        const d = (v << 24) >> 24;
        if (d === 0) fault(DE);
        const n = (r16[0] << 16) >> 16;
        const q = Math.trunc(n / d);
        if (q > 127 || q < -128) fault(DE);
        r8[0] = q;
        r8[1] = n % d;
      } else if (size === 1) {
        const d = (v << 16) >> 16;
        if (d === 0) fault(DE);
        const n = ((r16[EDX << 1] << 16) | r16[0]) | 0;
        const q = Math.trunc(n / d);
        if (q > 32767 || q < -32768) fault(DE);
        r16[0] = q;
        r16[EDX << 1] = n % d;
      } else {
        if (!divideS64(regs[EDX], regs[EAX], v)) fault(DE);
        regs[EAX] = DIV_RESULT[0];
        regs[EDX] = DIV_RESULT[1];
      }
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// POPF, bit tests, CMPXCHG
// ---------------------------------------------------------------------------------------------

/** POPF/POPFD with the privilege rules for IF and IOPL (SDM POPF); in VM86 only at IOPL 3. */
export function popFlags(cpu: Cpu, op32: boolean): void {
  const pm = (cpu.st[ST_CR0] & CR0_PE) !== 0;
  const old = cpu.cc[CC_FLAGS];
  if ((old & VM) !== 0 && (old & IOPL) !== IOPL) faultCode(GP, 0);
  const v = op32 ? peek32(cpu, 0) : peek16(cpu, 0);
  let mask = 0x4DD5 | 0x100 | AC | ID; // status, TF, DF, OF, NT, AC, ID
  const cpl = cpu.st[ST_CPL];
  if (!pm || cpl === 0) mask |= IOPL | IF;
  else if (cpl <= ((old >> 12) & 3)) mask |= IF;
  if (!op32) mask &= 0xFFFF;
  adjustSp(cpu, op32 ? 4 : 2);
  cpu.cc[CC_FLAGS] = (old & ~mask) | (v & mask) | 2;
  cpu.cc[CC_OP] = CC_EFLAGS;
}

/** BT/BTS/BTR/BTC with register or imm8 bit offsets (0F A3 AB B3 BB, 0F BA /4-7). */
export function bitTest(cpu: Cpu, slot: number, id: number): void {
  const m = cpu.decoded.modrm[slot];
  const size = id < 0x200 ? 2 : 1;
  const bits = size === 2 ? 32 : 16;
  let op: number, offset: number, immForm = false;
  if ((id & 0xFF) === 0xBA) {
    const r = (m >> 3) & 7;
    if (r < 4) fault(UD);
    op = r - 4;
    offset = cpu.decoded.imm[slot] & 0xFF;
    immForm = true;
  } else {
    op = ((id & 0xFF) - 0xA3) >> 3; // A3 -> 0, AB -> 1, B3 -> 2, BB -> 3
    offset = readReg(cpu, (m >> 3) & 7, size);
    if (size === 1) offset = (offset << 16) >> 16;
  }
  if (m >= 0xC0) {
    const v = readRm(cpu, slot, m, size);
    const bit = offset & (bits - 1);
    setCF(cpu.cc, (v >>> bit) & 1);
    if (op !== 0) writeRm(cpu, slot, m, size, modifyBit(v, bit, op));
    return;
  }
  // The operand is the word or dword the bit offset selects: that one is checked (SDM Vol. 2 BT).
  const seg = (cpu.decoded.ea[slot] >> 12) & 7;
  let off = eaOffset(cpu, slot);
  if (!immForm) off = (off + (size === 2 ? (offset >> 5) * 4 : (offset >> 4) * 2)) | 0;
  const bit = offset & (bits - 1);
  if (cpu.segCheck[seg] !== 0 || (off >>> 0) > 0xFFFFFFF8) {
    checkSegmentAccess(cpu, seg, off, (bits >> 3) | (op !== 0 ? WRITE : 0));
  }
  const a = (off + cpu.segBase[seg]) | 0;
  if (op !== 0) probeWrite(cpu, a, bits >> 3);
  const v = readMem(cpu, a, size);
  setCF(cpu.cc, (v >>> bit) & 1);
  if (op !== 0) writeMem(cpu, a, size, modifyBit(v, bit, op));
}

function modifyBit(v: number, bit: number, op: number): number {
  const mask = 1 << bit;
  return op === 1 ? v | mask : op === 2 ? v & ~mask : v ^ mask;
}

/** CMPXCHG E, G: compares the accumulator with E (SDM CMPXCHG). */
export function cmpxchg(cpu: Cpu, slot: number, size: number): void {
  const m = cpu.decoded.modrm[slot];
  const g = readReg(cpu, (m >> 3) & 7, size);
  const acc = readReg(cpu, EAX, size);
  if (m >= 0xC0) {
    const v = readRm(cpu, slot, m, size);
    const r = alu(cpu.cc, ALU_CMP, acc, v, size);
    if (r === 0) writeRm(cpu, slot, m, size, g);
    else writeReg(cpu, EAX, size, v);
    return;
  }
  const a = ea(cpu, slot);
  probeWrite(cpu, a, 1 << size);
  const v = readMem(cpu, a, size);
  const r = alu(cpu.cc, ALU_CMP, acc, v, size);
  if (r === 0) writeMem(cpu, a, size, g);
  else {
    writeMem(cpu, a, size, v); // the destination is written either way
    writeReg(cpu, EAX, size, v);
  }
}

function setZF(cpu: Cpu, on: boolean): void {
  const f = materialize(cpu.cc);
  cpu.cc[CC_FLAGS] = on ? f | 0x40 : f & ~0x40;
}

// ---------------------------------------------------------------------------------------------
// BCD
// ---------------------------------------------------------------------------------------------

function setStatus(cpu: Cpu, al: number, cf: number, af: boolean, of = 0): void {
  const f = materialize(cpu.cc) & ~0x8D5;
  cpu.cc[CC_FLAGS] = f | cf | (af ? 0x10 : 0) | PARITY[al & 0xFF] | ((al & 0xFF) === 0 ? 0x40 : 0) |
    (al & 0x80) |
    (of ? 0x800 : 0);
}

function bcd(cpu: Cpu, id: number): void {
  const r8 = cpu.r8;
  const f = materialize(cpu.cc);
  const cf = f & 1, af = (f & 0x10) !== 0;
  const al = r8[0];
  switch (id & 0xFF) {
    case 0x27: { // DAA
      let v = al, c = 0, a = false;
      if ((al & 0xF) > 9 || af) {
        v = al + 6;
        c = cf | (v > 0xFF ? 1 : 0);
        a = true;
      }
      if (al > 0x99 || cf) {
        v += 0x60;
        c = 1;
      }
      r8[0] = v;
      setStatus(cpu, v, c, a);
      return;
    }
    case 0x2F: { // DAS
      let v = al, c = 0, a = false;
      if ((al & 0xF) > 9 || af) {
        v = al - 6;
        c = cf | (al < 6 ? 1 : 0);
        a = true;
      }
      if (al > 0x99 || cf) {
        v -= 0x60;
        c = 1;
      }
      r8[0] = v;
      setStatus(cpu, v, c, a);
      return;
    }
    case 0x37: // AAA
    case 0x3F: { // AAS
      const aaa = (id & 0xFF) === 0x37;
      if ((al & 0xF) > 9 || af) {
        if (aaa) cpu.r16[0] = cpu.r16[0] + 0x106;
        else {
          cpu.r16[0] = cpu.r16[0] - 6;
          r8[1] = r8[1] - 1;
        }
        r8[0] &= 0xF;
        setStatus(cpu, r8[0], 1, true);
      } else {
        r8[0] &= 0xF;
        setStatus(cpu, r8[0], 0, false);
      }
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// I/O
// ---------------------------------------------------------------------------------------------

function ioAllowed(cpu: Cpu): boolean {
  if ((cpu.st[ST_CR0] & CR0_PE) === 0) return true;
  if ((cpu.cc[CC_FLAGS] & VM) !== 0) return false; // VM86 ignores IOPL for I/O (SDM 20.2.8.1)
  return cpu.st[ST_CPL] <= ((cpu.cc[CC_FLAGS] >> 12) & 3);
}

/** Checks the TSS I/O permission bitmap when CPL > IOPL or in VM86 (SDM Vol. 1, 19.5.2). */
function checkIoPermission(cpu: Cpu, port: number, bytes: number): void {
  if (ioAllowed(cpu)) return;
  const limit = cpu.segLimit[TR] >>> 0;
  if ((cpu.segAttr[TR] & 0xF) !== 0xB && (cpu.segAttr[TR] & 0xF) !== 0x9 || limit < 0x67) faultCode(GP, 0);
  const base = cpu.segBase[TR];
  const off = readSys(cpu, (base + 0x66) | 0, 2);
  const byte = off + (port >>> 3);
  if (byte + 1 > limit) faultCode(GP, 0);
  const bits = readSys(cpu, (base + byte) | 0, 2);
  if ((bits & (((1 << bytes) - 1) << (port & 7))) !== 0) faultCode(GP, 0);
}

function portIn(cpu: Cpu, port: number, size: number): number {
  const bytes = 1 << size;
  checkIoPermission(cpu, port, bytes);
  return cpu.ports.read(port & 0xFFFF, bytes);
}

function portOut(cpu: Cpu, port: number, size: number, v: number): void {
  const bytes = 1 << size;
  checkIoPermission(cpu, port, bytes);
  cpu.ports.write(port & 0xFFFF, bytes, size === 2 ? v >>> 0 : v & ((1 << (bytes * 8)) - 1));
}

function stringIo(cpu: Cpu, slot: number, size: number, isIn: boolean): void {
  const e = cpu.decoded.ea[slot];
  const a16 = (e & EA_ADDR16) !== 0;
  const rep = (cpu.decoded.pfx[slot] & (PFX_REP | PFX_REPNE)) !== 0;
  const step = (cpu.cc[CC_FLAGS] & DF) !== 0 ? -(1 << size) : 1 << size;
  const port = cpu.r16[EDX << 1];
  const reg = isIn ? EDI : ESI;
  const seg = isIn ? ES : (e >> 12) & 7;
  const segBase = cpu.segBase[seg];
  let count = rep ? (a16 ? cpu.r16[ECX << 1] : cpu.regs[ECX] >>> 0) : 1;
  // Single-step: one iteration per trap, EIP kept at the instruction while the count lasts.
  let iterations = rep && (cpu.cc[CC_FLAGS] & TF) !== 0 && count !== 0 ? 1 : count;
  while (iterations-- !== 0) {
    const off = a16 ? cpu.regs[reg] & 0xFFFF : cpu.regs[reg];
    if (cpu.segCheck[seg] !== 0) checkSegmentAccess(cpu, seg, off, (1 << size) | (isIn ? WRITE : 0));
    const a = (segBase + off) | 0;
    if (isIn) {
      probeWrite(cpu, a, 1 << size);
      writeMem(cpu, a, size, portIn(cpu, port, size));
    } else portOut(cpu, port, size, readMem(cpu, a, size));
    if (a16) cpu.r16[reg << 1] = cpu.regs[reg] + step;
    else cpu.regs[reg] = (cpu.regs[reg] + step) | 0;
    count--;
    if (rep) {
      if (a16) cpu.r16[ECX << 1] = count;
      else cpu.regs[ECX] = count;
    }
  }
  if (rep && count !== 0) cpu.st[ST_EIP] = (cpu.st[ST_EIP] - cpu.decoded.len[slot]) | 0;
}

// ---------------------------------------------------------------------------------------------
// Control registers, MSRs
// ---------------------------------------------------------------------------------------------

function requireCpl0(cpu: Cpu): void {
  if ((cpu.st[ST_CR0] & CR0_PE) !== 0 && cpu.st[ST_CPL] !== 0) faultCode(GP, 0);
}

const CR4_ALLOWED = CR4_TSD | 8 /* DE */ | CR4_PSE | CR4_PAE | CR4_PGE | 0x100 /* PCE */ |
  0x200 /* OSFXSR */ |
  0x400; /* OSXMMEXCPT */

export function writeCr(cpu: Cpu, n: number, v: number): void {
  const st = cpu.st;
  switch (n) {
    case 0: {
      v |= 0x10; // ET is hardwired on P6
      if ((v & CR0_PG) !== 0 && (v & CR0_PE) === 0) faultCode(GP, 0);
      if ((v & 0x20000000) !== 0 && (v & 0x40000000) === 0) faultCode(GP, 0); // NW without CD
      const old = st[ST_CR0];
      st[ST_CR0] = v;
      if (((old ^ v) & (CR0_PG | CR0_PE | CR0_WP)) !== 0) flushTlb(cpu, false);
      if (((old ^ v) & CR0_PE) !== 0 && (v & CR0_PE) === 0) cpu.setCpl(0);
      return;
    }
    case 2:
      st[ST_CR2] = v;
      return;
    case 3:
      st[ST_CR3] = v;
      flushTlb(cpu, (st[ST_CR4] & CR4_PGE) !== 0);
      return;
    case 4: {
      if ((v & ~CR4_ALLOWED) !== 0) faultCode(GP, 0);
      const old = st[ST_CR4];
      st[ST_CR4] = v;
      if (((old ^ v) & (CR4_PSE | CR4_PAE | CR4_PGE)) !== 0) flushTlb(cpu, false);
      return;
    }
    default:
      fault(UD);
  }
}

function readCr(cpu: Cpu, n: number): number {
  switch (n) {
    case 0:
      return cpu.st[ST_CR0];
    case 2:
      return cpu.st[ST_CR2];
    case 3:
      return cpu.st[ST_CR3];
    case 4:
      return cpu.st[ST_CR4];
    default:
      return fault(UD);
  }
}

/** The model-specific registers we implement; anything else raises #GP(0) as on hardware. */
const MSR_TSC = 0x10, MSR_PLATFORM_ID = 0x17, MSR_BIOS_SIGN_ID = 0x8B, MSR_MISC_ENABLE = 0x1A0;
const MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176, MSR_EFER = 0xC0000080;

/** The guest-visible TSC. */
export function readTsc(cpu: Cpu): number {
  return Math.floor(cpu.nowNs() * cpu.tscPerNs) + cpu.tscOffset;
}

function rdmsr(cpu: Cpu, msr: number): void {
  const regs = cpu.regs;
  let lo = 0, hi = 0;
  switch (msr >>> 0) {
    case MSR_TSC: {
      const t = readTsc(cpu);
      lo = t % 4294967296 | 0;
      hi = Math.floor(t / 4294967296) | 0;
      break;
    }
    case MSR_PLATFORM_ID:
    case MSR_BIOS_SIGN_ID:
    case MSR_MISC_ENABLE:
      break;
    case MSR_SYSENTER_CS:
      lo = cpu.st[ST_SYSENTER_CS];
      break;
    case MSR_SYSENTER_ESP:
      lo = cpu.st[ST_SYSENTER_ESP];
      break;
    case MSR_SYSENTER_EIP:
      lo = cpu.st[ST_SYSENTER_EIP];
      break;
    case MSR_EFER:
      lo = cpu.st[ST_EFER];
      break;
    default:
      faultCode(GP, 0);
  }
  regs[EAX] = lo;
  regs[EDX] = hi;
}

function wrmsr(cpu: Cpu, msr: number): void {
  const lo = cpu.regs[EAX], hi = cpu.regs[EDX];
  switch (msr >>> 0) {
    case MSR_TSC:
      cpu.tscOffset = (hi >>> 0) * 4294967296 + (lo >>> 0) - Math.floor(cpu.nowNs() * cpu.tscPerNs);
      return;
    case MSR_BIOS_SIGN_ID:
    case MSR_MISC_ENABLE:
      return;
    case MSR_SYSENTER_CS:
      cpu.st[ST_SYSENTER_CS] = lo & 0xFFFF;
      return;
    case MSR_SYSENTER_ESP:
      cpu.st[ST_SYSENTER_ESP] = lo;
      return;
    case MSR_SYSENTER_EIP:
      cpu.st[ST_SYSENTER_EIP] = lo;
      return;
    case MSR_EFER:
      if ((lo & ~0x800) !== 0 || hi !== 0) faultCode(GP, 0); // only NXE exists here
      cpu.st[ST_EFER] = lo;
      flushTlb(cpu, false);
      return;
    default:
      faultCode(GP, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// The rare-instruction switch
// ---------------------------------------------------------------------------------------------

const SEG_OF_PUSH: Record<number, number> = { 0x06: ES, 0x0E: CS, 0x16: SS, 0x1E: DS, 0x1A0: FS, 0x1A8: GS };

/**
 * ENTER (SDM Vol. 2): the frame pointer is the stack pointer after pushing EBP at the operand
 * size (o32 on a 16-bit stack keeps ESP's upper half: only SP wraps). Memory is written first and
 * the final stack top is write-checked (as a read-modify-write, like hardware) before EBP and ESP
 * change, so a fault anywhere leaves the registers as they were.
 */
function enter(cpu: Cpu, size: number, level: number, op32: boolean): void {
  const regs = cpu.regs;
  const n = op32 ? 4 : 2;
  const ss32 = cpu.ss32, base = cpu.segBase[SS];
  const esp = regs[ESP];
  const hiEsp = ss32 ? 0 : esp & ~0xFFFF;
  let sp = ss32 ? (esp - n) | 0 : (esp - n) & 0xFFFF;
  checkStack(cpu, sp, n | WRITE);
  if (op32) write32(cpu, (base + sp) | 0, regs[EBP]);
  else write16(cpu, (base + sp) | 0, regs[EBP]);
  const frame = op32 ? sp | hiEsp : sp;
  if (level > 0) {
    let bp = regs[EBP];
    for (let i = 1; i < level; i++) {
      bp = ss32 ? (bp - n) | 0 : (bp - n) & 0xFFFF;
      checkStack(cpu, bp, n);
      const v = op32 ? read32(cpu, (base + bp) | 0) : read16(cpu, (base + bp) | 0);
      sp = ss32 ? (sp - n) | 0 : (sp - n) & 0xFFFF;
      checkStack(cpu, sp, n | WRITE);
      if (op32) write32(cpu, (base + sp) | 0, v);
      else write16(cpu, (base + sp) | 0, v);
    }
    sp = ss32 ? (sp - n) | 0 : (sp - n) & 0xFFFF;
    checkStack(cpu, sp, n | WRITE);
    if (op32) write32(cpu, (base + sp) | 0, frame);
    else write16(cpu, (base + sp) | 0, frame);
  }
  sp = ss32 ? (sp - size) | 0 : (sp - size) & 0xFFFF;
  checkStack(cpu, sp, n | WRITE);
  probeWrite(cpu, (base + sp) | 0, n);
  if (op32) regs[EBP] = frame;
  else cpu.r16[EBP << 1] = frame;
  if (ss32) regs[ESP] = sp;
  else cpu.r16[ESP << 1] = sp;
}

/** Executes a less common instruction; returns true if the interpreter must reload its state. */
export function executeRare(cpu: Cpu, slot: number, id: number, next: number): boolean {
  const st = cpu.st, regs = cpu.regs, r8 = cpu.r8, r16 = cpu.r16;
  const dc = cpu.decoded;
  const op = id & 0x1FF;
  const op32 = id < 0x200;
  const m = dc.modrm[slot];
  const pm = (st[ST_CR0] & CR0_PE) !== 0;
  // Protected mode proper: ARPL, LAR, LSL and group 6 are #UD in real and virtual-8086 mode.
  const pmNotVm86 = pm && (cpu.cc[CC_FLAGS] & VM) === 0;
  st[ST_EIP] = next;
  switch (op) {
    case 0x06:
    case 0x0E:
    case 0x16:
    case 0x1E:
    case 0x1A0:
    case 0x1A8: {
      const sel = cpu.segSel[SEG_OF_PUSH[op]];
      if (op32) {
        // Recent Intel CPUs write only the low 16 bits of the 32-bit slot.
        const sp = cpu.ss32 ? (regs[ESP] - 4) | 0 : (regs[ESP] - 4) & 0xFFFF;
        checkStack(cpu, sp, 4 | WRITE);
        write16(cpu, (cpu.segBase[SS] + sp) | 0, sel);
        if (cpu.ss32) regs[ESP] = sp;
        else r16[ESP << 1] = sp;
      } else push16(cpu, sel);
      return false;
    }
    case 0x07:
    case 0x17:
    case 0x1F:
    case 0x1A1:
    case 0x1A9: {
      const seg = op === 0x07 ? ES : op === 0x17 ? SS : op === 0x1F ? DS : op === 0x1A1 ? FS : GS;
      const sel = op32 ? peek32(cpu, 0) : peek16(cpu, 0);
      // POP SS moves the stack pointer by the width of the stack it popped from, not the new one.
      const oldSs32 = cpu.ss32;
      loadSegment(cpu, seg, sel);
      if (oldSs32) regs[ESP] = (regs[ESP] + (op32 ? 4 : 2)) | 0;
      else r16[ESP << 1] = regs[ESP] + (op32 ? 4 : 2);
      if (seg === SS) {
        cpu.interruptShadow = true;
        cpu.trapShadow = true;
      }
      return true;
    }
    case 0x27:
    case 0x2F:
    case 0x37:
    case 0x3F:
      bcd(cpu, op);
      return false;
    case 0x60: { // PUSHA
      const n = op32 ? 4 : 2;
      const sp0 = regs[ESP];
      const base = cpu.segBase[SS];
      if (cpu.segCheck[SS] !== 0) {
        for (let i = 0; i < 8; i++) {
          checkStack(cpu, cpu.ss32 ? (sp0 - n * (i + 1)) | 0 : (sp0 - n * (i + 1)) & 0xFFFF, n | WRITE);
        }
      }
      for (let i = 0; i < 8; i++) {
        const sp = cpu.ss32 ? (sp0 - n * (i + 1)) | 0 : (sp0 - n * (i + 1)) & 0xFFFF;
        const v = i === 4 ? sp0 : regs[i];
        if (op32) write32(cpu, (base + sp) | 0, v);
        else write16(cpu, (base + sp) | 0, v);
      }
      adjustSp(cpu, -8 * n);
      return false;
    }
    case 0x61: { // POPA
      const n = op32 ? 4 : 2;
      const vals = [0, 0, 0, 0, 0, 0, 0, 0];
      for (let i = 0; i < 8; i++) vals[7 - i] = op32 ? peek32(cpu, i * n) : peek16(cpu, i * n);
      for (let i = 0; i < 8; i++) {
        if (i === ESP) continue;
        if (op32) regs[i] = vals[i];
        else r16[i << 1] = vals[i];
      }
      adjustSp(cpu, 8 * n);
      return false;
    }
    case 0x62: { // BOUND
      if (m >= 0xC0) fault(UD);
      const a = ea(cpu, slot);
      const size = op32 ? 2 : 1;
      const v = readReg(cpu, (m >> 3) & 7, size);
      const lo = readMem(cpu, a, size), hi = readMem(cpu, (a + (op32 ? 4 : 2)) | 0, size);
      const sv = op32 ? v : (v << 16) >> 16,
        sl = op32 ? lo : (lo << 16) >> 16,
        sh = op32 ? hi : (hi << 16) >> 16;
      if (sv < sl || sv > sh) {
        st[ST_EIP] = (next - dc.len[slot]) | 0;
        fault(BR);
      }
      return false;
    }
    case 0x63: { // ARPL
      if (!pmNotVm86) fault(UD);
      const dst = readRm(cpu, slot, m, 1);
      const src = r16[((m >> 3) & 7) << 1];
      if ((dst & 3) < (src & 3)) {
        writeRm(cpu, slot, m, 1, (dst & ~3) | (src & 3));
        setZF(cpu, true);
      } else setZF(cpu, false);
      return false;
    }
    case 0x6C:
    case 0x6D:
      stringIo(cpu, slot, op === 0x6C ? 0 : op32 ? 2 : 1, true);
      return true;
    case 0x6E:
    case 0x6F:
      stringIo(cpu, slot, op === 0x6E ? 0 : op32 ? 2 : 1, false);
      return true;
    case 0x8C: { // MOV Ew, Sreg
      const s = (m >> 3) & 7;
      if (s > 5) fault(UD);
      const sel = cpu.segSel[s];
      if (m >= 0xC0) {
        if (op32) regs[m & 7] = sel;
        else r16[(m & 7) << 1] = sel;
      } else write16(cpu, ea(cpu, slot), sel);
      return false;
    }
    case 0x8E: { // MOV Sreg, Ew
      const s = (m >> 3) & 7;
      if (s === CS || s > 5) fault(UD);
      loadSegment(cpu, s, readRm(cpu, slot, m, 1));
      if (s === SS) {
        cpu.interruptShadow = true;
        cpu.trapShadow = true;
      }
      return true;
    }
    case 0x9A: // CALL ptr16:16/32
      farCall(cpu, dc.imm2[slot], dc.imm[slot], op32, next);
      return true;
    case 0xEA: // JMP ptr16:16/32
      farJump(cpu, dc.imm2[slot], dc.imm[slot], op32);
      return true;
    case 0x9B: // FWAIT
      if ((st[ST_CR0] & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) fault(NM);
      checkFpuError(cpu);
      return false;
    case 0x9E: { // SAHF
      const f = materialize(cpu.cc);
      cpu.cc[CC_FLAGS] = (f & ~0xD5) | (r8[1] & 0xD5);
      return false;
    }
    case 0x9F: // LAHF
      r8[1] = (materialize(cpu.cc) & 0xD5) | 2;
      return false;
    case 0xC4:
    case 0xC5:
    case 0x1B2:
    case 0x1B4:
    case 0x1B5: { // LES LDS LSS LFS LGS
      if (m >= 0xC0) fault(UD);
      const a = ea(cpu, slot);
      const off = op32 ? read32(cpu, a) : read16(cpu, a);
      const sel = read16(cpu, (a + (op32 ? 4 : 2)) | 0);
      const seg = op === 0xC4 ? ES : op === 0xC5 ? DS : op === 0x1B2 ? SS : op === 0x1B4 ? FS : GS;
      loadSegment(cpu, seg, sel);
      writeReg(cpu, (m >> 3) & 7, op32 ? 2 : 1, off);
      return true;
    }
    case 0xC8: // ENTER
      enter(cpu, dc.imm[slot] & 0xFFFF, dc.imm2[slot] & 31, op32);
      return false;
    case 0xCA:
    case 0xCB:
      farReturn(cpu, op32, op === 0xCA ? dc.imm[slot] & 0xFFFF : 0);
      return true;
    case 0xCC: // INT3
      softwareInterrupt(cpu, 3, next);
      return true;
    case 0xCD: { // INT n
      const v = dc.imm[slot] & 0xFF;
      // IOPL-sensitive in VM86 (not INT3/INTO/INT1): without VME, #GP(0) unless IOPL = 3.
      if ((cpu.cc[CC_FLAGS] & VM) !== 0 && (cpu.cc[CC_FLAGS] & IOPL) !== IOPL) faultCode(GP, 0);
      if (cpu.softwareInterruptHook !== null && cpu.softwareInterruptHook(v, next)) return true;
      softwareInterrupt(cpu, v, next);
      return true;
    }
    case 0xCE: // INTO
      if ((materialize(cpu.cc) & 0x800) !== 0) softwareInterrupt(cpu, OF_VEC, next);
      return true;
    case 0xF1: // INT1 (ICEBP): a #DB trap that ignores the gate DPL
      if (cpu.stopOnException) softwareInterrupt(cpu, 1, next);
      else deliverInterrupt(cpu, 1, 0, false, 0, next);
      return true;
    case 0xCF:
      interruptReturn(cpu, op32);
      return true;
    case 0xD4: { // AAM
      const base = dc.imm[slot] & 0xFF;
      if (base === 0) {
        st[ST_EIP] = (next - dc.len[slot]) | 0;
        fault(DE);
      }
      const al = r8[0];
      r8[1] = Math.floor(al / base);
      r8[0] = al % base;
      logic(cpu.cc, r8[0], 0);
      return false;
    }
    case 0xD5: { // AAD
      const base = dc.imm[slot] & 0xFF;
      const v = (r8[0] + r8[1] * base) & 0xFF;
      r16[0] = v;
      logic(cpu.cc, v, 0);
      return false;
    }
    case 0xD6: // SALC
      r8[0] = getCF(cpu.cc) ? 0xFF : 0;
      return false;
    case 0xD7: { // XLAT
      const e = dc.ea[slot];
      const off = (e & EA_ADDR16) !== 0 ? (regs[EBX] + r8[0]) & 0xFFFF : (regs[EBX] + r8[0]) | 0;
      const seg = (e >> 12) & 7;
      checkSegmentAccess(cpu, seg, off, 1);
      r8[0] = read8(cpu, (cpu.segBase[seg] + off) | 0);
      return false;
    }
    case 0xD8:
    case 0xD9:
    case 0xDA:
    case 0xDB:
    case 0xDC:
    case 0xDD:
    case 0xDE:
    case 0xDF:
      return x87(cpu, slot, op, m, op32, next);
    case 0xE4:
    case 0xE5:
    case 0xEC:
    case 0xED: { // IN
      const port = op < 0xE8 ? dc.imm[slot] & 0xFF : r16[EDX << 1];
      const size = (op & 1) === 0 ? 0 : op32 ? 2 : 1;
      const v = portIn(cpu, port, size);
      if (size === 0) r8[0] = v;
      else if (size === 1) r16[0] = v;
      else regs[EAX] = v;
      return true;
    }
    case 0xE6:
    case 0xE7:
    case 0xEE:
    case 0xEF: { // OUT
      const port = op < 0xE8 ? dc.imm[slot] & 0xFF : r16[EDX << 1];
      const size = (op & 1) === 0 ? 0 : op32 ? 2 : 1;
      portOut(cpu, port, size, size === 0 ? r8[0] : size === 1 ? r16[0] : regs[EAX]);
      return true;
    }
    case 0xF4: // HLT
      requireCpl0(cpu);
      cpu.halted = true;
      return true;
    case 0xFF: { // group 5 leftovers: CALLF/JMPF m16:16/32
      const r = (m >> 3) & 7;
      if ((r !== 3 && r !== 5) || m >= 0xC0) fault(UD);
      const a = ea(cpu, slot);
      const off = op32 ? read32(cpu, a) : read16(cpu, a);
      const sel = read16(cpu, (a + (op32 ? 4 : 2)) | 0);
      if (r === 3) farCall(cpu, sel, off, op32, next);
      else farJump(cpu, sel, off, op32);
      return true;
    }
    case 0x100: { // group 6
      if (!pmNotVm86) fault(UD);
      const r = (m >> 3) & 7;
      switch (r) {
        case 0: // SLDT
        case 1: { // STR
          const sel = cpu.segSel[r === 0 ? LDTR : TR];
          if (m >= 0xC0 && op32) regs[m & 7] = sel;
          else writeRm(cpu, slot, m, 1, sel);
          return false;
        }
        case 2:
          requireCpl0(cpu);
          loadLdt(cpu, readRm(cpu, slot, m, 1));
          return false;
        case 3:
          requireCpl0(cpu);
          loadTr(cpu, readRm(cpu, slot, m, 1));
          return false;
        case 4:
        case 5:
          setZF(cpu, verify(cpu, readRm(cpu, slot, m, 1), r === 5));
          return false;
        default:
          return fault(UD);
      }
    }
    case 0x101: { // group 7
      const r = (m >> 3) & 7;
      if (m >= 0xC0 && r !== 4 && r !== 6) fault(UD);
      switch (r) {
        case 0:
        case 1: { // SGDT/SIDT
          const a = ea(cpu, slot);
          const limit = st[r === 0 ? ST_GDT_LIMIT : ST_IDT_LIMIT];
          const base = st[r === 0 ? ST_GDT_BASE : ST_IDT_BASE];
          probeWrite(cpu, a, 6);
          write16(cpu, a, limit);
          write32(cpu, (a + 2) | 0, op32 ? base : base & 0xFFFFFF);
          return false;
        }
        case 2:
        case 3: { // LGDT/LIDT
          requireCpl0(cpu);
          const a = ea(cpu, slot);
          const limit = read16(cpu, a);
          let base = read32(cpu, (a + 2) | 0);
          if (!op32) base &= 0xFFFFFF;
          st[r === 2 ? ST_GDT_LIMIT : ST_IDT_LIMIT] = limit;
          st[r === 2 ? ST_GDT_BASE : ST_IDT_BASE] = base;
          return false;
        }
        case 4: // SMSW
          if (m >= 0xC0 && op32) regs[m & 7] = st[ST_CR0];
          else writeRm(cpu, slot, m, 1, st[ST_CR0]);
          return false;
        case 6: { // LMSW: PE can be set but not cleared
          requireCpl0(cpu);
          const v = readRm(cpu, slot, m, 1) & 0xF;
          const cr0 = st[ST_CR0];
          writeCr(cpu, 0, (cr0 & ~0xE) | v | (cr0 & CR0_PE));
          return true;
        }
        case 7: // INVLPG
          requireCpl0(cpu);
          invalidatePage(cpu, ea(cpu, slot));
          return true;
        default:
          return fault(UD);
      }
    }
    case 0x102:
    case 0x103: { // LAR, LSL
      if (!pmNotVm86) fault(UD);
      const sel = readRm(cpu, slot, m, 1);
      const v = loadAccessRights(cpu, sel, op === 0x103);
      if (v === null) setZF(cpu, false);
      else {
        writeReg(cpu, (m >> 3) & 7, op32 ? 2 : 1, v);
        setZF(cpu, true);
      }
      return false;
    }
    case 0x106: // CLTS
      requireCpl0(cpu);
      st[ST_CR0] &= ~CR0_TS;
      return false;
    case 0x108:
    case 0x109: // INVD, WBINVD: no caches to write back
      requireCpl0(cpu);
      return false;
    case 0x10B: // UD2
      return fault(UD);
    case 0x118:
    case 0x119:
    case 0x11A:
    case 0x11B:
    case 0x11C:
    case 0x11D:
    case 0x11E:
    case 0x11F:
      return false; // hint NOPs: no memory access
    case 0x120: // MOV r32, CRn
      requireCpl0(cpu);
      regs[m & 7] = readCr(cpu, (m >> 3) & 7);
      return false;
    case 0x122: // MOV CRn, r32
      requireCpl0(cpu);
      writeCr(cpu, (m >> 3) & 7, regs[m & 7]);
      return true;
    case 0x121: { // MOV r32, DRn
      requireCpl0(cpu);
      const r = (m >> 3) & 7;
      regs[m & 7] = cpu.dr[r === 4 ? 6 : r === 5 ? 7 : r];
      return false;
    }
    case 0x123: { // MOV DRn, r32
      requireCpl0(cpu);
      const r = (m >> 3) & 7;
      cpu.dr[r === 4 ? 6 : r === 5 ? 7 : r] = regs[m & 7];
      return false;
    }
    case 0x130:
      requireCpl0(cpu);
      wrmsr(cpu, regs[ECX]);
      return true;
    case 0x132:
      requireCpl0(cpu);
      rdmsr(cpu, regs[ECX]);
      return false;
    case 0x131: { // RDTSC
      if ((st[ST_CR4] & CR4_TSD) !== 0 && pm && st[ST_CPL] !== 0) faultCode(GP, 0);
      const t = readTsc(cpu);
      regs[EAX] = t % 4294967296 | 0;
      regs[EDX] = Math.floor(t / 4294967296) | 0;
      return false;
    }
    case 0x134:
      sysenter(cpu);
      return true;
    case 0x135:
      sysexit(cpu);
      return true;
    case 0x1A2: // CPUID
      cpuid(regs[EAX], cpu.fpu !== null, CPUID_OUT);
      regs[EAX] = CPUID_OUT[0];
      regs[EBX] = CPUID_OUT[1];
      regs[ECX] = CPUID_OUT[2];
      regs[EDX] = CPUID_OUT[3];
      return false;
    case 0x1AE: { // FXSAVE/FXRSTOR
      const r = (m >> 3) & 7;
      if (cpu.fpu === null || m >= 0xC0 || r > 1) fault(UD);
      if ((st[ST_CR0] & (CR0_TS | CR0_EM)) !== 0) fault((st[ST_CR0] & CR0_EM) !== 0 ? UD : NM);
      // The 512-byte area's limit and type: its first and last 16 bytes checked cover it all.
      const seg = (dc.ea[slot] >> 12) & 7, off = eaOffset(cpu, slot), w = r === 0 ? WRITE : 0;
      if ((off >>> 0) > 0xFFFFFE00) faultCode(seg === SS ? SS_VEC : GP, 0); // wraps past 4 GiB
      checkSegmentAccess(cpu, seg, off, 16 | w);
      checkSegmentAccess(cpu, seg, (off + 496) | 0, 16 | w);
      const a = (off + cpu.segBase[seg]) | 0;
      if ((a & 15) !== 0) faultCode(GP, 0);
      if (r === 0) cpu.fpu.fxsave(a);
      else cpu.fpu.fxrstor(a);
      return false;
    }
    case 0x1C7: { // CMPXCHG8B
      if (m >= 0xC0 || ((m >> 3) & 7) !== 1) fault(UD);
      const a = ea(cpu, slot);
      probeWrite(cpu, a, 8);
      const lo = read32(cpu, a), hi = read32(cpu, (a + 4) | 0);
      if (lo === regs[EAX] && hi === regs[EDX]) {
        write32(cpu, a, regs[EBX]);
        write32(cpu, (a + 4) | 0, regs[ECX]);
        setZF(cpu, true);
      } else {
        write32(cpu, a, lo);
        write32(cpu, (a + 4) | 0, hi);
        regs[EAX] = lo;
        regs[EDX] = hi;
        setZF(cpu, false);
      }
      return false;
    }
    default:
      st[ST_EIP] = (next - dc.len[slot]) | 0;
      return fault(UD);
  }
}

function softwareInterrupt(cpu: Cpu, vector: number, next: number): void {
  if (cpu.stopOnException) {
    // Test mode: report the trap (EIP after the instruction, as hardware pushes) instead of delivering it.
    cpu.lastException = vector;
    cpu.lastErrorCode = 0;
    cpu.stopReason = "exception";
    return;
  }
  deliverInterrupt(cpu, vector, INT_SOFTWARE, false, 0, next);
  cpu.softwareInterruptTaken = true; // no single-step trap after INT n (SDM 17.3.1.4)
}

/** VERR/VERW: is the segment readable/writable at the current privilege? */
function verify(cpu: Cpu, sel: number, write: boolean): boolean {
  if ((sel & ~3) === 0) return false;
  try {
    readDescriptor(cpu, sel);
  } catch {
    return false;
  }
  const hi = DESC[1];
  if ((hi & 0x1000) === 0) return false;
  const type = (hi >>> 8) & 0xF, dpl = (hi >>> 13) & 3;
  const conformingCode = (type & 0xC) === 0xC;
  if (!conformingCode && (dpl < cpu.st[ST_CPL] || dpl < (sel & 3))) return false;
  if (write) return (type & 0xA) === 0x2; // writable data
  return (type & 0x8) === 0 || (type & 0x2) !== 0; // data, or readable code
}

/** LAR/LSL: the access rights or limit, or null when not visible (ZF clear). */
function loadAccessRights(cpu: Cpu, sel: number, limit: boolean): number | null {
  if ((sel & ~3) === 0) return null;
  try {
    readDescriptor(cpu, sel);
  } catch {
    return null;
  }
  const lo = DESC[0], hi = DESC[1];
  const s = (hi >>> 12) & 1, type = (hi >>> 8) & 0xF, dpl = (hi >>> 13) & 3;
  if (s === 0) {
    const okLar = [1, 2, 3, 4, 5, 9, 0xB, 0xC].includes(type);
    const okLsl = [1, 2, 3, 9, 0xB].includes(type);
    if (!(limit ? okLsl : okLar)) return null;
  }
  const conformingCode = s === 1 && (type & 0xC) === 0xC;
  if (!conformingCode && (dpl < cpu.st[ST_CPL] || dpl < (sel & 3))) return null;
  if (limit) {
    const l = (lo & 0xFFFF) | (hi & 0xF0000);
    return (hi & 0x800000) !== 0 ? ((l << 12) | 0xFFF) | 0 : l;
  }
  return hi & 0x00F0FF00;
}

// ---------------------------------------------------------------------------------------------
// x87 escapes
// ---------------------------------------------------------------------------------------------

/** Before a waiting x87 instruction: an unmasked exception pending from an earlier one is reported now. */
function checkFpuError(cpu: Cpu): void {
  const fpu = cpu.fpu;
  if (fpu === null || !fpu.checkPendingException()) return;
  if ((cpu.st[ST_CR0] & CR0_NE) !== 0) fault(MF);
  // CR0.NE = 0: the PC's FERR# -> IRQ 13 route.
  cpu.onFpuError?.();
}

const WRITE = 0x80;

/** The stack check of stack.ts, for the stack accesses made here (SDM Vol. 3A 5.3: #SS(0)). */
function checkStack(cpu: Cpu, sp: number, macc: number): void {
  if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, sp, macc);
}

/**
 * The memory operand of each x87 form, index (escape - 0xD8) << 3 | ModRM.reg: bytes | WRITE, 0
 * for forms that are #UD here (FISTTP is SSE3). FLDENV/FNSTENV are 14 bytes and FRSTOR/FNSAVE 94
 * with a 16-bit operand size, 14 more with a 32-bit one (SDM Vol. 1 8.1.10).
 */
const X87_MEM_ACCESS = new Uint8Array([
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4, // D8: m32fp arithmetic
  4,
  0,
  4 | WRITE,
  4 | WRITE,
  14,
  2,
  14 | WRITE,
  2 | WRITE, // D9: FLD FST FSTP FLDENV FLDCW FNSTENV FNSTCW
  4,
  4,
  4,
  4,
  4,
  4,
  4,
  4, // DA: m32int arithmetic
  4,
  0,
  4 | WRITE,
  4 | WRITE,
  0,
  10,
  0,
  10 | WRITE, // DB: FILD FIST FISTP, FLD/FSTP m80
  8,
  8,
  8,
  8,
  8,
  8,
  8,
  8, // DC: m64fp arithmetic
  8,
  0,
  8 | WRITE,
  8 | WRITE,
  94,
  0,
  94 | WRITE,
  2 | WRITE, // DD: FLD FST FSTP FRSTOR FNSAVE FNSTSW
  2,
  2,
  2,
  2,
  2,
  2,
  2,
  2, // DE: m16int arithmetic
  2,
  0,
  2 | WRITE,
  2 | WRITE,
  10,
  8,
  10 | WRITE,
  8 | WRITE, // DF: FILD FIST FISTP FBLD FILD64 FBSTP FISTP64
]);

function x87(cpu: Cpu, slot: number, op: number, m: number, op32: boolean, next: number): boolean {
  const cr0 = cpu.st[ST_CR0];
  const fpu = cpu.fpu;
  if ((cr0 & (CR0_EM | CR0_TS)) !== 0 || fpu === null) fault(NM);
  if (fpuInstructionWaits(op, m)) checkFpuError(cpu);
  const e = cpu.decoded.ea[slot];
  let addr = 0;
  if (m < 0xC0) {
    // Checked always (x87 is not hot): for a flat segment only a wrap past 4 GiB fails.
    const offset = eaOffset(cpu, slot);
    let macc = X87_MEM_ACCESS[((op - 0xD8) << 3) | ((m >> 3) & 7)];
    if ((macc & 0x7F) === 14 || (macc & 0x7F) === 94) macc += op32 ? 14 : 0; // 32-bit env/state
    checkSegmentAccess(cpu, (e >> 12) & 7, offset, macc);
    addr = (offset + cpu.segBase[(e >> 12) & 7]) | 0;
  }
  const eip = (next - cpu.decoded.len[slot]) | 0;
  fpu.eflagsIn = materialize(cpu.cc);
  fpu.realModeFormat = (cr0 & CR0_PE) === 0;
  const seg = (e >> 12) & 7;
  const r = fpu.execute(
    op,
    m,
    addr,
    !op32,
    eip,
    cpu.segSel[CS],
    (addr - cpu.segBase[seg]) | 0,
    cpu.segSel[seg],
  );
  if (r === FPU_INVALID_OPCODE) {
    cpu.st[ST_EIP] = eip;
    fault(UD);
  }
  if (r === FPU_WROTE_AX) cpu.r16[0] = fpu.statusWord();
  else if (r === FPU_WROTE_EFLAGS) {
    const f = materialize(cpu.cc);
    cpu.cc[CC_FLAGS] = (f & ~FPU_EFLAGS_MASK) | (fpu.eflagsOut & FPU_EFLAGS_MASK);
    fpu.eflagsWritten = false;
  }
  return false;
}

void EBP;
void EDI;
void ESI;
void pop16;
void pop32;
void push32;
void REG8;
void setCF;
