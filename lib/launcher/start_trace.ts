/**
 * `--trace=FILE` for every kind of boot (PC, lguest, firmware): opens the file and has the Machine
 * hand it one line per instruction before the instruction runs.
 */
import { TraceFile } from "../backends/trace_file.ts";
import type { Machine } from "../machine/machine.ts";
import { debug } from "../support/log.ts";
import type { LaunchOptions } from "./options.ts";

/** Opens `opts.tracePath` if given and attaches it to `machine`; the caller closes it. */
export function startTrace(machine: Machine, opts: LaunchOptions): TraceFile | null {
  if (opts.tracePath === undefined) return null;
  const file = TraceFile.open(opts.tracePath);
  machine.trace = (line) => file.write(line);
  debug(`tracing every instruction to "${opts.tracePath}"`);
  return file;
}
