/**
 * Boot benchmark (issue #3): launches lguest.ts on the reference guest as a user would and prints
 * the wall time from launch to the userspace marker and the instructions the guest executed (the
 * guest powers off right after the marker, so the count covers launch to marker plus power-off).
 * Usage: deno run -A tools/bench_boot.ts [--bzimage [--guest-decompress]] [--full]
 * (--full: no fast kernel arguments; --guest-decompress: the bzImage decompresses itself in the guest)
 */
import { ensureGuest } from "./fetch_guest.ts";

const bz = Deno.args.includes("--bzimage");
const full = Deno.args.includes("--full");
const guestDecompress = bz && Deno.args.includes("--guest-decompress");
const g = await ensureGuest();
const kernel = bz ? g.kernel : g.vmlinux ?? g.kernel;
const args = [
  "run",
  "-A",
  new URL("../main.ts", import.meta.url).pathname,
  "--verbose",
  ...(guestDecompress ? ["--guest-decompress"] : []),
  `--initrd=${g.initrd}`,
  "256",
  kernel,
  "console=ttyS0",
  ...(full ? [] : ["cryptomgr.notests=1", "noisapnp"]),
  "quiet",
  'lguest_run="true"',
];
const t0 = performance.now();
const child = new Deno.Command(Deno.execPath(), { args, stdin: "null", stdout: "piped", stderr: "piped" })
  .spawn();
let markerMs = NaN;
let out = "";
const decoder = new TextDecoder();
const readOut = (async () => {
  for await (const chunk of child.stdout) {
    out += decoder.decode(chunk, { stream: true });
    if (Number.isNaN(markerMs) && out.includes("LGUEST-TS-READY")) markerMs = performance.now() - t0;
  }
})();
let err = "";
const readErr = (async () => {
  for await (const chunk of child.stderr) err += decoder.decode(chunk, { stream: true });
})();
const status = await child.status;
await Promise.all([readOut, readErr]);
const stats = err.match(/guest ran (\d+) instructions in ([\d.]+) s \(([\d.]+) MIPS\)/);
console.log(
  `kernel: ${bz ? `bzImage (${guestDecompress ? "in-guest" : "host"} decompression)` : "ELF vmlinux"}${
    full ? "" : ", cryptomgr.notests=1 noisapnp"
  }`,
);
console.log(`launch to userspace marker: ${(markerMs / 1000).toFixed(1)} s wall`);
if (stats) {
  console.log(
    `guest instructions (launch to power-off): ${(Number(stats[1]) / 1e9).toFixed(2)} G, ${stats[3]} MIPS`,
  );
}
console.log(`exit code: ${status.code}`);
