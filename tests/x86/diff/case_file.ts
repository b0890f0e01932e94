/**
 * The binary files between the generator and host_runner.c, little-endian u32 fields unless noted.
 * Cases: "LGDC", count, CODE_BASE, CODE_SIZE, nRegions, per region (base, size, background); per case
 * entry EIP, u8 code length, code, 8 GPRs, EFLAGS, nPatches, per patch (addr, u8 len, bytes).
 * Results: "LGDR", count; per case 8 GPRs, EFLAGS, EIP, trapno, err, signo, nChanges, (addr, byte)*.
 */
import {
  CODE_BASE,
  CODE_SIZE,
  type DiffCase,
  type DiffResult,
  HLT,
  type Region,
  STOP_HLT,
} from "./diff_case.ts";

const MAGIC_CASES = 0x4344_474C;
const MAGIC_RESULTS = 0x5244_474C;

/** Serialises the cases and the regions' backgrounds for host_runner.c. */
export function encodeCaseFile(
  cases: readonly DiffCase[],
  regions: readonly Region[],
  backgrounds: readonly Uint8Array[],
): Uint8Array {
  let size = 20;
  for (const r of regions) size += 8 + r.sizeBytes;
  for (const c of cases) {
    size += 4 + 1 + c.code.length + 36 + 4;
    for (const p of c.patches) size += 5 + p.bytes.length;
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let pos = 0;
  const u32 = (v: number) => {
    view.setUint32(pos, v >>> 0, true);
    pos += 4;
  };
  u32(MAGIC_CASES);
  u32(cases.length);
  u32(CODE_BASE);
  u32(CODE_SIZE);
  u32(regions.length);
  regions.forEach((r, i) => {
    u32(r.base);
    u32(r.sizeBytes);
    out.set(backgrounds[i], pos);
    pos += r.sizeBytes;
  });
  for (const c of cases) {
    u32(c.entryEip);
    out[pos++] = c.code.length;
    out.set(c.code, pos);
    pos += c.code.length;
    for (let i = 0; i < 8; i++) u32(c.regs[i]);
    u32(c.eflags);
    u32(c.patches.length);
    for (const p of c.patches) {
      u32(p.linearAddr);
      out[pos++] = p.bytes.length;
      out.set(p.bytes, pos);
      pos += p.bytes.length;
    }
  }
  return out;
}

/** Signal numbers as Linux/i386 numbers them, for messages. */
const SIGNAL_NAMES: Record<number, string> = {
  4: "SIGILL",
  5: "SIGTRAP",
  7: "SIGBUS",
  8: "SIGFPE",
  11: "SIGSEGV",
};

/**
 * Reads host_runner.c's results. A #GP at a HLT in the code page is the normal end (CPL 3 may not
 * halt); any other trap number is the exception the instruction raised.
 */
export function decodeResultFile(bytes: Uint8Array, cases: readonly DiffCase[]): DiffResult[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC_RESULTS) throw new Error("host results: bad magic");
  const count = view.getUint32(4, true);
  const results: DiffResult[] = [];
  let pos = 8;
  for (let i = 0; i < count; i++) {
    const regs = new Int32Array(8);
    for (let r = 0; r < 8; r++) regs[r] = view.getInt32(pos + 4 * r, true);
    const eflags = view.getUint32(pos + 32, true);
    const eip = view.getUint32(pos + 36, true);
    const trapno = view.getUint32(pos + 40, true);
    const signo = view.getUint32(pos + 48, true);
    const nChanges = view.getUint32(pos + 52, true);
    pos += 56;
    const changes = new Map<number, number>();
    for (let k = 0; k < nChanges; k++) {
      changes.set(view.getUint32(pos, true), view.getUint32(pos + 4, true));
      pos += 8;
    }
    const { code, entryEip } = cases[i];
    const off = eip - entryEip;
    const atHlt = eip - CODE_BASE >= 0 && eip - CODE_BASE < CODE_SIZE &&
      (off < 0 || off >= code.length || code[off] === HLT);
    let stop = trapno;
    let error: string | null = null;
    if (trapno === 13 && atHlt) stop = STOP_HLT;
    else if (trapno === 14 || (trapno === 13 && eip !== entryEip) || trapno === 17) {
      // #PF, #GP outside a HLT and the case's first instruction (e.g. too long), #AC: the case
      // itself is broken (a generator bug), not the CPU.
      error = `host: ${SIGNAL_NAMES[signo] ?? `signal ${signo}`} trap ${trapno} at 0x${eip.toString(16)}`;
    }
    results.push({ regs, eflags, stop, eip, changes, error });
  }
  return results;
}
