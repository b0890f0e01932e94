/**
 * Assembles the system tests' guest programs with NASM (`nasm -f bin`) at test time, in a
 * temporary directory, with testdata/x86/ on the include path. Also returns the program's labels
 * (from NASM's map file) so a test can find a GDT or a handler without hard-coding addresses.
 * When nasm is missing, `nasmUnavailableReason()` says so and the tests are ignored.
 */

const INCLUDE_DIR = new URL("../../../testdata/x86/", import.meta.url).pathname;

/** A flat binary and its symbols (label → address, as NASM's map file gives them). */
export interface Assembled {
  bytes: Uint8Array;
  symbols: Map<string, number>;
}

let probed: string | null | undefined;

/** Why nasm cannot be used, or null when it can (synchronous so `ignore:` can use it). */
export function nasmUnavailableReason(): string | null {
  if (probed !== undefined) return probed;
  try {
    const r = new Deno.Command("nasm", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync();
    probed = r.success ? null : "nasm -v failed";
  } catch (e) {
    probed = `nasm is not installed (apt-get install -y nasm): ${e instanceof Error ? e.message : String(e)}`;
  }
  return probed;
}

/** Assembles `source` (NASM syntax, flat binary output); throws with NASM's messages on error. */
export function assemble(source: string): Assembled {
  const dir = Deno.makeTempDirSync({ prefix: "lguest_asm_" });
  try {
    const src = `${dir}/guest.asm`, out = `${dir}/guest.bin`, map = `${dir}/guest.map`;
    Deno.writeTextFileSync(src, `${source}\n[map symbols ${map}]\n`);
    const r = new Deno.Command("nasm", {
      args: ["-f", "bin", "-w-other", "-I", INCLUDE_DIR, "-o", out, src],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (!r.success) {
      const messages = new TextDecoder().decode(r.stderr).replaceAll(`${src}:`, "line ");
      throw new Error(`nasm failed:\n${messages}`);
    }
    return { bytes: Deno.readFileSync(out), symbols: parseMap(Deno.readTextFileSync(map)) };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/**
 * Reads the "-- Symbols" part of a NASM map file: `Value Name` lines for constants and
 * `Real Virtual Name` lines for labels, all in hex.
 */
function parseMap(text: string): Map<string, number> {
  const symbols = new Map<string, number>();
  const at = text.indexOf("-- Symbols");
  for (const line of text.slice(at < 0 ? 0 : at).split("\n")) {
    const m = /^\s*([0-9A-F]+)\s+(?:([0-9A-F]+)\s+)?(\S+)\s*$/.exec(line);
    if (m !== null) symbols.set(m[3], parseInt(m[2] ?? m[1], 16));
  }
  return symbols;
}
