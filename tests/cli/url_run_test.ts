/**
 * `deno run` straight from a URL: the project is served over HTTP (as text/plain, the way raw file
 * hosts serve it) and run from there with a fresh module cache, so nothing may depend on being a
 * local checkout (file paths, the project's deno.json config, local-only imports).
 */
import { assert, assertEquals } from "../assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Serves the checkout's .ts and .json files read-only on 127.0.0.1; returns the base URL and a stop function. */
function serveCheckout(): { base: string; stop: () => Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..") || !/\.(ts|json)$/.test(path)) return new Response("not found", { status: 404 });
    try {
      const body = await Deno.readFile(ROOT + path.slice(1));
      return new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { base: `http://127.0.0.1:${server.addr.port}/`, stop: () => server.shutdown() };
}

Deno.test("main.ts runs from a URL: --version, and a launch error is one line with exit code 2", async () => {
  const { base, stop } = serveCheckout();
  const denoDir = await Deno.makeTempDir();
  const cwd = await Deno.makeTempDir(); // outside the checkout: no deno.json to pick up
  try {
    const run = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${base}main.ts`, ...args],
        env: { DENO_DIR: denoDir, NO_COLOR: "1" },
        cwd,
        stdin: "null",
      }).output();
    const version = await run("--version");
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    assertEquals(version.code, 0, decode(version.stderr));
    assert(/^lguest\.ts \d+\.\d+\.\d+\n$/.test(decode(version.stdout)), decode(version.stdout));

    const missing = await run("64", `${cwd}/no-such-kernel`);
    assertEquals(missing.code, 2);
    const errorLines = decode(missing.stderr).trim().split("\n");
    assertEquals(errorLines.length, 1, decode(missing.stderr));
    assert(
      /^lguest: Cannot open kernel ".*no-such-kernel": no such file$/.test(errorLines[0]),
      errorLines[0],
    );
  } finally {
    await stop();
    await Deno.remove(denoDir, { recursive: true });
    await Deno.remove(cwd, { recursive: true });
  }
});
