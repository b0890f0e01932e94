/**
 * Checks the differential-test generator against the opcode table it reads (STYLE rule 10): every
 * user-level form gets cases, each case's bytes decode back to its own form (with the table's
 * DECODE_ATTRS, as the CPU's decoder does) and fit the file format, and a seed fixes the cases.
 */
import { assert, assertEquals } from "../../assert.ts";
import { generateCases, planForms } from "./case_generator.ts";
import { disassembleAll } from "../../../lib/x86/disassembler.ts";

Deno.test("generateCases covers every user-level form and its bytes decode back to that form", () => {
  const { cases } = generateCases({ seed: 7, count: 20_000, lowRegion: true });
  const covered = new Set(cases.map((c) => c.form));
  for (const p of planForms()) {
    if (p.skip === null) {
      assert(covered.has(p.form), `no cases for ${p.form.mnemonic} ${p.form.operands.join(",")}`);
    }
  }
  const wrong = new Set<string>();
  for (const c of cases) {
    const all = disassembleAll(c.code, c.entryEip);
    const length = all.reduce((n, d) => n + d.length, 0);
    if (all[0].form !== c.form || length !== c.code.length || all[0].length > 17) {
      const bytes = [...c.code].map((b) => b.toString(16).padStart(2, "0")).join(" ");
      wrong.add(
        `${c.form.mnemonic} ${c.form.operands}: [${bytes}] decodes as ${all.map((d) => d.text).join("; ")}`,
      );
    }
    for (const d of all.slice(1)) {
      assert(/^(set|j|nop|lea|xchg|adc|sbb|rcl|rcr)/.test(d.text), `unexpected flag consumer ${d.text}`);
    }
    for (const p of c.patches) {
      assert(p.bytes.length > 0 && p.bytes.length <= 255, "patch length fits a byte");
    }
  }
  // A wrong length points at the generator, or at DECODE_ATTRS (what the CPU's decoder reads).
  assertEquals([...wrong].slice(0, 20), []);
});

Deno.test("generateCases is deterministic for a seed", () => {
  const a = generateCases({ seed: 99, count: 3000, lowRegion: false }).cases;
  const b = generateCases({ seed: 99, count: 3000, lowRegion: false }).cases;
  for (let i = 0; i < a.length; i++) {
    assertEquals([...a[i].code], [...b[i].code]);
    assertEquals([...a[i].regs], [...b[i].regs]);
    assertEquals([a[i].eflags, a[i].entryEip], [b[i].eflags, b[i].entryEip]);
  }
});
