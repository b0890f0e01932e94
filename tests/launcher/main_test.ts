/**
 * Tests for main.ts as a user sees it, in a subprocess: --help and --version exit 0, a user error is
 * one line "lguest: <message>" on stderr with exit code 2 and no stack (STYLE rule 9).
 */

import { assert, assertEquals } from "../assert.ts";
import denoJson from "../../deno.json" with { type: "json" };

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

async function lguest(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("main --version prints the version from deno.json and exits 0", async () => {
  const r = await lguest("--version");
  assertEquals(r, { code: 0, stdout: `lguest.ts ${denoJson.version}\n`, stderr: "" });
});

Deno.test("main --help prints the grouped usage and exits 0", async () => {
  const r = await lguest("--help");
  assertEquals(r.code, 0);
  assert(r.stdout.startsWith("Usage: lguest [options] <mem> <kernel> [kernel args...]"), r.stdout);
  assert(r.stdout.includes("\nNetworking:\n"), r.stdout);
});

Deno.test("main prints a bad memory size as one line with exit code 2 and no stack", async () => {
  const r = await lguest("12x", "vmlinux");
  assertEquals(r, {
    code: 2,
    stdout: "",
    stderr: 'lguest: Invalid memory size "12x": expected megabytes like 256, 256m or 1g\n',
  });
});

Deno.test("main reports a kernel file that cannot be opened in one line, options after it included", async () => {
  const r = await lguest("64m", "/nonexistent/vmlinux", "--rng");
  assertEquals(r.code, 2);
  assertEquals(r.stderr.trimEnd().split("\n"), [
    'lguest: Cannot open kernel "/nonexistent/vmlinux": no such file',
  ]);
  assert(!r.stderr.includes("    at "), r.stderr);
});
