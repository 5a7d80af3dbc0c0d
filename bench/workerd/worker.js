// The workerd side of the benchmark: one worker serving the same wasm as
// Waverless does.
//
//   /hello   apps/hello's own app.wasm (built for Waverless). Its only
//            imports are Waverless's output_write and log, implemented
//            here; the instance is made once and reused, like a warm one.
//   /kernel  bench/kernel/kernel.c built with clang-14 --target=wasm32;
//            body "n rounds", answer the digest as 16 hex digits.
//   /sleep   answers after a timer (body: ms, default 100).
import helloModule from "hello.wasm";
import kernelModule from "kernel.wasm";

let output = [];
const hello = new WebAssembly.Instance(helloModule, {
  waverless: {
    output_write(ptr, len) {
      output.push(new Uint8Array(hello.exports.memory.buffer, ptr, len).slice());
      return 0;
    },
    log() {
      return 0;
    },
  },
});
hello.exports._initialize();
const kernel = new WebAssembly.Instance(kernelModule, {});

function runHello() {
  output = [];
  hello.exports.fn2(0, 0);  // no arguments: argv = 0, argc = 0
  if (output.length === 1) return output[0];
  const all = new Uint8Array(output.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of output) {
    all.set(b, at);
    at += b.length;
  }
  return all;
}

export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/hello") return new Response(runHello());
    if (path === "/kernel") {
      const [n, rounds] = (await request.text()).trim().split(/\s+/).map(Number);
      const digest = BigInt.asUintN(64, kernel.exports.kernel_run(n, rounds));
      return new Response(digest.toString(16).padStart(16, "0"));
    }
    if (path === "/sleep") {
      const ms = Number(await request.text()) || 100;
      await scheduler.wait(ms);
      return new Response("slept");
    }
    return new Response("no such path\n", {status: 404});
  },
};
