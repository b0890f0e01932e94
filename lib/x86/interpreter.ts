/**
 * The interpreter's hot loop (HOT FILE). `execute(cpu, budget)` runs up to `budget` instructions:
 * the outer loop delivers pending interrupts and exceptions; the inner loop fetches predecoded
 * slots from the per-page decode cache and dispatches on a dense switch with literal labels
 * (dispatch id = opcode, 0x100 + byte for 0F xx, + 0x200 for a 16-bit operand size). Common
 * instructions are inline; the rest live in ops/. EIP, the code-segment base and the current code
 * page are locals: anything that changes them (far transfers, CR writes, INVLPG, mode changes)
 * ends the inner loop so they are reloaded. Faults are thrown as the one preallocated FAULT and
 * caught outside the inner loop, with EIP still at the faulting instruction.
 */
import { type Cpu, CS, EAX, EBP, ECX, EDX, ESP, SS, ST_EIP } from "./cpu.ts";
import { DB, DE, FAULT, fault, faultCode, GP, UD } from "./fault.ts";
import { CC_EFLAGS, CC_FLAGS, CC_OP, materialize, testCondition } from "./lazy_flags.ts";
import { codeMap, decode } from "./decoder.ts";
import { probeWrite, read16, read32, read8, translateExec, write16, write32 } from "./mmu.ts";
import {
  add32,
  alu,
  bitScan,
  dec,
  inc,
  logic,
  mulFlags,
  mulHighS32,
  setCF,
  shift,
  shiftDouble,
  sub32,
  sx,
} from "./ops/alu.ts";
import { ea, eaOffset, readMem, readRm, REG8, writeMem, writeRm } from "./ops/operands.ts";
import { adjustSp, peek16, peek32, pop16, pop32, push16, push32 } from "./ops/stack.ts";
import { cmps, lods, movs, scas, stos } from "./ops/string.ts";
import { checkSegmentAccess } from "./segments.ts";
import { bitTest, cmpxchg, executeRare, group3, popFlags } from "./ops/system_ops.ts";
import {
  deliverException,
  deliverInterrupt,
  INT_HARDWARE,
  TripleFault,
  UnsupportedFeature,
} from "./interrupts.ts";

const IF = 0x200, TF = 0x100, DF = 0x400;

/** Runs up to `budget` instructions; returns the number retired. */
export function execute(cpu: Cpu, budget: number): number {
  const cc = cpu.cc;
  let n = 0;
  cpu.stopReason = "";
  cpu.sliceRetired = 0;
  cpu.blockFailed = false;
  while (n < budget) {
    let stopAt = budget;
    if (cpu.interruptShadow) {
      cpu.interruptShadow = false;
      stopAt = n + 1;
    } else if ((cc[CC_FLAGS] & IF) !== 0 && cpu.interrupts !== null && cpu.interrupts.hasInterrupt()) {
      const vector = cpu.interrupts.acknowledge();
      if (!deliver(cpu, vector) || cpu.stopReason !== "") break;
    }
    if (cpu.halted) break;
    const tracing = (cc[CC_FLAGS] & TF) !== 0;
    if (tracing) {
      stopAt = n + 1;
      cpu.softwareInterruptTaken = false;
    }
    const nStart = n;
    // The inner loop is its own function so V8 optimizes it as a whole and leaving it is a plain
    // return (an on-stack-replaced inner loop deoptimizes on every exit).
    n = runBlock(cpu, n, stopAt);
    if (cpu.blockFailed) break;
    // MOV SS / POP SS end their block; the trap after them waits for the next instruction
    // (SDM 6.8.3), which then traps on its own.
    const heldOff = cpu.trapShadow;
    cpu.trapShadow = false;
    if (tracing && n > nStart && !cpu.softwareInterruptTaken && !heldOff) {
      // Single-step trap after the instruction (SDM 17.3.1.4).
      cpu.dr[6] |= 0x4000;
      if (!deliver(cpu, DB)) break;
    }
    if (cpu.stopReason !== "") break;
  }
  cpu.retiredBase += n;
  cpu.sliceRetired = 0;
  return n;
}

/**
 * Runs instructions from EIP until `stopAt` instructions have retired in total (or something
 * ends the block early); returns the new count. Faults are delivered here; `cpu.blockFailed`
 * says execution must stop (shutdown, unsupported feature, or a test's stopOnException).
 */
function runBlock(cpu: Cpu, n: number, stopAt: number): number {
  const regs = cpu.regs, r16 = cpu.r16, r8 = cpu.r8, cc = cpu.cc, st = cpu.st;
  const dc = cpu.decoded;
  const dOp = dc.op, dLen = dc.len, dModrm = dc.modrm, dImm = dc.imm;
  let eip = st[ST_EIP];
  let shadowN = -1;
  const code32 = cpu.code32;
  const csBase = cpu.segBase[CS];
  const jit = cpu.jit;
  let pageLin = -1;
  let map: Int32Array | null = null;
  try {
    while (n < stopAt) {
      const lin = (csBase + eip) | 0;
      if ((lin >>> 12) !== pageLin) {
        map = codeMap(cpu, translateExec(cpu, lin), code32);
        pageLin = lin >>> 12;
      }
      let slot = map !== null ? map[lin & 0xFFF] : 0;
      if (slot <= 0) {
        // 0: not decoded yet; negative: the entry of a translated unit (jit/translator.ts).
        if (slot === 0) {
          slot = decode(cpu, lin, map, code32);
          if (jit.eager && map !== null && code32) slot = jit.compileAt(map, lin & 0xFFF, eip, slot);
        }
        if (slot < 0) {
          const m = jit.run(-slot, n, stopAt, eip);
          if (m >= 0) {
            n = m;
            eip = st[ST_EIP];
            // Where units leave to is sampled too (a branch inside a unit is never sampled by us).
            if (--jit.tick === 0) jit.sample(eip);
            continue;
          }
          slot = jit.entrySlot[-slot]; // it did not fit in the budget: interpret its first instruction
        }
      }
      const next = (eip + dLen[slot]) | 0;
      const id = dOp[slot];
      n++;
      switch (id) {
        // ---- ALU: ADD OR ADC SBB AND SUB XOR CMP, six forms each ----
        case 0x00:
        case 0x08:
        case 0x10:
        case 0x18:
        case 0x20:
        case 0x28:
        case 0x30:
        case 0x38:
        case 0x200:
        case 0x208:
        case 0x210:
        case 0x218:
        case 0x220:
        case 0x228:
        case 0x230:
        case 0x238:
          aluEG(cpu, slot, (id >> 3) & 7, 0);
          eip = next;
          break;
        case 0x01:
        case 0x09:
        case 0x11:
        case 0x19:
        case 0x21:
        case 0x29:
        case 0x31:
        case 0x39:
          aluEG(cpu, slot, (id >> 3) & 7, 2);
          eip = next;
          break;
        case 0x201:
        case 0x209:
        case 0x211:
        case 0x219:
        case 0x221:
        case 0x229:
        case 0x231:
        case 0x239:
          aluEG(cpu, slot, (id >> 3) & 7, 1);
          eip = next;
          break;
        case 0x02:
        case 0x0A:
        case 0x12:
        case 0x1A:
        case 0x22:
        case 0x2A:
        case 0x32:
        case 0x3A:
        case 0x202:
        case 0x20A:
        case 0x212:
        case 0x21A:
        case 0x222:
        case 0x22A:
        case 0x232:
        case 0x23A: {
          const m = dModrm[slot], g = REG8[(m >> 3) & 7];
          const r = alu(cc, (id >> 3) & 7, r8[g], readRm(cpu, slot, m, 0), 0);
          if ((id & 0x38) !== 0x38) r8[g] = r;
          eip = next;
          break;
        }
        case 0x03:
        case 0x0B:
        case 0x13:
        case 0x1B:
        case 0x23:
        case 0x2B:
        case 0x33:
        case 0x3B: {
          const m = dModrm[slot], g = (m >> 3) & 7;
          const src = m >= 0xC0 ? regs[m & 7] : read32(cpu, ea(cpu, slot));
          const r = alu(cc, (id >> 3) & 7, regs[g], src, 2);
          if ((id & 0x38) !== 0x38) regs[g] = r;
          eip = next;
          break;
        }
        case 0x203:
        case 0x20B:
        case 0x213:
        case 0x21B:
        case 0x223:
        case 0x22B:
        case 0x233:
        case 0x23B: {
          const m = dModrm[slot], g = (m >> 3) & 7;
          const r = alu(cc, (id >> 3) & 7, r16[g << 1], readRm(cpu, slot, m, 1), 1);
          if ((id & 0x38) !== 0x38) r16[g << 1] = r;
          eip = next;
          break;
        }
        case 0x04:
        case 0x0C:
        case 0x14:
        case 0x1C:
        case 0x24:
        case 0x2C:
        case 0x34:
        case 0x3C:
        case 0x204:
        case 0x20C:
        case 0x214:
        case 0x21C:
        case 0x224:
        case 0x22C:
        case 0x234:
        case 0x23C: {
          const r = alu(cc, (id >> 3) & 7, r8[0], dImm[slot], 0);
          if ((id & 0x38) !== 0x38) r8[0] = r;
          eip = next;
          break;
        }
        case 0x05:
        case 0x0D:
        case 0x15:
        case 0x1D:
        case 0x25:
        case 0x2D:
        case 0x35:
        case 0x3D: {
          const r = alu(cc, (id >> 3) & 7, regs[EAX], dImm[slot], 2);
          if ((id & 0x38) !== 0x38) regs[EAX] = r;
          eip = next;
          break;
        }
        case 0x205:
        case 0x20D:
        case 0x215:
        case 0x21D:
        case 0x225:
        case 0x22D:
        case 0x235:
        case 0x23D: {
          const r = alu(cc, (id >> 3) & 7, r16[0], dImm[slot], 1);
          if ((id & 0x38) !== 0x38) r16[0] = r;
          eip = next;
          break;
        }
        // ---- INC/DEC/PUSH/POP register ----
        case 0x40:
        case 0x41:
        case 0x42:
        case 0x43:
        case 0x44:
        case 0x45:
        case 0x46:
        case 0x47:
          regs[id & 7] = inc(cc, regs[id & 7], 2);
          eip = next;
          break;
        case 0x240:
        case 0x241:
        case 0x242:
        case 0x243:
        case 0x244:
        case 0x245:
        case 0x246:
        case 0x247:
          r16[(id & 7) << 1] = inc(cc, r16[(id & 7) << 1], 1);
          eip = next;
          break;
        case 0x48:
        case 0x49:
        case 0x4A:
        case 0x4B:
        case 0x4C:
        case 0x4D:
        case 0x4E:
        case 0x4F:
          regs[id & 7] = dec(cc, regs[id & 7], 2);
          eip = next;
          break;
        case 0x248:
        case 0x249:
        case 0x24A:
        case 0x24B:
        case 0x24C:
        case 0x24D:
        case 0x24E:
        case 0x24F:
          r16[(id & 7) << 1] = dec(cc, r16[(id & 7) << 1], 1);
          eip = next;
          break;
        case 0x50:
        case 0x51:
        case 0x52:
        case 0x53:
        case 0x54:
        case 0x55:
        case 0x56:
        case 0x57:
          push32(cpu, regs[id & 7]);
          eip = next;
          break;
        case 0x250:
        case 0x251:
        case 0x252:
        case 0x253:
        case 0x254:
        case 0x255:
        case 0x256:
        case 0x257:
          push16(cpu, r16[(id & 7) << 1]);
          eip = next;
          break;
        case 0x58:
        case 0x59:
        case 0x5A:
        case 0x5B:
        case 0x5C:
        case 0x5D:
        case 0x5E:
        case 0x5F:
          regs[id & 7] = pop32(cpu);
          eip = next;
          break;
        case 0x258:
        case 0x259:
        case 0x25A:
        case 0x25B:
        case 0x25C:
        case 0x25D:
        case 0x25E:
        case 0x25F:
          r16[(id & 7) << 1] = pop16(cpu);
          eip = next;
          break;
        case 0x68:
        case 0x6A:
          push32(cpu, dImm[slot]);
          eip = next;
          break;
        case 0x268:
        case 0x26A:
          push16(cpu, dImm[slot]);
          eip = next;
          break;
        case 0x69:
        case 0x6B:
        case 0x1AF: {
          const m = dModrm[slot];
          const a = m >= 0xC0 ? regs[m & 7] : read32(cpu, ea(cpu, slot));
          const b = id === 0x1AF ? regs[(m >> 3) & 7] : dImm[slot];
          const lo = Math.imul(a, b);
          const hi = mulHighS32(a, b);
          mulFlags(cc, lo, hi !== (lo >> 31), 2);
          regs[(m >> 3) & 7] = lo;
          eip = next;
          break;
        }
        case 0x269:
        case 0x26B:
        case 0x3AF: {
          const m = dModrm[slot];
          const a = (readRm(cpu, slot, m, 1) << 16) >> 16;
          const b = id === 0x3AF ? (r16[((m >> 3) & 7) << 1] << 16) >> 16 : (dImm[slot] << 16) >> 16;
          const p = a * b;
          mulFlags(cc, p, p !== ((p << 16) >> 16), 1);
          r16[((m >> 3) & 7) << 1] = p;
          eip = next;
          break;
        }
        // ---- Jcc ----
        case 0x70:
        case 0x71:
        case 0x72:
        case 0x73:
        case 0x74:
        case 0x75:
        case 0x76:
        case 0x77:
        case 0x78:
        case 0x79:
        case 0x7A:
        case 0x7B:
        case 0x7C:
        case 0x7D:
        case 0x7E:
        case 0x7F:
        case 0x180:
        case 0x181:
        case 0x182:
        case 0x183:
        case 0x184:
        case 0x185:
        case 0x186:
        case 0x187:
        case 0x188:
        case 0x189:
        case 0x18A:
        case 0x18B:
        case 0x18C:
        case 0x18D:
        case 0x18E:
        case 0x18F:
          eip = testCondition(cc, id & 0xF) ? (next + dImm[slot]) | 0 : next;
          if (--jit.tick === 0) jit.sample(eip);
          break;
        case 0x270:
        case 0x271:
        case 0x272:
        case 0x273:
        case 0x274:
        case 0x275:
        case 0x276:
        case 0x277:
        case 0x278:
        case 0x279:
        case 0x27A:
        case 0x27B:
        case 0x27C:
        case 0x27D:
        case 0x27E:
        case 0x27F:
        case 0x380:
        case 0x381:
        case 0x382:
        case 0x383:
        case 0x384:
        case 0x385:
        case 0x386:
        case 0x387:
        case 0x388:
        case 0x389:
        case 0x38A:
        case 0x38B:
        case 0x38C:
        case 0x38D:
        case 0x38E:
        case 0x38F:
          eip = testCondition(cc, id & 0xF) ? (next + dImm[slot]) & 0xFFFF : next;
          break;
        // ---- Group 1: ALU E, imm ----
        case 0x80:
        case 0x82:
        case 0x280:
        case 0x282:
          aluEI(cpu, slot, 0, dImm[slot]);
          eip = next;
          break;
        case 0x81:
        case 0x83:
          aluEI(cpu, slot, 2, dImm[slot]);
          eip = next;
          break;
        case 0x281:
        case 0x283:
          aluEI(cpu, slot, 1, dImm[slot]);
          eip = next;
          break;
        // ---- TEST, XCHG, MOV, LEA ----
        case 0x84:
        case 0x284: {
          const m = dModrm[slot];
          logic(cc, readRm(cpu, slot, m, 0) & r8[REG8[(m >> 3) & 7]], 0);
          eip = next;
          break;
        }
        case 0x85: {
          const m = dModrm[slot];
          logic(cc, (m >= 0xC0 ? regs[m & 7] : read32(cpu, ea(cpu, slot))) & regs[(m >> 3) & 7], 2);
          eip = next;
          break;
        }
        case 0x285: {
          const m = dModrm[slot];
          logic(cc, readRm(cpu, slot, m, 1) & r16[((m >> 3) & 7) << 1], 1);
          eip = next;
          break;
        }
        case 0x86:
        case 0x286:
          xchg(cpu, slot, 0);
          eip = next;
          break;
        case 0x87:
          xchg(cpu, slot, 2);
          eip = next;
          break;
        case 0x287:
          xchg(cpu, slot, 1);
          eip = next;
          break;
        case 0x88:
        case 0x288: {
          const m = dModrm[slot];
          writeRm(cpu, slot, m, 0, r8[REG8[(m >> 3) & 7]]);
          eip = next;
          break;
        }
        case 0x89: {
          const m = dModrm[slot];
          if (m >= 0xC0) regs[m & 7] = regs[(m >> 3) & 7];
          else write32(cpu, ea(cpu, slot), regs[(m >> 3) & 7]);
          eip = next;
          break;
        }
        case 0x289: {
          const m = dModrm[slot];
          writeRm(cpu, slot, m, 1, r16[((m >> 3) & 7) << 1]);
          eip = next;
          break;
        }
        case 0x8A:
        case 0x28A: {
          const m = dModrm[slot];
          r8[REG8[(m >> 3) & 7]] = readRm(cpu, slot, m, 0);
          eip = next;
          break;
        }
        case 0x8B: {
          const m = dModrm[slot];
          regs[(m >> 3) & 7] = m >= 0xC0 ? regs[m & 7] : read32(cpu, ea(cpu, slot));
          eip = next;
          break;
        }
        case 0x28B: {
          const m = dModrm[slot];
          r16[((m >> 3) & 7) << 1] = readRm(cpu, slot, m, 1);
          eip = next;
          break;
        }
        case 0x8D: {
          const m = dModrm[slot];
          if (m >= 0xC0) fault(UD);
          regs[(m >> 3) & 7] = eaOffset(cpu, slot);
          eip = next;
          break;
        }
        case 0x28D: {
          const m = dModrm[slot];
          if (m >= 0xC0) fault(UD);
          r16[((m >> 3) & 7) << 1] = eaOffset(cpu, slot);
          eip = next;
          break;
        }
        case 0x8F:
        case 0x28F:
          popEv(cpu, slot, id === 0x8F ? 2 : 1);
          eip = next;
          break;
        case 0x90:
        case 0x290:
          eip = next;
          break;
        case 0x91:
        case 0x92:
        case 0x93:
        case 0x94:
        case 0x95:
        case 0x96:
        case 0x97: {
          const t = regs[EAX];
          regs[EAX] = regs[id & 7];
          regs[id & 7] = t;
          eip = next;
          break;
        }
        case 0x291:
        case 0x292:
        case 0x293:
        case 0x294:
        case 0x295:
        case 0x296:
        case 0x297: {
          const t = r16[0];
          r16[0] = r16[(id & 7) << 1];
          r16[(id & 7) << 1] = t;
          eip = next;
          break;
        }
        case 0x98:
          regs[EAX] = (regs[EAX] << 16) >> 16;
          eip = next;
          break;
        case 0x298:
          r16[0] = (r8[0] << 24) >> 24;
          eip = next;
          break;
        case 0x99:
          regs[EDX] = regs[EAX] >> 31;
          eip = next;
          break;
        case 0x299:
          r16[EDX << 1] = (regs[EAX] << 16) >> 31;
          eip = next;
          break;
        case 0x9C:
        case 0x29C: {
          // IOPL-sensitive in VM86 (VM implies PE): #GP(0) unless IOPL = 3.
          if ((cc[CC_FLAGS] & 0x20000) !== 0 && (cc[CC_FLAGS] & 0x3000) !== 0x3000) faultCode(GP, 0);
          const f = materialize(cc) & ~0x30000; // VM and RF are not pushed
          if (id === 0x9C) push32(cpu, f);
          else push16(cpu, f);
          eip = next;
          break;
        }
        case 0x9D:
        case 0x29D: {
          const before = cc[CC_FLAGS];
          popFlags(cpu, id === 0x9D);
          eip = next;
          if (((cc[CC_FLAGS] & ~before) & (IF | TF)) !== 0) stopAt = n;
          break;
        }
        // ---- MOV moffs, string instructions ----
        case 0xA0:
        case 0x2A0:
          r8[0] = read8(cpu, ea(cpu, slot));
          eip = next;
          break;
        case 0xA1:
          regs[EAX] = read32(cpu, ea(cpu, slot));
          eip = next;
          break;
        case 0x2A1:
          r16[0] = read16(cpu, ea(cpu, slot));
          eip = next;
          break;
        case 0xA2:
        case 0x2A2:
          writeMem(cpu, ea(cpu, slot), 0, r8[0]);
          eip = next;
          break;
        case 0xA3:
          write32(cpu, ea(cpu, slot), regs[EAX]);
          eip = next;
          break;
        case 0x2A3:
          write16(cpu, ea(cpu, slot), r16[0]);
          eip = next;
          break;
        case 0xA4:
        case 0x2A4:
          eip = movs(cpu, slot, 0) ? eip : next;
          break;
        case 0xA5:
          eip = movs(cpu, slot, 2) ? eip : next;
          break;
        case 0x2A5:
          eip = movs(cpu, slot, 1) ? eip : next;
          break;
        case 0xA6:
        case 0x2A6:
          eip = cmps(cpu, slot, 0) ? eip : next;
          break;
        case 0xA7:
          eip = cmps(cpu, slot, 2) ? eip : next;
          break;
        case 0x2A7:
          eip = cmps(cpu, slot, 1) ? eip : next;
          break;
        case 0xA8:
        case 0x2A8:
          logic(cc, r8[0] & dImm[slot], 0);
          eip = next;
          break;
        case 0xA9:
          logic(cc, regs[EAX] & dImm[slot], 2);
          eip = next;
          break;
        case 0x2A9:
          logic(cc, r16[0] & dImm[slot], 1);
          eip = next;
          break;
        case 0xAA:
        case 0x2AA:
          eip = stos(cpu, slot, 0) ? eip : next;
          break;
        case 0xAB:
          eip = stos(cpu, slot, 2) ? eip : next;
          break;
        case 0x2AB:
          eip = stos(cpu, slot, 1) ? eip : next;
          break;
        case 0xAC:
        case 0x2AC:
          eip = lods(cpu, slot, 0) ? eip : next;
          break;
        case 0xAD:
          eip = lods(cpu, slot, 2) ? eip : next;
          break;
        case 0x2AD:
          eip = lods(cpu, slot, 1) ? eip : next;
          break;
        case 0xAE:
        case 0x2AE:
          eip = scas(cpu, slot, 0) ? eip : next;
          break;
        case 0xAF:
          eip = scas(cpu, slot, 2) ? eip : next;
          break;
        case 0x2AF:
          eip = scas(cpu, slot, 1) ? eip : next;
          break;
        // ---- MOV immediate ----
        case 0xB0:
        case 0xB1:
        case 0xB2:
        case 0xB3:
        case 0xB4:
        case 0xB5:
        case 0xB6:
        case 0xB7:
        case 0x2B0:
        case 0x2B1:
        case 0x2B2:
        case 0x2B3:
        case 0x2B4:
        case 0x2B5:
        case 0x2B6:
        case 0x2B7:
          r8[REG8[id & 7]] = dImm[slot];
          eip = next;
          break;
        case 0xB8:
        case 0xB9:
        case 0xBA:
        case 0xBB:
        case 0xBC:
        case 0xBD:
        case 0xBE:
        case 0xBF:
          regs[id & 7] = dImm[slot];
          eip = next;
          break;
        case 0x2B8:
        case 0x2B9:
        case 0x2BA:
        case 0x2BB:
        case 0x2BC:
        case 0x2BD:
        case 0x2BE:
        case 0x2BF:
          r16[(id & 7) << 1] = dImm[slot];
          eip = next;
          break;
        case 0xC6:
        case 0x2C6:
          if ((dModrm[slot] & 0x38) !== 0) fault(UD);
          writeRm(cpu, slot, dModrm[slot], 0, dImm[slot]);
          eip = next;
          break;
        case 0xC7:
          if ((dModrm[slot] & 0x38) !== 0) fault(UD);
          writeRm(cpu, slot, dModrm[slot], 2, dImm[slot]);
          eip = next;
          break;
        case 0x2C7:
          if ((dModrm[slot] & 0x38) !== 0) fault(UD);
          writeRm(cpu, slot, dModrm[slot], 1, dImm[slot]);
          eip = next;
          break;
        // ---- Shifts and rotates ----
        case 0xC0:
        case 0x2C0:
          shiftE(cpu, slot, 0, dImm[slot]);
          eip = next;
          break;
        case 0xC1:
          shiftE(cpu, slot, 2, dImm[slot]);
          eip = next;
          break;
        case 0x2C1:
          shiftE(cpu, slot, 1, dImm[slot]);
          eip = next;
          break;
        case 0xD0:
        case 0x2D0:
          shiftE(cpu, slot, 0, 1);
          eip = next;
          break;
        case 0xD1:
          shiftE(cpu, slot, 2, 1);
          eip = next;
          break;
        case 0x2D1:
          shiftE(cpu, slot, 1, 1);
          eip = next;
          break;
        case 0xD2:
        case 0x2D2:
          shiftE(cpu, slot, 0, r8[4]);
          eip = next;
          break;
        case 0xD3:
          shiftE(cpu, slot, 2, r8[4]);
          eip = next;
          break;
        case 0x2D3:
          shiftE(cpu, slot, 1, r8[4]);
          eip = next;
          break;
        // ---- Near control transfers ----
        case 0xC3:
          eip = pop32(cpu);
          if (--jit.tick === 0) jit.sample(eip);
          break;
        case 0x2C3:
          eip = pop16(cpu);
          break;
        case 0xC2: {
          const t = peek32(cpu, 0);
          adjustSp(cpu, 4 + dImm[slot]);
          eip = t;
          break;
        }
        case 0x2C2: {
          const t = peek16(cpu, 0);
          adjustSp(cpu, 2 + dImm[slot]);
          eip = t;
          break;
        }
        case 0xC9:
        case 0x2C9:
          leave(cpu, id === 0xC9);
          eip = next;
          break;
        case 0xE8:
          push32(cpu, next);
          eip = (next + dImm[slot]) | 0;
          if (--jit.tick === 0) jit.sample(eip);
          break;
        case 0x2E8:
          push16(cpu, next);
          eip = (next + dImm[slot]) & 0xFFFF;
          break;
        case 0xE9:
        case 0xEB:
          eip = (next + dImm[slot]) | 0;
          if (--jit.tick === 0) jit.sample(eip);
          break;
        case 0x2E9:
        case 0x2EB:
          eip = (next + dImm[slot]) & 0xFFFF;
          break;
        case 0xE0:
        case 0xE1:
        case 0xE2:
        case 0xE3:
        case 0x2E0:
        case 0x2E1:
        case 0x2E2:
        case 0x2E3:
          eip = loopOp(cpu, slot, id, next);
          break;
        // ---- Group 3, flags, group 4/5 ----
        case 0xF6:
        case 0x2F6:
          group3(cpu, slot, 0);
          eip = next;
          break;
        case 0xF7:
          group3(cpu, slot, 2);
          eip = next;
          break;
        case 0x2F7:
          group3(cpu, slot, 1);
          eip = next;
          break;
        case 0xF5:
        case 0x2F5:
          setCF(cc, (materialize(cc) & 1) ^ 1);
          eip = next;
          break;
        case 0xF8:
        case 0x2F8:
          setCF(cc, 0);
          eip = next;
          break;
        case 0xF9:
        case 0x2F9:
          setCF(cc, 1);
          eip = next;
          break;
        case 0xFC:
        case 0x2FC:
          cc[CC_FLAGS] &= ~DF;
          eip = next;
          break;
        case 0xFD:
        case 0x2FD:
          cc[CC_FLAGS] |= DF;
          eip = next;
          break;
        case 0xFA:
        case 0x2FA:
          if (!ioPrivileged(cpu)) {
            if (cpu.generalProtectionHook === null || !cpu.generalProtectionHook(eip)) faultCode(GP, 0);
          } else cc[CC_FLAGS] &= ~IF;
          eip = next;
          break;
        case 0xFB:
        case 0x2FB:
          if (!ioPrivileged(cpu)) faultCode(GP, 0);
          if ((cc[CC_FLAGS] & IF) === 0) {
            cc[CC_FLAGS] |= IF;
            shadowN = n;
            stopAt = n + 1;
          }
          eip = next;
          break;
        case 0xFE:
        case 0x2FE: {
          const m = dModrm[slot];
          const op = (m >> 3) & 7;
          if (op > 1) fault(UD);
          incDecE(cpu, slot, m, 0, op);
          eip = next;
          break;
        }
        case 0xFF:
        case 0x2FF: {
          const m = dModrm[slot];
          const op = (m >> 3) & 7;
          const size = id === 0xFF ? 2 : 1;
          if (op < 2) {
            incDecE(cpu, slot, m, size, op);
            eip = next;
          } else if (op === 2) {
            const t = readRm(cpu, slot, m, size);
            if (size === 2) push32(cpu, next);
            else push16(cpu, next);
            eip = size === 2 ? t : t & 0xFFFF;
            if (--jit.tick === 0) jit.sample(eip);
          } else if (op === 4) {
            const t = readRm(cpu, slot, m, size);
            eip = size === 2 ? t : t & 0xFFFF;
            if (--jit.tick === 0) jit.sample(eip);
          } else if (op === 6) {
            const v = readRm(cpu, slot, m, size);
            if (size === 2) push32(cpu, v);
            else push16(cpu, v);
            eip = next;
          } else {
            st[ST_EIP] = eip;
            if (executeRare(cpu, slot, id, next)) stopAt = n;
            eip = st[ST_EIP];
          }
          break;
        }
        // ---- 0F: MOVZX/MOVSX, SETcc, CMOVcc, bit ops, double shifts, CMPXCHG, XADD, BSWAP ----
        case 0x1B6: {
          const m = dModrm[slot];
          regs[(m >> 3) & 7] = readRm(cpu, slot, m, 0);
          eip = next;
          break;
        }
        case 0x3B6: {
          const m = dModrm[slot];
          r16[((m >> 3) & 7) << 1] = readRm(cpu, slot, m, 0);
          eip = next;
          break;
        }
        case 0x1B7:
        case 0x3B7: {
          const m = dModrm[slot];
          const v = readRm(cpu, slot, m, 1);
          if (id === 0x1B7) regs[(m >> 3) & 7] = v;
          else r16[((m >> 3) & 7) << 1] = v;
          eip = next;
          break;
        }
        case 0x1BE:
        case 0x3BE: {
          const m = dModrm[slot];
          const v = (readRm(cpu, slot, m, 0) << 24) >> 24;
          if (id === 0x1BE) regs[(m >> 3) & 7] = v;
          else r16[((m >> 3) & 7) << 1] = v;
          eip = next;
          break;
        }
        case 0x1BF:
        case 0x3BF: {
          const m = dModrm[slot];
          const v = (readRm(cpu, slot, m, 1) << 16) >> 16;
          if (id === 0x1BF) regs[(m >> 3) & 7] = v;
          else r16[((m >> 3) & 7) << 1] = v;
          eip = next;
          break;
        }
        case 0x190:
        case 0x191:
        case 0x192:
        case 0x193:
        case 0x194:
        case 0x195:
        case 0x196:
        case 0x197:
        case 0x198:
        case 0x199:
        case 0x19A:
        case 0x19B:
        case 0x19C:
        case 0x19D:
        case 0x19E:
        case 0x19F:
        case 0x390:
        case 0x391:
        case 0x392:
        case 0x393:
        case 0x394:
        case 0x395:
        case 0x396:
        case 0x397:
        case 0x398:
        case 0x399:
        case 0x39A:
        case 0x39B:
        case 0x39C:
        case 0x39D:
        case 0x39E:
        case 0x39F:
          writeRm(cpu, slot, dModrm[slot], 0, testCondition(cc, id & 0xF) ? 1 : 0);
          eip = next;
          break;
        case 0x140:
        case 0x141:
        case 0x142:
        case 0x143:
        case 0x144:
        case 0x145:
        case 0x146:
        case 0x147:
        case 0x148:
        case 0x149:
        case 0x14A:
        case 0x14B:
        case 0x14C:
        case 0x14D:
        case 0x14E:
        case 0x14F: {
          const m = dModrm[slot];
          const v = m >= 0xC0 ? regs[m & 7] : read32(cpu, ea(cpu, slot)); // the load happens either way
          if (testCondition(cc, id & 0xF)) regs[(m >> 3) & 7] = v;
          eip = next;
          break;
        }
        case 0x340:
        case 0x341:
        case 0x342:
        case 0x343:
        case 0x344:
        case 0x345:
        case 0x346:
        case 0x347:
        case 0x348:
        case 0x349:
        case 0x34A:
        case 0x34B:
        case 0x34C:
        case 0x34D:
        case 0x34E:
        case 0x34F: {
          const m = dModrm[slot];
          const v = readRm(cpu, slot, m, 1);
          if (testCondition(cc, id & 0xF)) r16[((m >> 3) & 7) << 1] = v;
          eip = next;
          break;
        }
        case 0x1A3:
        case 0x1AB:
        case 0x1B3:
        case 0x1BB:
        case 0x3A3:
        case 0x3AB:
        case 0x3B3:
        case 0x3BB:
        case 0x1BA:
        case 0x3BA:
          bitTest(cpu, slot, id);
          eip = next;
          break;
        case 0x1BC:
        case 0x1BD:
        case 0x3BC:
        case 0x3BD: {
          const m = dModrm[slot];
          const size = id < 0x200 ? 2 : 1;
          const i = bitScan(cc, readRm(cpu, slot, m, size), (id & 1) !== 0, size);
          if (i >= 0) {
            if (size === 2) regs[(m >> 3) & 7] = i;
            else r16[((m >> 3) & 7) << 1] = i;
          }
          eip = next;
          break;
        }
        case 0x1A4:
        case 0x1A5:
        case 0x1AC:
        case 0x1AD:
        case 0x3A4:
        case 0x3A5:
        case 0x3AC:
        case 0x3AD: {
          const m = dModrm[slot];
          const size = id < 0x200 ? 2 : 1;
          const count = (id & 1) !== 0 ? r8[4] : dImm[slot];
          const left = (id & 0xFF) < 0xA8;
          const src = size === 2 ? regs[(m >> 3) & 7] : r16[((m >> 3) & 7) << 1];
          if (m >= 0xC0) {
            const r = shiftDouble(cc, left, size === 2 ? regs[m & 7] : r16[(m & 7) << 1], src, count, size);
            if (size === 2) regs[m & 7] = r;
            else r16[(m & 7) << 1] = r;
          } else {
            const a = ea(cpu, slot);
            probeWrite(cpu, a, 2 << (size - 1));
            writeMem(cpu, a, size, shiftDouble(cc, left, readMem(cpu, a, size), src, count, size));
          }
          eip = next;
          break;
        }
        case 0x1B0:
        case 0x3B0:
          cmpxchg(cpu, slot, 0);
          eip = next;
          break;
        case 0x1B1:
          cmpxchg(cpu, slot, 2);
          eip = next;
          break;
        case 0x3B1:
          cmpxchg(cpu, slot, 1);
          eip = next;
          break;
        case 0x1C0:
        case 0x3C0:
          xadd(cpu, slot, 0);
          eip = next;
          break;
        case 0x1C1:
          xadd(cpu, slot, 2);
          eip = next;
          break;
        case 0x3C1:
          xadd(cpu, slot, 1);
          eip = next;
          break;
        case 0x1C8:
        case 0x1C9:
        case 0x1CA:
        case 0x1CB:
        case 0x1CC:
        case 0x1CD:
        case 0x1CE:
        case 0x1CF: {
          const v = regs[id & 7];
          regs[id & 7] = ((v << 24) | ((v & 0xFF00) << 8) | ((v >>> 8) & 0xFF00) | (v >>> 24)) | 0;
          eip = next;
          break;
        }
        case 0x3C8:
        case 0x3C9:
        case 0x3CA:
        case 0x3CB:
        case 0x3CC:
        case 0x3CD:
        case 0x3CE:
        case 0x3CF:
          r16[(id & 7) << 1] = 0; // BSWAP r16 is undefined; this is what Intel CPUs do
          eip = next;
          break;
        default:
          // Everything else: system instructions, far transfers, I/O, BCD, x87... (ops/system_ops.ts)
          st[ST_EIP] = eip;
          cpu.sliceRetired = n;
          if (executeRare(cpu, slot, id, next)) stopAt = n;
          eip = st[ST_EIP];
          break;
      }
    }
    st[ST_EIP] = eip;
    if (shadowN === n) cpu.interruptShadow = true;
  } catch (e) {
    if (jit.faultN >= 0) {
      // A fault inside a translated unit: it left EIP and the retired count at the faulting instruction.
      n = jit.faultN;
      jit.faultN = -1;
    } else {
      n--;
      // A fault after a task switch's commit point belongs to the new task, at its EIP.
      if (cpu.faultInNewTask) cpu.faultInNewTask = false;
      else st[ST_EIP] = eip;
    }
    if (!handleThrow(cpu, e)) cpu.blockFailed = true;
  }
  return n;
}

/** Delivers an external interrupt or trap; false if the CPU must stop (shutdown/unsupported). */
function deliver(cpu: Cpu, vector: number): boolean {
  try {
    deliverInterrupt(cpu, vector, INT_HARDWARE, false, 0, cpu.st[ST_EIP]);
    return true;
  } catch (e) {
    return handleThrow(cpu, e);
  }
}

/** Handles what the inner loop threw; returns false when execute() must stop. */
function handleThrow(cpu: Cpu, e: unknown): boolean {
  if (e === FAULT) {
    cpu.faultInNewTask = false; // consumed by runBlock, or moot (EIP is already the new task's)
    if (cpu.onException !== null) cpu.onException(FAULT.vector, FAULT.errorCode, cpu.st[ST_EIP]);
    if (cpu.stopOnException) {
      cpu.lastException = FAULT.vector;
      cpu.lastErrorCode = FAULT.errorCode;
      cpu.stopReason = "exception";
      return false;
    }
    try {
      deliverException(cpu, FAULT.vector, FAULT.hasErrorCode, FAULT.errorCode);
      return true;
    } catch (e2) {
      return handleThrow(cpu, e2);
    }
  }
  if (e instanceof TripleFault) {
    cpu.stopReason = "shutdown";
    cpu.stopMessage = e.message;
    return false;
  }
  if (e instanceof UnsupportedFeature) {
    cpu.stopReason = "unsupported";
    cpu.stopMessage = `${e.message} at ${cpu.segSel[CS].toString(16)}:${(cpu.st[ST_EIP] >>> 0).toString(16)}`;
    return false;
  }
  throw e;
}

/** True when CLI/STI/IN/OUT are allowed without an I/O-permission check (CPL <= IOPL, or real mode). */
export function ioPrivileged(cpu: Cpu): boolean {
  if ((cpu.st[1] & 1) === 0) return true;
  return cpu.st[9] <= ((cpu.cc[CC_FLAGS] >> 12) & 3);
}

/** ALU op E, G (opcodes 00-3B forms 0 and 1): the register operand is the source. */
export function aluEG(cpu: Cpu, slot: number, op: number, size: number): void {
  const g = (cpu.decoded.modrm[slot] >> 3) & 7;
  aluE(cpu, slot, op, size, size === 2 ? cpu.regs[g] : size === 1 ? cpu.r16[g << 1] : cpu.r8[REG8[g]]);
}

/** Group 1 (80-83): ALU op E, imm with the operation in ModRM.reg. */
export function aluEI(cpu: Cpu, slot: number, size: number, imm: number): void {
  aluE(cpu, slot, (cpu.decoded.modrm[slot] >> 3) & 7, size, imm);
}

/** ALU op on the r/m operand with `src`; CMP (7) only sets flags. Memory is probed before it changes. */
function aluE(cpu: Cpu, slot: number, op: number, size: number, src: number): void {
  const m = cpu.decoded.modrm[slot];
  if (m >= 0xC0) {
    const r = m & 7;
    if (size === 2) {
      const regs = cpu.regs;
      const v = op === 0
        ? add32(cpu.cc, regs[r], src)
        : op === 5 || op === 7
        ? sub32(cpu.cc, regs[r], src)
        : alu(cpu.cc, op, regs[r], src, 2);
      if (op !== 7) regs[r] = v;
    } else if (size === 1) {
      const v = alu(cpu.cc, op, cpu.r16[r << 1], src, 1);
      if (op !== 7) cpu.r16[r << 1] = v;
    } else {
      const v = alu(cpu.cc, op, cpu.r8[REG8[r]], src, 0);
      if (op !== 7) cpu.r8[REG8[r]] = v;
    }
    return;
  }
  const a = ea(cpu, slot);
  if (op === 7) {
    alu(cpu.cc, op, readMem(cpu, a, size), src, size);
    return;
  }
  probeWrite(cpu, a, 1 << size);
  writeMem(cpu, a, size, alu(cpu.cc, op, readMem(cpu, a, size), src, size));
}

export function shiftE(cpu: Cpu, slot: number, size: number, count: number): void {
  const m = cpu.decoded.modrm[slot];
  const op = (m >> 3) & 7;
  if (m >= 0xC0) {
    const r = m & 7;
    if (size === 2) cpu.regs[r] = shift(cpu.cc, op, cpu.regs[r], count, 2);
    else if (size === 1) cpu.r16[r << 1] = shift(cpu.cc, op, cpu.r16[r << 1], count, 1);
    else cpu.r8[REG8[r]] = shift(cpu.cc, op, cpu.r8[REG8[r]], count, 0);
    return;
  }
  const a = ea(cpu, slot);
  probeWrite(cpu, a, 1 << size);
  writeMem(cpu, a, size, shift(cpu.cc, op, readMem(cpu, a, size), count, size));
}

export function incDecE(cpu: Cpu, slot: number, m: number, size: number, op: number): void {
  if (m >= 0xC0) {
    const r = m & 7;
    const v = size === 2 ? cpu.regs[r] : size === 1 ? cpu.r16[r << 1] : cpu.r8[REG8[r]];
    const res = op === 0 ? inc(cpu.cc, v, size) : dec(cpu.cc, v, size);
    if (size === 2) cpu.regs[r] = res;
    else if (size === 1) cpu.r16[r << 1] = res;
    else cpu.r8[REG8[r]] = res;
    return;
  }
  const a = ea(cpu, slot);
  probeWrite(cpu, a, 1 << size);
  const v = readMem(cpu, a, size);
  writeMem(cpu, a, size, op === 0 ? inc(cpu.cc, v, size) : dec(cpu.cc, v, size));
}

export function xchg(cpu: Cpu, slot: number, size: number): void {
  const m = cpu.decoded.modrm[slot];
  const g = (m >> 3) & 7;
  const gv = size === 2 ? cpu.regs[g] : size === 1 ? cpu.r16[g << 1] : cpu.r8[REG8[g]];
  let old: number;
  if (m >= 0xC0) {
    old = readRm(cpu, slot, m, size);
    writeRm(cpu, slot, m, size, gv);
  } else {
    const a = ea(cpu, slot);
    probeWrite(cpu, a, 1 << size);
    old = readMem(cpu, a, size);
    writeMem(cpu, a, size, gv);
  }
  if (size === 2) cpu.regs[g] = old;
  else if (size === 1) cpu.r16[g << 1] = old;
  else cpu.r8[REG8[g]] = old;
}

export function xadd(cpu: Cpu, slot: number, size: number): void {
  const m = cpu.decoded.modrm[slot];
  const g = (m >> 3) & 7;
  const gv = size === 2 ? cpu.regs[g] : size === 1 ? cpu.r16[g << 1] : cpu.r8[REG8[g]];
  let old: number;
  if (m >= 0xC0) {
    old = readRm(cpu, slot, m, size);
    const sum = alu(cpu.cc, 0, old, gv, size);
    if (size === 2) cpu.regs[g] = old;
    else if (size === 1) cpu.r16[g << 1] = old;
    else cpu.r8[REG8[g]] = old;
    writeRm(cpu, slot, m, size, sum);
    return;
  }
  const a = ea(cpu, slot);
  probeWrite(cpu, a, 1 << size);
  old = readMem(cpu, a, size);
  writeMem(cpu, a, size, alu(cpu.cc, 0, old, gv, size));
  if (size === 2) cpu.regs[g] = old;
  else if (size === 1) cpu.r16[g << 1] = old;
  else cpu.r8[REG8[g]] = old;
}

export function popEv(cpu: Cpu, slot: number, size: number): void {
  const m = cpu.decoded.modrm[slot];
  if (m >= 0xC0) {
    const v = size === 2 ? pop32(cpu) : pop16(cpu);
    if (size === 2) cpu.regs[m & 7] = v;
    else cpu.r16[(m & 7) << 1] = v;
    return;
  }
  // The address is computed with ESP already incremented; ESP is restored if the store faults.
  const oldEsp = cpu.regs[ESP];
  const v = size === 2 ? pop32(cpu) : pop16(cpu);
  try {
    writeMem(cpu, ea(cpu, slot), size, v);
  } catch (e) {
    cpu.regs[ESP] = oldEsp;
    throw e;
  }
}

function leave(cpu: Cpu, op32: boolean): void {
  const regs = cpu.regs;
  const bp = cpu.ss32 ? regs[EBP] : regs[EBP] & 0xFFFF;
  // #SS(0) when [SS:EBP] is outside the stack segment, before anything changes.
  if (cpu.segCheck[SS] !== 0) checkSegmentAccess(cpu, SS, bp, op32 ? 4 : 2);
  const v = op32 ? read32(cpu, (cpu.segBase[SS] + bp) | 0) : read16(cpu, (cpu.segBase[SS] + bp) | 0);
  if (cpu.ss32) regs[ESP] = (bp + (op32 ? 4 : 2)) | 0;
  else cpu.r16[ESP << 1] = bp + (op32 ? 4 : 2);
  if (op32) regs[EBP] = v;
  else cpu.r16[EBP << 1] = v;
}

/** LOOPNE/LOOPE/LOOP/JCXZ; the counter is CX or ECX by address size. Returns the new EIP. */
export function loopOp(cpu: Cpu, slot: number, id: number, next: number): number {
  const a16 = (cpu.decoded.ea[slot] & 0x8000) !== 0;
  const op = id & 3;
  const target = (id & 0x200) !== 0
    ? (next + cpu.decoded.imm[slot]) & 0xFFFF
    : (next + cpu.decoded.imm[slot]) | 0;
  let count: number;
  if (op === 3) {
    count = a16 ? cpu.r16[ECX << 1] : cpu.regs[ECX];
    return count === 0 ? target : next;
  }
  if (a16) {
    count = (cpu.r16[ECX << 1] - 1) & 0xFFFF;
    cpu.r16[ECX << 1] = count;
  } else {
    count = (cpu.regs[ECX] - 1) | 0;
    cpu.regs[ECX] = count;
  }
  if (count === 0) return next;
  if (op === 2) return target;
  const zf = (materialize(cpu.cc) & 0x40) !== 0;
  return (op === 1) === zf ? target : next;
}

// Re-exports used by system_ops for consistency with the hot loop's helpers.
export { CC_EFLAGS, CC_OP, DE, EAX, mulHighS32, sx };
