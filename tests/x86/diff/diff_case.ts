/**
 * One differential-test case and its outcome, shared by the generator, both runners and the
 * comparison: the address-space layout both sides use (data regions at fixed addresses, two pages
 * of HLTs holding the instructions), the inputs, and what to leave out of the comparison.
 */
import type { OpcodeForm } from "../../../lib/x86/opcode_table.ts";
import { Prng } from "./prng.ts";

/** Two pages holding the instructions; every other byte is HLT, which ends the case. */
export const CODE_BASE = 0x0030_0000;
export const CODE_SIZE = 0x2000;
/** Where instructions usually start, mid-page so short jumps either way land on a HLT. */
export const ENTRY_EIP = CODE_BASE + 0x800;
/** The page boundary some cases straddle, to exercise decoding across pages. */
export const CODE_PAGE_BOUNDARY = CODE_BASE + 0x1000;
export const HLT = 0xF4;

/** A range of data memory both sides map at the same address and compare byte for byte. */
export interface Region {
  readonly base: number;
  readonly sizeBytes: number;
}

/** The main data region: memory operands, the stack and string buffers. */
export const DATA_REGION: Region = { base: 0x0020_0000, sizeBytes: 0x1_0000 };
/** Reachable by 16-bit addressing (0x67); only used when the host lets us map it (vm.mmap_min_addr). */
export const LOW_REGION: Region = { base: 0x8000, sizeBytes: 0x8000 };

/** Bytes written into a region before the case runs (on top of the background pattern). */
export interface Patch {
  readonly linearAddr: number;
  readonly bytes: Uint8Array;
}

/** Inputs of one case plus what the comparison must ignore. */
export interface DiffCase {
  readonly form: OpcodeForm;
  /** The instruction bytes, prefixes included, then any flag consumers (SETcc/Jcc) after it. */
  readonly code: Uint8Array;
  /** Where `code` is placed and execution starts: ENTRY_EIP, or straddling CODE_PAGE_BOUNDARY. */
  readonly entryEip: number;
  /** EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI. */
  readonly regs: Int32Array;
  readonly eflags: number;
  readonly patches: readonly Patch[];
  /** Status flags undefined for these particular inputs (the form's plus dynamic SDM rules). */
  readonly undefFlags: number;
  /** Per register, the bits whose final value is undefined (null: none). */
  readonly undefRegBits: Int32Array | null;
  /** Per linear address, the bits of the final byte to compare (absent: all); e.g. PUSHF's image. */
  readonly memMask: ReadonlyMap<number, number> | null;
  /** Why the inputs are interesting, for the report ("count=33", "divisor 0"). */
  readonly note: string;
}

/** How a case stopped: at a HLT (the normal end) or with an exception vector. */
export const STOP_HLT = -1;

/** The outcome of one case on one side, normalised so both sides read the same. */
export interface DiffResult {
  readonly regs: Int32Array;
  readonly eflags: number;
  /** STOP_HLT or the exception vector. */
  readonly stop: number;
  /** Address of the HLT reached, or the EIP the exception reported (fault: the instruction; trap: next). */
  readonly eip: number;
  /** Changed data bytes: linear address -> final value. */
  readonly changes: ReadonlyMap<number, number>;
  /** Set when the side could not run the case at all (host: unexpected signal; ours: a JS exception). */
  readonly error: string | null;
}

/** The six status flags and DF: everything in EFLAGS user code defines. */
export const COMPARED_FLAGS = 0x08D5 | 0x0400;

/** A deterministic background for each region so stray writes are visible (sfc32 of the seed). */
export function makeBackground(region: Region, seed: number): Uint8Array {
  const out = new Uint8Array(region.sizeBytes);
  const rnd = new Prng(seed ^ region.base);
  const words = new Int32Array(out.buffer);
  for (let i = 0; i < words.length; i++) words[i] = rnd.u32();
  return out;
}
