/**
 * The CPU's code as text, for people: the few instructions at CS:EIP (the `kill -USR2` state dump)
 * and one line per instruction for `--trace`. Bytes are read through the page tables as the CPU's
 * own fetch would (setting the same accessed bits), but a page fault only ends the view (CR2 is put
 * back) and memory-mapped I/O is never read (device reads can have side effects).
 */
import { type Cpu, CS, ST_CR2 } from "./cpu.ts";
import { disassemble } from "./disassembler.ts";
import { FAULT } from "./fault.ts";
import { translate } from "./mmu.ts";

const REG_NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];

function hex8(v: number): string {
  return (v >>> 0).toString(16).padStart(8, "0");
}

/** Up to `count` bytes of code at linear address `lin`; fewer where a page is unmapped or not RAM. */
export function peekCode(cpu: Cpu, lin: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  const cr2 = cpu.st[ST_CR2];
  let n = 0;
  try {
    while (n < count) {
      const a = (lin + n) | 0;
      const phys = translate(cpu, a, 0, false);
      if (phys < 0 || phys >= cpu.ramSize) break;
      out[n++] = cpu.ram8[phys];
    }
  } catch (e) {
    if (e !== FAULT) throw e;
  } finally {
    cpu.st[ST_CR2] = cr2;
  }
  return out.subarray(0, n);
}

/** `count` instructions from CS:EIP, one per line: address, bytes, disassembly. */
export function instructionsAtEip(cpu: Cpu, count: number): string {
  const eip = cpu.eip;
  const code = peekCode(cpu, (cpu.segBase[CS] + eip) | 0, count * 15);
  const lines: string[] = [];
  let p = 0;
  for (let i = 0; i < count && p < code.length; i++) {
    const d = disassemble(code.subarray(p), (eip + p) | 0, cpu.code32);
    if (p + d.length > code.length) {
      lines.push(`${hex8(eip + p)}  (unreadable)`);
      break;
    }
    const bytes = [...code.subarray(p, p + d.length)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    lines.push(
      `${i === 0 ? "=>" : "  "} ${cpu.segSel[CS].toString(16).padStart(4, "0")}:${hex8(eip + p)}  ${
        bytes.padEnd(30)
      } ${d.text}`,
    );
    if (d.form === null && d.text.startsWith("(bad)")) break;
    p += d.length;
  }
  if (lines.length === 0) lines.push(`=> ${hex8(eip)}  (code not readable: unmapped or not RAM)`);
  return lines.join("\n");
}

/**
 * One `--trace` line for the instruction about to run: the retired-instruction count, CS:EIP, the
 * disassembly, then the registers and EFLAGS before it runs.
 */
export function traceLine(cpu: Cpu): string {
  const eip = cpu.eip;
  const code = peekCode(cpu, (cpu.segBase[CS] + eip) | 0, 15);
  const text = code.length === 0 ? "(unreadable)" : disassemble(code, eip, cpu.code32).text;
  const regs = REG_NAMES.map((r, i) => `${r}=${hex8(cpu.regs[i])}`).join(" ");
  return `${cpu.instructionsRetired()} ${cpu.segSel[CS].toString(16).padStart(4, "0")}:${hex8(eip)} ${
    text.padEnd(32)
  } ${regs} eflags=${hex8(cpu.getEflags())}`;
}
