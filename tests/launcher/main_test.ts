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

Deno.test("main --help says what happens: options after <kernel>, exit codes, Ctrl-C, kill -USR2, lguest_run=", async () => {
  const r = await lguest("--help");
  for (const text of ["after <kernel>", "Exit codes:", "three Ctrl-C", "kill -USR2", "lguest_run=", "143"]) {
    assert(r.stdout.includes(text), `${text} missing:\n${r.stdout}`);
  }
  assert(
    !r.stdout.includes("root=/dev/vda"),
    "no root= example: the reference kernel has no disk filesystem built in",
  );
});

Deno.test("main checks every file argument before slow work, and a directory reads alike for each", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A kernel that would take the slow path (a bzImage) is not read before the initrd is checked.
    const kernel = `${dir}/vmlinuz`;
    await Deno.writeFile(kernel, new Uint8Array(4096));
    const cases: [string[], string][] = [
      [
        ["--initrd=/nonexistent/initrd", "64m", kernel],
        'Cannot open initrd "/nonexistent/initrd": no such file',
      ],
      [[`--initrd=${dir}`, "64m", kernel], `Cannot open initrd "${dir}": is a directory`],
      [["64m", dir], `Cannot open kernel "${dir}": is a directory`],
      [[`--firmware=${dir}`], `Cannot open firmware "${dir}": is a directory`],
      [["64m", kernel, `--block=${dir}`], `Cannot open block file "${dir}": is a directory`],
    ];
    for (const [args, message] of cases) {
      const r = await lguest(...args);
      assertEquals([r.code, r.stderr], [2, `lguest: ${message}\n`], args.join(" "));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
