/**
 * CPU exceptions leave an instruction through one exit: the preallocated `CpuFault` object is
 * filled in and thrown (not an Error: stack capture is slow and Linux takes page faults all the
 * time), and caught once outside the interpreter's inner loop, which rolls EIP back to the
 * faulting instruction and delivers the exception (SDM Vol. 3A, 6.15).
 */

export const DE = 0; // divide error
export const DB = 1; // debug
export const NMI = 2;
export const BP = 3; // breakpoint (INT3)
export const OF_VEC = 4; // overflow (INTO)
export const BR = 5; // BOUND range exceeded
export const UD = 6; // invalid opcode
export const NM = 7; // device not available
export const DF_VEC = 8; // double fault
export const TS_VEC = 10; // invalid TSS
export const NP = 11; // segment not present
export const SS_VEC = 12; // stack-segment fault
export const GP = 13; // general protection
export const PF_VEC = 14; // page fault
export const MF = 16; // x87 floating-point error
export const AC_VEC = 17; // alignment check

/** Vectors that push an error code (SDM Table 6-1). */
export function pushesErrorCode(vector: number): boolean {
  return vector === 8 || (vector >= 10 && vector <= 14) || vector === 17;
}

export class CpuFault {
  vector = 0;
  errorCode = 0;
  hasErrorCode = false;
}

/** The one fault object. */
export const FAULT = new CpuFault();

/** Throws the fault object for `vector` without an error code. */
export function fault(vector: number): never {
  FAULT.vector = vector;
  FAULT.errorCode = 0;
  FAULT.hasErrorCode = false;
  throw FAULT;
}

/** Throws the fault object for `vector` with an error code. */
export function faultCode(vector: number, errorCode: number): never {
  FAULT.vector = vector;
  FAULT.errorCode = errorCode;
  FAULT.hasErrorCode = true;
  throw FAULT;
}
