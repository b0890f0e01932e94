/**
 * Runs x87 instructions on the host CPU (STYLE rule 11: CPU behaviour is checked against the real
 * thing). Generates a C program with one inline-asm block per encoding under test, compiles it with
 * `gcc -m32 -O0`, and feeds it cases: control word, EFLAGS, stack contents (80-bit) and a 128-byte
 * memory operand addressed by ESI. Per case it reports SW, AX, EFLAGS, the FNSAVE image and memory.
 */

/** One case for the host: `stack` lists 80-bit images (10 bytes) from ST(0) down. */
export interface HostCase {
  encoding: number;
  cw: number;
  eflags: number;
  stack: Uint8Array[];
  mem: Uint8Array;
}

export interface HostResult {
  sw: number;
  ax: number;
  eflags: number;
  save: Uint8Array;
  mem: Uint8Array;
}

export const MEM_BYTES = 128;
export const SAVE_BYTES = 108;

function cSource(encodings: number[][]): string {
  const cases = encodings.map((bytes, i) =>
    `    case ${i}: __asm__ volatile(PRO ".byte ${bytes.map((b) => "0x" + b.toString(16)).join(",")}" EPI ` +
    `: : "S"(c) : "eax", "ecx", "edx", "memory", "cc"); break;`
  ).join("\n");
  return `#include <stdio.h>
#include <stdint.h>
#include <string.h>
struct ctx {
  unsigned char mem[128];      /* 0: the memory operand, at [esi] */
  uint16_t cw, pad0;           /* 128 */
  uint32_t efl_in;             /* 132 */
  uint32_t n;                  /* 136 */
  uint32_t efl_out;            /* 140 */
  uint16_t sw, ax;             /* 144, 146 */
  uint32_t pad1[3];            /* 148 */
  unsigned char stack[8][16];  /* 160: load order, deepest first */
  unsigned char save[108];     /* 288 */
} __attribute__((packed));
#define PRO "fninit\\n\\tfldcw 128(%%esi)\\n\\tmovl 136(%%esi), %%ecx\\n\\tleal 160(%%esi), %%edx\\n\\t" \\
  "jecxz 2f\\n1:\\tfldt (%%edx)\\n\\taddl $16, %%edx\\n\\tdecl %%ecx\\n\\tjnz 1b\\n" \\
  "2:\\txorl %%eax, %%eax\\n\\tpushl 132(%%esi)\\n\\tpopfl\\n\\t"
#define EPI "\\n\\tpushfl\\n\\tpopl 140(%%esi)\\n\\tmovw %%ax, 146(%%esi)\\n\\tfnstsw 144(%%esi)\\n\\t" \\
  "fnsave 288(%%esi)\\n\\tfninit\\n"
static void run(int op, struct ctx *c) {
  switch (op) {
${cases}
  }
}
static int hex(const char **p) {
  int v = 0;
  for (int k = 0; k < 2; k++) {
    char ch = *(*p)++;
    v = v * 16 + (ch <= '9' ? ch - '0' : (ch | 32) - 'a' + 10);
  }
  return v;
}
static void put(const unsigned char *b, int n) {
  for (int k = 0; k < n; k++) printf("%02x", b[k]);
}
int main(void) {
  static struct ctx c;
  static char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    int op, pos; unsigned cw, efl, n;
    if (sscanf(line, "%d %x %x %u %n", &op, &cw, &efl, &n, &pos) != 4) continue;
    const char *p = line + pos;
    memset(&c, 0, sizeof c);
    c.cw = cw; c.efl_in = efl; c.n = n;
    for (unsigned k = 0; k < n; k++) { for (int b = 0; b < 10; b++) c.stack[k][b] = hex(&p); p++; }
    for (int b = 0; b < 128; b++) c.mem[b] = hex(&p);
    run(op, &c);
    printf("%04x %04x %08x ", c.sw, c.ax, c.efl_out);
    put(c.save, 108);
    putchar(' ');
    put(c.mem, 128);
    putchar('\\n');
  }
  return 0;
}
`;
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function fromHex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A compiled harness for a fixed list of encodings (each the bytes of one instruction). */
export class X87HostHarness {
  readonly #exe: string;

  private constructor(exe: string) {
    this.#exe = exe;
  }

  /** Compiles the harness; returns a reason string when gcc -m32 cannot build and run it. */
  static async build(encodings: number[][]): Promise<X87HostHarness | string> {
    if (Deno.build.arch !== "x86_64") return `host is ${Deno.build.arch}, not x86-64`;
    const dir = await Deno.makeTempDir({ prefix: "lguest_x87_" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const src = `${dir}/x87_harness.c`, exe = `${dir}/x87_harness`;
    await Deno.writeTextFile(src, cSource(encodings));
    let out;
    try {
      out = await new Deno.Command("gcc", { args: ["-m32", "-O0", "-w", "-o", exe, src], stderr: "piped" })
        .output();
    } catch (e) {
      return `gcc not runnable: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (!out.success) {
      const msg = new TextDecoder().decode(out.stderr).split("\n").slice(0, 3).join(" ");
      return `gcc -m32 failed (install gcc-multilib): ${msg}`;
    }
    return new X87HostHarness(exe);
  }

  /** Runs the cases on the host x87, in order. */
  async run(cases: HostCase[]): Promise<HostResult[]> {
    const lines: string[] = [];
    for (const c of cases) {
      // The C side loads deepest first so that the last load is ST(0).
      const stack = c.stack.slice().reverse().map(toHex).join(" ");
      lines.push(
        `${c.encoding} ${c.cw.toString(16)} ${c.eflags.toString(16)} ${c.stack.length} ${stack}${
          c.stack.length ? " " : ""
        }${toHex(c.mem)}`,
      );
    }
    const child = new Deno.Command(this.#exe, { stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
    const writer = child.stdin.getWriter();
    const writing = writer.write(new TextEncoder().encode(lines.join("\n") + "\n")).then(() =>
      writer.close()
    );
    const [out] = await Promise.all([child.output(), writing]);
    if (!out.success) throw new Error(`x87 harness failed: ${new TextDecoder().decode(out.stderr)}`);
    const results: HostResult[] = [];
    for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
      if (!line) continue;
      const [sw, ax, efl, save, mem] = line.split(" ");
      results.push({
        sw: parseInt(sw, 16),
        ax: parseInt(ax, 16),
        eflags: parseInt(efl, 16),
        save: fromHex(save),
        mem: fromHex(mem),
      });
    }
    if (results.length !== cases.length) {
      throw new Error(`x87 harness gave ${results.length} of ${cases.length} results`);
    }
    return results;
  }
}
