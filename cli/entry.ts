import { main } from './main.ts';

// The bundled entry point (dist/odt.mjs); bin/odt.mjs runs the same main() from source.
process.exitCode = await main(process.argv.slice(2));
