// The declaration in include/CLibFuzzer.h is all this module provides; libFuzzer itself comes
// from the toolchain with -sanitize=fuzzer. SwiftPM wants one source file per C target.
#include "CLibFuzzer.h"
