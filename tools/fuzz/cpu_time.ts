/** The fuzzer's one seam onto `node:process`: the process's CPU time, to tell a slow operation from a preempted one. */
import process from "node:process";

/** User + system CPU time of this process so far, in milliseconds. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
