/**
 * Judges one case: the host's outcome against ours, leaving out what the SDM leaves undefined for
 * those inputs (DiffCase.undefFlags/undefRegBits/memMask), and tallies mismatches by symptom and by
 * form with readable example reports. A host-side error (a broken case) is reported apart.
 */
import { CF, DF, OF, type OpcodeForm, PF, SF, ZF } from "../../../lib/x86/opcode_table.ts";
import {
  COMPARED_FLAGS,
  type DiffCase,
  type DiffResult,
  ENTRY_EIP,
  type Region,
  STOP_HLT,
} from "./diff_case.ts";
import { disassembleAll } from "../../../lib/x86/disassembler.ts";

const REG_NAMES = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];
const FLAG_NAMES: [number, string][] = [[OF, "OF"], [DF, "DF"], [SF, "SF"], [ZF, "ZF"], [0x10, "AF"], [
  PF,
  "PF",
], [CF, "CF"]];
const VECTORS: Record<number, string> = {
  0: "#DE",
  1: "#DB",
  3: "#BP",
  4: "#OF",
  5: "#BR",
  6: "#UD",
  7: "#NM",
  12: "#SS",
  13: "#GP",
  14: "#PF",
  17: "#AC",
};

function hex8(v: number): string {
  return (v >>> 0).toString(16).padStart(8, "0");
}

function hexBytes(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
}

/** EFLAGS status bits and DF as names of the set ones: "OF ZF CF". */
export function flagNames(v: number): string {
  const set = FLAG_NAMES.filter(([bit]) => (v & bit) !== 0).map(([, n]) => n);
  return set.length === 0 ? "-" : set.join(" ");
}

function stopText(r: DiffResult): string {
  return r.stop === STOP_HLT
    ? `completed, HLT at 0x${hex8(r.eip)}`
    : `${VECTORS[r.stop] ?? `vector ${r.stop}`} at eip 0x${hex8(r.eip)}`;
}

/** What a byte held before the case ran: the case's patch, else the background. */
export type InitialByte = (linearAddr: number) => number;

/** Makes the initial-byte lookup for a case. */
export function initialBytes(
  c: DiffCase,
  regions: readonly Region[],
  backgrounds: readonly Uint8Array[],
): InitialByte {
  return (a) => {
    for (const p of c.patches) {
      if (a >= p.linearAddr && a < p.linearAddr + p.bytes.length) return p.bytes[a - p.linearAddr];
    }
    const k = regions.findIndex((r) => a >= r.base && a < r.base + r.sizeBytes);
    return backgrounds[k][a - regions[k].base];
  };
}

/** The differences that matter, one line each; empty when the CPU agrees with the host. */
export function compareResults(
  c: DiffCase,
  host: DiffResult,
  ours: DiffResult,
  initial: InitialByte,
): string[] {
  if (host.error !== null) return [host.error];
  if (ours.error !== null) return [ours.error];
  const out: string[] = [];
  if (host.stop !== ours.stop || host.eip !== ours.eip) {
    out.push(`stop: host ${stopText(host)}, ours ${stopText(ours)}`);
  }
  for (let r = 0; r < 8; r++) {
    const mask = ~(c.undefRegBits?.[r] ?? 0);
    if (((host.regs[r] ^ ours.regs[r]) & mask) !== 0) {
      out.push(
        `${REG_NAMES[r]}: host ${hex8(host.regs[r])}, ours ${hex8(ours.regs[r])} (in ${hex8(c.regs[r])})`,
      );
    }
  }
  // A faulting instruction changes nothing, so then every flag must be as it was.
  const flagMask = COMPARED_FLAGS & (host.stop === STOP_HLT ? ~c.undefFlags : -1);
  const fd = (host.eflags ^ ours.eflags) & flagMask;
  if (fd !== 0) {
    out.push(
      `flags: host [${flagNames(host.eflags & COMPARED_FLAGS)}], ours [${
        flagNames(ours.eflags & COMPARED_FLAGS)
      }]; ` +
        `differ in ${flagNames(fd)} (in [${flagNames(c.eflags & COMPARED_FLAGS)}])`,
    );
  }
  const addrs = new Set([...host.changes.keys(), ...ours.changes.keys()]);
  const memDiffs: string[] = [];
  for (const a of [...addrs].sort((x, y) => x - y)) {
    const init = initial(a);
    const hv = host.changes.get(a) ?? init, ov = ours.changes.get(a) ?? init;
    const mask = c.memMask?.get(a) ?? 0xFF;
    if (((hv ^ ov) & mask) !== 0) {
      memDiffs.push(
        `[${hex8(a)}] host ${hv.toString(16).padStart(2, "0")} ours ${
          ov.toString(16).padStart(2, "0")
        } (was ${init.toString(16).padStart(2, "0")})`,
      );
    }
  }
  if (memDiffs.length > 0) {
    out.push(
      `memory: ${memDiffs.length} byte(s) differ: ${memDiffs.slice(0, 8).join(", ")}${
        memDiffs.length > 8 ? ", ..." : ""
      }`,
    );
  }
  return out;
}

/** A form's name in reports: "ADD Ev,Gv (01)". */
export function formName(f: OpcodeForm): string {
  const op = f.opcode >= 0x100
    ? `0F ${(f.opcode & 0xFF).toString(16).padStart(2, "0")}`
    : f.opcode.toString(16).padStart(2, "0");
  return `${f.mnemonic}${f.operands.length > 0 ? " " + f.operands.join(",") : ""} (${op.toUpperCase()}${
    f.ext >= 0 ? "/" + f.ext : ""
  })`;
}

/** A mismatch report for one case: instruction, inputs, and the differences. */
export function describeMismatch(c: DiffCase, diffs: readonly string[]): string {
  const text = disassembleAll(c.code, c.entryEip).map((d) => d.text).join("; ");
  const at = c.entryEip === ENTRY_EIP ? "" : ` at 0x${hex8(c.entryEip)}`;
  const lines = [`${text}   [${hexBytes(c.code)}]${at}${c.note === "" ? "" : "   (" + c.note + ")"}`];
  lines.push(
    `    in: ${REG_NAMES.map((n, r) => `${n}=${hex8(c.regs[r])}`).join(" ")} flags=[${flagNames(c.eflags)}]`,
  );
  const mem = c.patches.slice(0, 4).map((p) =>
    `[${hex8(p.linearAddr)}] ${hexBytes(p.bytes.subarray(0, 16))}${p.bytes.length > 16 ? " ..." : ""}`
  );
  if (mem.length > 0) lines.push(`    mem in: ${mem.join("; ")}${c.patches.length > 4 ? "; ..." : ""}`);
  if (c.undefFlags !== 0) lines.push(`    undefined here: ${flagNames(c.undefFlags)}`);
  for (const diff of diffs) lines.push(`    ${diff}`);
  return lines.join("\n");
}

/** Mismatch counts and the first few reports, per form. */
/** What kind of disagreement a case shows, for grouping: "host #UD / ours completed", "flags AF". */
export function symptomOf(host: DiffResult, ours: DiffResult, diffs: readonly string[]): string {
  if (host.error !== null) return "host could not run the case";
  if (ours.error !== null) return ours.error.startsWith("ours threw") ? "ours threw" : "ours did not stop";
  const kind = (r: DiffResult) => r.stop === STOP_HLT ? "completed" : VECTORS[r.stop] ?? `vector ${r.stop}`;
  if (host.stop !== ours.stop) return `host ${kind(host)} / ours ${kind(ours)}`;
  if (host.eip !== ours.eip) return `${kind(host)} with a different EIP`;
  return diffs.map((d) =>
    d.startsWith("flags")
      ? `flags ${d.slice(d.indexOf("differ in ") + 10, d.indexOf(" (in"))}`
      : d.split(":")[0]
  )
    .join(", ");
}

/** Prefix bytes of the case's first instruction, named: "LOCK", "0x66", ... */
function prefixTags(c: DiffCase): string[] {
  const names: Record<number, string> = {
    0xF0: "LOCK",
    0x66: "0x66",
    0x67: "0x67",
    0xF2: "REPNE",
    0xF3: "REP",
  };
  const tags = new Set<string>();
  for (const b of c.code) {
    if (names[b] !== undefined) tags.add(names[b]);
    else if (![0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65].includes(b)) break;
  }
  if (c.entryEip !== ENTRY_EIP) tags.add("page-straddling");
  return [...tags];
}

interface Symptom {
  count: number;
  forms: Set<string>;
  tags: Map<string, number>;
}

export class MismatchTally {
  readonly #perForm = new Map<OpcodeForm, { cases: number; bad: number; reports: string[] }>();
  readonly #symptoms = new Map<string, Symptom>();
  readonly #examplesPerForm: number;
  hostErrors = 0;
  total = 0;
  bad = 0;

  constructor(examplesPerForm = 3) {
    this.#examplesPerForm = examplesPerForm;
  }

  add(c: DiffCase, diffs: readonly string[], host: DiffResult, ours: DiffResult): void {
    let e = this.#perForm.get(c.form);
    if (e === undefined) this.#perForm.set(c.form, e = { cases: 0, bad: 0, reports: [] });
    e.cases++;
    this.total++;
    if (diffs.length === 0) return;
    if (diffs[0].startsWith("host:")) this.hostErrors++;
    e.bad++;
    this.bad++;
    const key = symptomOf(host, ours, diffs);
    let s = this.#symptoms.get(key);
    if (s === undefined) this.#symptoms.set(key, s = { count: 0, forms: new Set(), tags: new Map() });
    s.count++;
    s.forms.add(c.form.mnemonic);
    for (const t of prefixTags(c)) s.tags.set(t, (s.tags.get(t) ?? 0) + 1);
    if (e.reports.length < this.#examplesPerForm) e.reports.push(describeMismatch(c, diffs));
  }

  /** One line per form with mismatches (or every form with `all`), worst first. */
  table(all = false): string {
    const rows = [...this.#perForm].filter(([, e]) => all || e.bad > 0).sort((a, b) =>
      b[1].bad - a[1].bad || a[1].cases - b[1].cases
    );
    const lines = rows.map(([f, e]) =>
      `${String(e.bad).padStart(7)} / ${String(e.cases).padEnd(7)} ${formName(f)}`
    );
    return [`${"bad".padStart(7)} / ${"cases".padEnd(7)} form`, ...lines].join("\n");
  }

  /** Mismatches grouped by symptom, with the prefixes they carried and the mnemonics involved. */
  symptoms(): string {
    const rows = [...this.#symptoms].sort((a, b) => b[1].count - a[1].count);
    return rows.map(([key, s]) => {
      const tags = [...s.tags].map(([t, n]) => `${t} ${n}`).join(", ");
      const forms = [...s.forms];
      const list = forms.slice(0, 8).join(" ") + (forms.length > 8 ? " ..." : "");
      return `${String(s.count).padStart(7)}  ${key}${
        tags === "" ? "" : ` (with ${tags})`
      } in ${forms.length} mnemonic(s): ${list}`;
    }).join("\n");
  }

  /** The example reports for every form with mismatches. */
  reports(): string {
    const out: string[] = [];
    for (const [f, e] of this.#perForm) {
      if (e.bad === 0) continue;
      out.push(`== ${formName(f)}: ${e.bad} of ${e.cases} cases differ`, ...e.reports);
    }
    return out.join("\n");
  }

  /** Mismatches summed by mnemonic: "ADD 3/800, SHLD 12/1200". */
  byMnemonic(): Map<string, { cases: number; bad: number }> {
    const m = new Map<string, { cases: number; bad: number }>();
    for (const [f, e] of this.#perForm) {
      const x = m.get(f.mnemonic) ?? { cases: 0, bad: 0 };
      x.cases += e.cases;
      x.bad += e.bad;
      m.set(f.mnemonic, x);
    }
    return m;
  }
}
