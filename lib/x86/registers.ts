/** Register numbers, segment indices, scalar-state slots and control-register bits of the CPU. */

export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;
export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, LDTR = 6, TR = 7;

/** Indices into `Cpu.st`, the int32 scalar state. */
export const ST_EIP = 0;
export const ST_CR0 = 1;
export const ST_CR2 = 2;
export const ST_CR3 = 3;
export const ST_CR4 = 4;
export const ST_GDT_BASE = 5;
export const ST_GDT_LIMIT = 6;
export const ST_IDT_BASE = 7;
export const ST_IDT_LIMIT = 8;
export const ST_CPL = 9;
export const ST_SYSENTER_CS = 10;
export const ST_SYSENTER_ESP = 11;
export const ST_SYSENTER_EIP = 12;
export const ST_EFER = 13;

export const CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_ET = 0x10, CR0_NE = 0x20;
export const CR0_WP = 0x10000,
  CR0_AM = 0x40000,
  CR0_NW = 0x20000000,
  CR0_CD = 0x40000000,
  CR0_PG = 0x80000000 | 0;
export const CR4_VME = 1, CR4_PVI = 2, CR4_TSD = 4, CR4_DE = 8, CR4_PSE = 0x10, CR4_PAE = 0x20;
export const CR4_MCE = 0x40, CR4_PGE = 0x80, CR4_PCE = 0x100, CR4_OSFXSR = 0x200, CR4_OSXMMEXCPT = 0x400;
export const EFER_NXE = 0x800;
