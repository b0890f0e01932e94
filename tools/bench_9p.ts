/**
 * virtio-9p throughput (not a timed test): boots the real Guest with a scratch folder shared by
 * `--share`, mounts it, and prints what dd moved writing a file into it and reading it back, timed
 * by the host's clock around each command (the Guest's clock does not keep wall time under the
 * interpreter). Loaded machines give lower figures. Usage: deno run -A tools/bench_9p.ts [MiB (default 8)]
 */
import { withBenchGuest } from "./bench_guest.ts";

const mib = Number(Deno.args[0] ?? 8);
const dir = await Deno.makeTempDir({ prefix: "lguest-bench-9p-" });
try {
  await withBenchGuest([`--share=${dir}`], async (vm) => {
    await vm.run("mount -t 9p -o trans=virtio share /mnt");
    const runs: [string, string][] = [
      ["write (dd bs=1M, then sync)", `dd if=/dev/zero of=/mnt/f bs=1M count=${mib}; sync`],
      ["read (dd bs=1M, cache=none: every read goes to the host)", "dd if=/mnt/f of=/dev/null bs=1M"],
    ];
    for (const [label, command] of runs) {
      const t = performance.now();
      await vm.run(`${command} 2>/dev/null`, 900_000);
      const secs = (performance.now() - t) / 1000;
      console.log(
        `${label}: ${mib} MiB in ${secs.toFixed(2)} s host wall = ${(mib * 1.048576 / secs).toFixed(1)} MB/s`,
      );
    }
    const size = (await Deno.stat(`${dir}/f`)).size;
    console.log(`host file ${size} bytes`);
  });
} finally {
  await Deno.remove(dir, { recursive: true });
}
