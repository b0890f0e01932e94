/** Logging: `--verbose` messages to stderr, off by default. The one place that writes diagnostics. */

const encoder = new TextEncoder();
let verbose = false;
let sink: (line: string) => void = (line) => {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing useful left to do with a diagnostic.
  }
};

/** Turns `--verbose` logging on or off. */
export function setVerbose(on: boolean): void {
  verbose = on;
}

/** True when `--verbose` is on; check it before building an expensive message. */
export function isVerbose(): boolean {
  return verbose;
}

/** Logs a line under `--verbose`. */
export function debug(msg: string): void {
  if (verbose) sink(`lguest: ${msg}`);
}

/** Logs a warning line whatever the verbosity (guest-caused errors that reset a device, etc.). */
export function warn(msg: string): void {
  sink(`lguest: ${msg}`);
}

/** Redirects log lines (tests capture them). Returns the previous sink. */
export function setLogSink(fn: (line: string) => void): (line: string) => void {
  const old = sink;
  sink = fn;
  return old;
}
