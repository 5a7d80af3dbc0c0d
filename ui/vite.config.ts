// The console is served by the node under /ui/ from files built here
// (scripts/build.sh: --outDir <build>/ui); no Node.js at run time.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/ui/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { target: "es2022", chunkSizeWarningLimit: 400 },
});
