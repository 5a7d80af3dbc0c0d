# workerd config for the benchmark. bench/run copies this file, worker.js,
# hello.wasm and kernel.wasm into one folder and runs
#   workerd serve config.capnp --socket-addr http=127.0.0.1:PORT
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .benchWorker)],
  sockets = [(name = "http", address = "127.0.0.1:8080", http = (), service = "main")],
);

const benchWorker :Workerd.Worker = (
  modules = [
    (name = "worker", esModule = embed "worker.js"),
    (name = "hello.wasm", wasm = embed "hello.wasm"),
    (name = "kernel.wasm", wasm = embed "kernel.wasm"),
  ],
  compatibilityDate = "2024-09-02",
);
