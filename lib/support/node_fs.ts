/**
 * The one seam onto `node:fs` (STYLE: one small module per `node:*` built-in): statfs(2), which
 * Deno's own API lacks, for the 9P server's Rstatfs.
 */
import { promises as fs } from "node:fs";

/** statfs(2) of the file system holding `path`: block counts in `bsize` units. */
export async function statfs(path: string): Promise<{
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}> {
  const s = await fs.statfs(path);
  return {
    type: Number(s.type),
    bsize: Number(s.bsize),
    blocks: Number(s.blocks),
    bfree: Number(s.bfree),
    bavail: Number(s.bavail),
    files: Number(s.files),
    ffree: Number(s.ffree),
  };
}
