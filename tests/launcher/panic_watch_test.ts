/** PanicWatch: a Linux panic line on the console stops the guest with its reason (issue #3). */
import { assertEquals } from "../assert.ts";
import { PanicWatch } from "../../lib/launcher/panic_watch.ts";

Deno.test("PanicWatch reports the panic line once, whatever the chunking", () => {
  const reasons: string[] = [];
  const w = new PanicWatch((r) => reasons.push(r));
  const text = "[    1.0] ok\r\n[    2.0] Kernel panic - not syncing: VFS: Unable to mount root fs\r\nmore\n";
  const bytes = new TextEncoder().encode(text + text);
  for (let i = 0; i < bytes.length; i += 7) w.write(bytes.subarray(i, i + 7));
  assertEquals(reasons, ["Kernel panic - not syncing: VFS: Unable to mount root fs"]);
});

Deno.test("PanicWatch ignores ordinary output", () => {
  let fired = false;
  const w = new PanicWatch(() => fired = true);
  w.write(new TextEncoder().encode("panic is a word\nKernel panic without the rest\n"));
  assertEquals(fired, false);
});
