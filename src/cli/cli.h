// The `waverless` command line: `dev` runs a node; the other commands talk
// to a node over HTTP (--to URL).
#pragma once

namespace waverless::cli {
int run(int argc, char** argv);
}
