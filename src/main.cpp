#include "cli/cli.h"

int main(int argc, char** argv) { return waverless::cli::run(argc, argv); }
