/**
 * The child of the CowDisk crash test: opens BASE under OVERLAY and writes forever, in rounds:
 * round r writes sector (r * 7919) % SECTORS with a pattern naming r, and every few rounds
 * flushes and then prints "flushed R" (R = last round the flush covered). The parent kills it
 * with SIGKILL at a random moment.
 */
import { CowDisk } from "../../lib/backends/cow_disk.ts";

const [base, overlay, startText] = Deno.args;
const disk = await CowDisk.open(base, { overlayPath: overlay });
const sectors = disk.sizeBytes / 512;
const enc = new TextEncoder();
for (let r = Number(startText);; r++) {
  const data = new Uint8Array(512).fill(0x2E);
  data.set(enc.encode(`round ${r} `));
  await disk.write(((r * 7919) % sectors) * 512, data);
  if (r % 5 === 4) {
    await disk.flush();
    await Deno.stdout.write(enc.encode(`flushed ${r}\n`));
  }
}
