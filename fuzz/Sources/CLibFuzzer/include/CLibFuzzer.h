// libFuzzer's entry for programs that have their own main (llvm.org/docs/LibFuzzer.html,
// "Using libFuzzer as a library"); the fuzz target's main calls it.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
