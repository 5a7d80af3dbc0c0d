// {{app}}: greets the name in the request body and counts the calls per name
// in the KV store (key calls_<name>, allowed by app.yaml's kvs list).
#include <string>

#include "waverless.hpp"

WL_FUNCTION(greet) {
  std::string name(wl::arg(args, argc, 0));
  if (name.empty()) name = "world";
  std::string key = "calls_" + name;
  long calls = std::stol(wl::kv_get(key).value_or("0")) + 1;
  wl::kv_set(key, std::to_string(calls));
  wl::output("hello " + name + " (call " + std::to_string(calls) + ")");
}
