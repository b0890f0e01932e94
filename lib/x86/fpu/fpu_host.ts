/**
 * What the x87 FPU needs from the CPU: memory access at linear addresses (which may throw the CPU's
 * preallocated fault, so the FPU must not change its own state before its last memory access can
 * fault) and a way to signal an unmasked floating-point exception (#MF, or IRQ 13 when CR0.NE = 0).
 */
export interface FpuHost {
  readU8(linearAddr: number): number;
  readU16(linearAddr: number): number;
  /** Returns the 32-bit value as int32. */
  readU32(linearAddr: number): number;
  writeU8(linearAddr: number, value: number): void;
  writeU16(linearAddr: number, value: number): void;
  writeU32(linearAddr: number, value: number): void;
}
