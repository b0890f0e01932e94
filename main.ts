/**
 * The `lguest` command: argv → parseCommandLine() → launch(). The only place that prints a user
 * error (`lguest: <message>`, exit code 2, no stack) and sets the exit code (STYLE rule 9).
 */

import denoJson from "./deno.json" with { type: "json" };
import { launch } from "./lib/launcher/launch.ts";
import { parseCommandLine, USAGE } from "./lib/launcher/options.ts";
import { LaunchError } from "./lib/support/errors.ts";
import { setVerbose, warn } from "./lib/support/log.ts";

/** The lguest.ts version, from deno.json. */
export const VERSION: string = denoJson.version;

/** Runs the command with `args` (without the program name); resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    const parsed = parseCommandLine(args);
    if ("help" in parsed) {
      console.log(USAGE.trimEnd());
      return 0;
    }
    if ("version" in parsed) {
      console.log(`lguest.ts ${VERSION}`);
      return 0;
    }
    setVerbose(parsed.verbose);
    if (envNoJit()) parsed.noJit = true;
    for (const w of parsed.warnings) warn(`warning: ${w}`);
    return await launch(parsed);
  } catch (e) {
    if (e instanceof LaunchError) {
      console.error(`lguest: ${e.message}`);
      return 2;
    }
    throw e; // a bug: let Deno print the stack
  }
}

/** LGUEST_NO_JIT=1 runs the pure interpreter, like --no-jit (unreadable environment: not set). */
function envNoJit(): boolean {
  try {
    return Deno.env.get("LGUEST_NO_JIT") === "1";
  } catch {
    return false;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
