/**
 * CPUID (SDM Vol. 2, CPUID): describes exactly what this interpreter implements and nothing more.
 * Feature bits are a table so the guest, the tests and the README agree.
 */

/** CPUID.1:EDX feature bits we implement (the FPU, FXSR bits only when an FPU is attached). */
export const FEATURE_EDX = {
  FPU: 1 << 0,
  VME: 0, // not implemented
  DE: 1 << 2, // debug extensions: CR4.DE accepted, I/O breakpoints unused
  PSE: 1 << 3,
  TSC: 1 << 4,
  MSR: 1 << 5,
  PAE: 1 << 6,
  CX8: 1 << 8,
  SEP: 1 << 11,
  PGE: 1 << 13,
  CMOV: 1 << 15,
  FXSR: 1 << 24,
} as const;

/** CPUID.80000001h:EDX: NX (with PAE). */
export const EXT_FEATURE_NX = 1 << 20;

export const VENDOR = "GenuineIntel";
export const BRAND = "lguest.ts i686 interpreter";
/** Family 6, model 8, stepping 3 (a P6-class part). */
export const SIGNATURE = (6 << 8) | (8 << 4) | 3;

function strDwords(s: string, count: number): number[] {
  const bytes = new TextEncoder().encode(s.padEnd(count * 4, "\0"));
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(bytes[i * 4] | (bytes[i * 4 + 1] << 8) | (bytes[i * 4 + 2] << 16) | (bytes[i * 4 + 3] << 24));
  }
  return out;
}

const VENDOR_DW = strDwords(VENDOR, 3); // EBX, EDX, ECX order: "Genu" "ineI" "ntel"
const BRAND_DW = strDwords(BRAND, 12);

/** Results of CPUID for `leaf`: [eax, ebx, ecx, edx]. */
export function cpuid(leaf: number, hasFpu: boolean, out: Int32Array): void {
  let a = 0, b = 0, c = 0, d = 0;
  const l = leaf >>> 0;
  if (l === 0) {
    a = 1;
    b = VENDOR_DW[0];
    d = VENDOR_DW[1];
    c = VENDOR_DW[2];
  } else if (l === 1) {
    a = SIGNATURE;
    d = FEATURE_EDX.DE | FEATURE_EDX.PSE | FEATURE_EDX.TSC | FEATURE_EDX.MSR | FEATURE_EDX.PAE |
      FEATURE_EDX.CX8 |
      FEATURE_EDX.SEP | FEATURE_EDX.PGE | FEATURE_EDX.CMOV;
    if (hasFpu) d |= FEATURE_EDX.FPU | FEATURE_EDX.FXSR;
  } else if (l === 0x80000000) {
    a = 0x80000004 | 0;
  } else if (l === 0x80000001) {
    d = EXT_FEATURE_NX;
  } else if (l >= 0x80000002 && l <= 0x80000004) {
    const i = (l - 0x80000002) * 4;
    a = BRAND_DW[i];
    b = BRAND_DW[i + 1];
    c = BRAND_DW[i + 2];
    d = BRAND_DW[i + 3];
  } else if ((l > 1 && l < 0x80000000) || l > 0x80000004) {
    // Intel: leaves above the basic or the extended maximum return the highest basic leaf's data.
    return cpuid(1, hasFpu, out);
  }
  out[0] = a;
  out[1] = b;
  out[2] = c;
  out[3] = d;
}
