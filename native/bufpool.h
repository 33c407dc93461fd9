// Memory for large received messages, recycled. A Buffer handed to JS gives its block back
// here when it is collected, so the next message lands in memory whose pages are mapped
// already: allocating fresh memory per 64 KiB message cost more in page faults than the copy.
#pragma once
#include <cstddef>

namespace multiproc {

// A block of at least `size` bytes; `*cap` receives its real size, to give back. nullptr if
// out of memory.
char* PoolAlloc(size_t size, size_t* cap);
void PoolFree(char* block, size_t cap);

}  // namespace multiproc
