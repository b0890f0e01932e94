/**
 * virtio-blk throughput (not a timed test): boots the real Guest with a scratch disk and prints what
 * dd moved writing to and reading from /dev/vda, timed by the host's clock around the command
 * (an upper bound on the time) and by the Guest's /proc/uptime (Debian's busybox dd prints no MB/s
 * line; the Guest's clock does not keep wall time under the interpreter, so the host figure is the real one).
 * Usage: deno run -A tools/bench_block.ts [MiB (default 16)]
 */
import { withBenchGuest } from "./bench_guest.ts";

const mib = Number(Deno.args[0] ?? 16);
const disk = await Deno.makeTempFile({ prefix: "lguest-bench-", suffix: ".img" });
await Deno.truncate(disk, mib * 1024 * 1024);
const started = performance.now();
try {
  await withBenchGuest([`--block=${disk}`], async (vm) => {
    console.log(
      `booted to a shell in ${((performance.now() - started) / 1000).toFixed(1)} s; disk ${mib} MiB`,
    );
    const runs: [string, string][] = [
      ["write (dd bs=1M conv=fsync)", `dd if=/dev/zero of=/dev/vda bs=1M count=${mib} conv=fsync`],
      [
        "read, page cache dropped (dd bs=1M)",
        "echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=1M",
      ],
      ["read, cached (dd bs=1M)", "dd if=/dev/vda of=/dev/null bs=1M"],
      [
        "write O_DIRECT (dd bs=1M oflag=direct)",
        `dd if=/dev/zero of=/dev/vda bs=1M count=${mib} oflag=direct`,
      ],
      ["read O_DIRECT (dd bs=1M iflag=direct)", "dd if=/dev/vda of=/dev/null bs=1M iflag=direct"],
    ];
    for (const [label, command] of runs) {
      const t = performance.now();
      const out = await vm.run(
        `a=$(cut -d' ' -f1 /proc/uptime); ${command} 2>/dev/null; b=$(cut -d' ' -f1 /proc/uptime); echo T $a $b`,
        600_000,
      );
      const m = out.match(/T (\d+\.\d+) (\d+\.\d+)\s*$/);
      const secs = m ? Number(m[2]) - Number(m[1]) : NaN;
      const rate = (mib * 1.048576 / secs).toFixed(1);
      const wall = ((performance.now() - t) / 1000).toFixed(2);
      console.log(
        `${label}: ${mib} MiB in ${secs.toFixed(2)} s guest time = ${rate} MB/s  [host wall ${wall} s]`,
      );
    }
  });
} finally {
  await Deno.remove(disk);
}
