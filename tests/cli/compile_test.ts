/**
 * lguest.ts ships as one executable built by `deno compile`. Compiling downloads Deno's `denort`
 * runtime unless DENORT_BIN names a local copy; on machines without network access (like our CI)
 * this test is skipped with that reason.
 */
import { assert, assertEquals } from "../assert.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const denort = Deno.env.get("DENORT_BIN");
if (!denort) {
  console.warn(
    "compile test skipped: set DENORT_BIN to a denort binary (deno compile cannot download it here)",
  );
}

Deno.test({
  name: "deno compile builds one lguest executable that answers --version and --help",
  ignore: !denort,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const exe = `${dir}/lguest`;
      const build = await new Deno.Command(Deno.execPath(), {
        args: ["compile", "-A", "--output", exe, MAIN],
        env: { DENORT_BIN: denort! },
      }).output();
      assertEquals(build.code, 0, new TextDecoder().decode(build.stderr));
      const version = await new Deno.Command(exe, { args: ["--version"] }).output();
      assertEquals(version.code, 0);
      assert(new TextDecoder().decode(version.stdout).startsWith("lguest.ts "));
      const help = await new Deno.Command(exe, { args: ["--help"] }).output();
      assert(new TextDecoder().decode(help.stdout).includes("Usage: lguest"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
