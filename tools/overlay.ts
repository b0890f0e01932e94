/**
 * `deno task overlay info|commit|discard OVERLAY [BASE]`: looks after a `--block=FILE,overlay=OVERLAY`
 * file (format in lib/backends/cow_disk.ts). `commit` writes the sectors the overlay holds into its
 * base (the path recorded in the overlay, or BASE) and empties the overlay; `discard` empties it.
 * Both refuse while a launcher has the overlay or the base open (advisory locks).
 */
import { commitOverlay, discardOverlay, readOverlay } from "../lib/backends/cow_disk.ts";

const [command, overlay, base] = Deno.args;
const usage = "usage: deno task overlay info|commit|discard OVERLAY [BASE]";
if (overlay === undefined || !["info", "commit", "discard"].includes(command)) {
  console.error(usage);
  Deno.exit(2);
}
try {
  if (command === "info") {
    const { header, bitmap, file } = await readOverlay(overlay);
    file.close();
    let n = 0;
    for (const b of bitmap) for (let x = b; x !== 0; x &= x - 1) n++;
    console.log(`base=${header.basePath}`);
    console.log(`size=${header.baseSizeBytes}`);
    console.log(`sectors-in-overlay=${n}`);
  } else if (command === "commit") {
    const n = await commitOverlay(overlay, base);
    console.log(`committed ${n} sectors into the base; the overlay is empty`);
  } else {
    await discardOverlay(overlay);
    console.log("the overlay is empty");
  }
} catch (e) {
  const reason = e instanceof Deno.errors.NotFound
    ? "no such file"
    : e instanceof Error
    ? e.message
    : String(e);
  console.error(`error: overlay ${command} "${overlay}": ${reason}`);
  Deno.exit(1);
}
