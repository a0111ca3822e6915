#include "cli.h"
namespace smolvlm::cli {
int run_pull(int, char**) { return 1; }
}  // namespace smolvlm::cli
