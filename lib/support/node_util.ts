/** The one seam onto `node:util` (JSR's @std/cli is unreachable here; swapping is a one-file change). */
export { parseArgs } from "node:util";
