// Builds the example plugins into build/NAME.wasm: `npm run build`.
//
//   --runtime stub   the SDK allocates only a few growing buffers, so the
//                    smallest runtime (which never frees) is enough
//   -O3              optimize for speed
//
// The modules import env.abort (AssemblyScript's abort, which iqengine
// provides as a trap with its line and column; see sdk/ABI.md "Imports").
import asc from "assemblyscript/asc";
import { mkdirSync } from "node:fs";

const examples = ["sensor-value", "sensor-key", "project"];
mkdirSync("build", { recursive: true });
let failed = false;
for (const name of examples) {
  const { error, stderr } = await asc.main([
    `examples/${name}/index.ts`,
    "--runtime", "stub",
    "-O3",
    "--outFile", `build/${name}.wasm`,
  ]);
  if (error) {
    console.error(`${name}: ${error.message}\n${stderr.toString()}`);
    failed = true;
  } else {
    console.log(`built build/${name}.wasm`);
  }
}
process.exit(failed ? 1 : 0);
