/**
 * `deno task fuzz [--seed=N] [--ops=N] [--device=NAME]...`: runs the seeded device fuzzer
 * (tools/fuzz/virtio_fuzzer.ts) against every virtio device and the lguest host's hypercalls
 * (tools/fuzz/lguest_fuzzer.ts), or the ones named, and prints one
 * line of figures per device. Exit code 1 when anything that must never happen happened: an
 * exception out of a guest access, a device error (bug) behind the transport's barrier, a write
 * outside guest RAM, a file touched outside a shared folder, or an operation that used more than
 * 100 ms of CPU (operations slow in wall time are counted apart: a loaded host preempts us).
 * The same seed replays the same guest.
 */
import { FUZZ_TARGETS } from "./fuzz/targets.ts";
import { fuzzLguest } from "./fuzz/lguest_fuzzer.ts";
import { fuzzDevice, type FuzzReport } from "./fuzz/virtio_fuzzer.ts";

/** Every target by name: the virtio devices, then the lguest host's hypercalls (non-PAE and PAE). */
const RUNNERS: [string, (seed: number, ops: number) => Promise<FuzzReport>][] = [
  ...FUZZ_TARGETS.map((t): [string, (seed: number, ops: number) => Promise<FuzzReport>] => [
    t.name,
    (seed, ops) => fuzzDevice(t, seed, ops),
  ]),
  ["lguest", (seed, ops) => fuzzLguest(seed, ops, false)],
  ["lguest-pae", (seed, ops) => fuzzLguest(seed, ops, true)],
];

function option(name: string): string | undefined {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}

const seed = Number(option("seed") ?? 1);
const ops = Number(option("ops") ?? 100_000);
const names = Deno.args.filter((a) => a.startsWith("--device=")).map((a) => a.slice(9));
const unknown = names.filter((n) => !RUNNERS.some(([name]) => name === n));
if (!Number.isInteger(seed) || !Number.isInteger(ops) || ops < 1 || unknown.length > 0) {
  const list = RUNNERS.map(([name]) => name).join("|");
  console.error(`usage: deno task fuzz [--seed=N] [--ops=N] [--device=${list}]...`);
  Deno.exit(2);
}
const targets = names.length === 0 ? RUNNERS : RUNNERS.filter(([name]) => names.includes(name));

let bad = false;
for (const [, run] of targets) {
  const r: FuzzReport = await run(seed, ops);
  const failed = r.exceptions + r.deviceErrors + r.outsideRam + r.hostViolations + r.slowOps > 0;
  bad ||= failed;
  const fields = [
    r.device.padEnd(8),
    `seed=${r.seed}`,
    `ops=${r.ops}`,
    `exceptions=${r.exceptions}`,
    `device-errors=${r.deviceErrors}`,
    `outside-ram=${r.outsideRam}`,
    `host-violations=${r.hostViolations}`,
    `slow-cpu(>100ms)=${r.slowOps}`,
    `slowest-cpu=${r.slowestCpuMs.toFixed(1)}ms`,
    `slow-wall(>100ms)=${r.slowWallOps}`,
    `slowest-wall=${r.slowestMs.toFixed(1)}ms`,
    `resets=${r.needsReset}`,
    `completions=${r.completions}`,
    `heap-growth=${(r.heapGrowthBytes / 2 ** 20).toFixed(1)}MiB`,
    `time=${r.seconds.toFixed(1)}s`,
  ];
  console.log(fields.join(" ") + (failed ? ` FIRST: ${r.firstFailure}` : ""));
}
Deno.exit(bad ? 1 : 0);
